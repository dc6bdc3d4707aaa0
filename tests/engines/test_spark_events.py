"""Spark progress from recorded event logs (tests/fixtures/recorded/spark/), read as the driver
writes them, and observe() reading it without a request to the driver."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest
from support_recorded import RECORDED

from mrs_jobs.engines.base import ClusterSpec, JobSpec, LaunchSpec
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.engines.spark_events import EVENT_LOG_CONF, EventLogProgress, TaskCounts
from mrs_jobs.engines.spark_progress import progress_of

THREE_JOBS = RECORDED / "spark" / "eventlog_three_jobs.jsonl"
KILLED = RECORDED / "spark" / "eventlog_killed.jsonl"
_COUNTED = ("JobStart", "JobEnd", "StageSubmitted", "StageCompleted", "TaskEnd")


def replay(path: Path) -> list[tuple[str, float | None]]:
    """(event, progress after it) for each event progress reads, one line at a time."""
    counts, seen = TaskCounts(), []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        counts.feed(event)
        name = event["Event"].removeprefix("SparkListener")
        if name in _COUNTED:
            seen.append((name, counts.progress()))
    return seen


def test_three_jobs_counted_from_their_tasks() -> None:
    seen = replay(THREE_JOBS)
    values = [p for _, p in seen]
    # job 0: 3 map tasks + 2 reduce tasks; its finished map stage is 3 of 5, not 99
    assert values[:9] == [0.0, 0.0, 20.0, 40.0, 60.0, 60.0, 60.0, 80.0, None]
    # job 1 reuses the shuffle: its map stage (3 tasks) is skipped, known as soon as the
    # reduce stage is submitted (8 of 10), then its 2 tasks
    assert values[11:14] == [50.0, 80.0, 90.0]
    # job 2: 20 more tasks, 10 known before them (a new job is more work: 33.3, not 99)
    assert values[17] == 33.3
    assert values[-4] == 96.7
    assert all(p is None or p < 100 for p in values)


def test_nothing_said_between_jobs() -> None:
    """When no job runs, the next one's tasks are unknown: no value (the stored one stays)."""
    seen = replay(THREE_JOBS)
    for (name, progress), (next_name, _) in zip(seen, seen[1:], strict=False):
        if name == "JobEnd" and next_name == "JobStart":
            assert progress is None
    assert seen[-1] == ("JobEnd", None)


def test_killed_application_keeps_its_count() -> None:
    """SIGTERM: Spark ends the running job as failed; its last count is the last value."""
    seen = replay(KILLED)
    values = [p for name, p in seen if p is not None]
    assert values[-1] == 43.3  # 3 + 2 + 3 skipped + 2 + 3 of 20: 13 of 30 tasks
    assert seen[-1] == ("JobEnd", None)


def test_read_as_written_whole_lines_only(tmp_path: Path) -> None:
    lines = THREE_JOBS.read_bytes().splitlines(keepends=True)
    log = tmp_path / "local-1.inprogress"
    log.write_bytes(b"")
    reader = EventLogProgress(log)
    seen = []
    for line in lines:
        half = len(line) // 2
        with log.open("ab") as f:
            f.write(line[:half])
        reader.read()  # half a line is not taken
        with log.open("ab") as f:
            f.write(line[half:])
        seen.append(reader.read())
    expected = [p for _, p in replay(THREE_JOBS)]
    assert [p for p, line in zip(seen, lines, strict=True) if _counted(line)] == expected
    assert reader.offset == log.stat().st_size


def _counted(line: bytes) -> bool:
    return json.loads(line)["Event"].removeprefix("SparkListener") in _COUNTED


def test_a_replaced_log_is_read_again(tmp_path: Path) -> None:
    lines = THREE_JOBS.read_text().splitlines(keepends=True)
    log = tmp_path / "local-1.inprogress"
    log.write_text("".join(lines))
    reader = EventLogProgress(log)
    assert reader.read() is None  # all three jobs ended
    first_job_running = lines[: next(i for i, x in enumerate(lines) if "TaskEnd" in x) + 1]
    log.write_text("".join(first_job_running))
    assert reader.read() == 20.0


def test_symlink_and_missing_log_say_nothing(tmp_path: Path) -> None:
    assert EventLogProgress(tmp_path / "nope").read() is None
    (tmp_path / "link").symlink_to(THREE_JOBS)
    assert EventLogProgress(tmp_path / "link").read() is None


def test_an_overlong_line_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mrs_jobs.engines.spark_events as spark_events

    monkeypatch.setattr(spark_events, "_READ_CHUNK", 4096)
    job_start = next(x for x in THREE_JOBS.read_text().splitlines() if "JobStart" in x)
    log = tmp_path / "local-1.inprogress"
    log.write_text(
        '{"Event":"SparkListenerJobStart","x":"' + "y" * 10_000 + '"}\n' + job_start + "\n"
    )
    reader = EventLogProgress(log)
    for _ in range(5):
        reader.read()
    assert reader.read() == 0.0 and reader.offset == log.stat().st_size


def test_progress_of_a_driver_ui_jobs_list() -> None:
    """Standalone cluster-mode drivers: the UI's /jobs, only while a job runs."""
    assert progress_of([]) is None
    assert progress_of([{"status": "SUCCEEDED", "numTasks": 2, "numCompletedTasks": 2}]) is None
    running = {"status": "RUNNING", "numTasks": 8, "numCompletedTasks": 2}
    assert progress_of([running]) == 25.0
    skipped = {"status": "RUNNING", "numTasks": 4, "numCompletedTasks": 1, "numSkippedTasks": 2}
    done = {"status": "SUCCEEDED", "numTasks": 4, "numCompletedTasks": 4}
    assert progress_of([done, skipped]) == 87.5
    failed = {"status": "FAILED", "numTasks": 10, "numCompletedTasks": 2}  # 8 never run
    assert progress_of([failed, running]) == 40.0


class _CountingUI(http.server.BaseHTTPRequestHandler):
    requests = 0

    def do_GET(self) -> None:  # noqa: N802
        type(self).requests += 1
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_observe_reads_the_event_log_without_asking_the_driver(tmp_path: Path) -> None:
    """Reading progress costs the job nothing: no request to the driver's UI per observation
    (today's REST polling costs ~6-10 % of a short job, bench P4)."""
    srv = http.server.HTTPServer(("127.0.0.1", 0), _CountingUI)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    try:
        events = tmp_path / "events"
        events.mkdir()
        lines = THREE_JOBS.read_text().splitlines(keepends=True)
        upto = next(i for i, x in enumerate(lines) if "StageCompleted" in x)
        (events / "local-1796625467278.inprogress").write_text("".join(lines[: upto + 1]))
        launch = LaunchSpec(
            argv=["spark-submit", "--conf", f"spark.ui.port={port}"], env={}, cwd="/"
        )
        engine = SparkSubmitEngine()
        job = JobSpec("j1", "SparkSubmit", "t", [], {})
        for _ in range(3):
            obs = engine.observe(job, tmp_path, launch)
        assert obs.app_id == "local-1796625467278" and obs.running
        assert obs.progress == 60.0  # 3 of the job's 5 tasks: its map stage ended, not 99
        assert obs.tracking_url == f"http://127.0.0.1:{port}"
        assert _CountingUI.requests == 0
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_local_driver_writes_a_log_that_can_be_read_while_written(tmp_path: Path) -> None:
    """Uncompressed, one file, a small buffer; a job's own settings for these are ignored."""
    app = tmp_path / "app.py"
    app.write_text("print(1)\n")
    args = ["--conf", "spark.eventLog.compress=true", str(app)]
    job = JobSpec("j1", "SparkSubmit", "t", args, {"spark.eventLog.rolling.enabled": "true"})
    launch = SparkSubmitEngine().build(job, ClusterSpec(cluster_id="c1"), tmp_path / "wd")
    confs = [launch.argv[i + 1] for i, a in enumerate(launch.argv[:-1]) if a == "--conf"]
    for key, value in EVENT_LOG_CONF:
        assert [c for c in confs if c.startswith(key + "=")] == [f"{key}={value}"]
    assert any("spark.eventLog.compress" in note for note in launch.notes)
