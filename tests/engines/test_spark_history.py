"""The clusters' Spark history servers without a JVM: the event-log links (never through a
symlink, removed only when they are the job's own), the stable URL, and the idle stop."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from mrs_jobs.engines.base import ClusterSpec, LaunchSpec
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.engines.spark_history import (
    HistoryServers,
    history_url,
    link_event_log,
    unlink_event_log,
    valid_ids,
)
from mrs_jobs.runtime import jobdir
from mrs_jobs.runtime.process import read_start_ticks

APP = "local-1765000000000"
BASE = "http://127.0.0.1:8080"


def _job(tmp_path: Path, name: str = APP, text: str = '{"Event":"SparkListenerLogStart"}\n'):
    workdir = tmp_path / "jobs" / "job-1"
    (workdir / "events").mkdir(parents=True)
    (workdir / "events" / name).write_text(text)
    jobdir.write_engine_record(workdir, "spark-submit", kind="local")
    return workdir


def _servers(tmp_path: Path, **kw) -> HistoryServers:  # type: ignore[no-untyped-def]
    return HistoryServers(tmp_path / "clusters", "marker", **({"base_url": BASE} | kw))


def _same(a: Path, b: Path) -> bool:
    sa, sb = os.stat(a, follow_symlinks=False), os.stat(b, follow_symlinks=False)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def test_ids_are_checked_and_the_url_is_the_service_route() -> None:
    assert valid_ids("c-1_x", APP)
    for cluster_id, app_id in [
        ("c", "local-1.inprogress"),  # a dot: Spark would take it for a codec
        ("c", "../x"),
        ("c/d", APP),
        ("", APP),
        ("c", ""),
        ("c" * 65, APP),
        ("c", "a" * 129),
    ]:
        assert not valid_ids(cluster_id, app_id), (cluster_id, app_id)
    assert history_url(BASE + "/", "c1", APP) == f"{BASE}/spark-history/c1/{APP}"


def test_an_event_log_is_hard_linked(tmp_path: Path) -> None:
    workdir = _job(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    assert link_event_log(workdir / "events", APP, logs)
    assert _same(logs / APP, workdir / "events" / APP)
    assert link_event_log(workdir / "events", APP, logs)  # ended twice: still this file


def test_never_through_a_symlink(tmp_path: Path) -> None:
    secret = tmp_path / "service-secret"
    secret.write_text("not the job's")
    events = tmp_path / "events"
    events.mkdir()
    (events / APP).symlink_to(secret)
    logs = tmp_path / "logs"
    logs.mkdir()
    assert not link_event_log(events, APP, logs)
    assert not (logs / APP).exists()
    # nor through a symlinked events directory, nor to something not a regular file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / APP).write_text("x")
    (tmp_path / "job2").mkdir()
    (tmp_path / "job2" / "events").symlink_to(elsewhere)
    assert not link_event_log(tmp_path / "job2" / "events", APP, logs)
    os.mkfifo(events / "local-2")
    assert not link_event_log(events, "local-2", logs)
    assert sorted(os.listdir(logs)) == []


def test_a_link_that_is_another_jobs_file_is_left(tmp_path: Path) -> None:
    workdir = _job(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / APP).write_text("another job's log, same app id")
    assert not link_event_log(workdir / "events", APP, logs)  # not linked over it
    assert not unlink_event_log(workdir / "events", logs, APP)  # nor removed as ours
    assert (logs / APP).read_text() == "another job's log, same app id"


def test_keep_links_and_gives_the_stable_url_forget_removes_it(tmp_path: Path) -> None:
    workdir = _job(tmp_path, APP + ".inprogress")  # a driver killed before it renamed it
    servers = _servers(tmp_path)
    url = servers.keep("c1", workdir, APP)
    assert url == f"{BASE}/spark-history/c1/{APP}"
    link = servers.logs("c1") / (APP + ".inprogress")
    assert _same(link, workdir / "events" / (APP + ".inprogress"))
    assert servers.has_app("c1", APP) and not servers.has_app("c2", APP)
    assert not servers.has_app("c1", "local-9")
    assert servers.forget("c1", workdir, APP)
    assert not link.exists() and not servers.has_app("c1", APP)
    assert (workdir / "events" / (APP + ".inprogress")).exists()  # the job's own file stays


def test_keep_gives_nothing_without_a_log_an_endpoint_or_a_plain_id(tmp_path: Path) -> None:
    workdir = _job(tmp_path)
    assert _servers(tmp_path, base_url=None).keep("c1", workdir, APP) is None
    assert _servers(tmp_path).keep("c1", workdir, "local-other") is None  # not the job's app
    assert _servers(tmp_path).keep("../c1", workdir, APP) is None
    odd = _job(tmp_path / "odd", "app.with.dots")
    assert _servers(tmp_path).keep("c1", odd, None) is None
    empty = tmp_path / "empty"
    (empty / "events").mkdir(parents=True)
    assert _servers(tmp_path).keep("c1", empty, None) is None
    assert not (tmp_path / "clusters" / "c1" / "spark-history" / "logs" / APP).exists()


def test_the_spark_engine_keeps_local_jobs_only(tmp_path: Path) -> None:
    workdir = _job(tmp_path)
    engine = SparkSubmitEngine(history=_servers(tmp_path))
    launch = LaunchSpec(argv=["spark-submit"], env={}, cwd=str(workdir))
    local = ClusterSpec("c1")
    url = engine.ended_tracking_url("job-1", workdir, launch, APP, local)
    assert url == f"{BASE}/spark-history/c1/{APP}"
    yarn = ClusterSpec("c1", kind="yarn", extra={"hadoop_conf_dir": str(tmp_path)})
    assert engine.ended_tracking_url("job-1", workdir, launch, APP, yarn) is None
    assert engine.ended_tracking_url("job-1", workdir, launch, APP, None) is None
    engine.forget("job-1", workdir, APP, "c1")
    assert not (tmp_path / "clusters" / "c1" / "spark-history" / "logs" / APP).exists()
    assert SparkSubmitEngine().ended_tracking_url("job-1", workdir, launch, APP, local) is None


def _fake_server(servers: HistoryServers, cluster_id: str) -> subprocess.Popen[bytes]:
    """A process standing for the cluster's server, recorded as the real one is."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    directory = servers.directory(cluster_id)
    directory.mkdir(parents=True)
    for _ in range(100):
        ticks = read_start_ticks(proc.pid)
        if ticks is not None:
            break
        time.sleep(0.01)
    state = {"pid": proc.pid, "start_ticks": ticks, "port": 1}
    (directory / "state.json").write_text(json.dumps(state))
    return proc


def test_an_idle_server_is_stopped_a_used_one_is_not(tmp_path: Path) -> None:
    servers = _servers(tmp_path, idle_seconds=300.0)
    now = [1000.0]
    servers.clock = lambda: now[0]
    idle, used = _fake_server(servers, "idle"), _fake_server(servers, "used")
    try:
        assert sorted(servers.known_clusters()) == ["idle", "used"]
        assert servers.stop_idle(300.0) == []  # first seen now: a full idle period from here
        now[0] += 200
        servers.keep("used", _job(tmp_path), APP)  # a local job of "used" ended
        now[0] += 150
        assert servers.stop_idle(300.0) == ["idle"]
        assert idle.wait(10) is not None
        assert servers.running("idle") is None and servers.running("used") is not None
        assert not (servers.directory("idle") / "state.json").exists()
        assert servers.stop_idle(0.0) == ["used"]  # the service stops: all of them
        assert used.wait(10) is not None
    finally:
        for proc in (idle, used):
            proc.kill()
            proc.wait()


def test_the_engine_stops_history_servers_on_their_own_idle_time(tmp_path: Path) -> None:
    servers = _servers(tmp_path, idle_seconds=5.0)
    now = [0.0]
    servers.clock = lambda: now[0]
    engine = SparkSubmitEngine(history=servers)
    proc = _fake_server(servers, "c1")
    try:
        engine.housekeeping({}, 600.0)
        now[0] += 6
        engine.housekeeping({"c1": {"SparkSubmit"}}, 600.0)  # live jobs do not count: links do
        assert proc.wait(10) is not None
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("idle_seconds", [0.0])
def test_service_stop_stops_them_at_once(tmp_path: Path, idle_seconds: float) -> None:
    servers = _servers(tmp_path, idle_seconds=300.0)
    proc = _fake_server(servers, "c1")
    try:
        SparkSubmitEngine(history=servers).housekeeping({}, idle_seconds)
        assert proc.wait(10) is not None
    finally:
        proc.kill()
        proc.wait()


class _Policy:
    bwrap = "/usr/bin/bwrap"

    def __init__(self) -> None:
        self.calls: list[tuple[Path, dict]] = []

    def for_run(self, workdir: Path, argv: list[str], env: dict[str, str], **kw: object) -> str:
        self.calls.append((workdir, dict(kw)))
        return "the box"


class _Table:
    def __init__(self) -> None:
        self.launched: list[tuple[Path, LaunchSpec, object]] = []

    def launch(self, directory: Path, spec: LaunchSpec, **kw: object) -> object:
        from mrs_jobs.runtime.process import ProcessHandle

        self.launched.append((directory, spec, kw["box"]))
        return ProcessHandle(os.getpid(), read_start_ticks(os.getpid()) or 0)

    def is_running(self, handle: object) -> bool:
        return True  # this test process stands for the server


def test_a_server_starts_small_on_loopback_boxed_with_its_logs_only(tmp_path: Path) -> None:
    policy = _Policy()
    servers = _servers(tmp_path, box=policy)
    servers.table = _Table()  # type: ignore[assignment]
    endpoint = servers.ensure("c1")
    directory, spec, box = servers.table.launched[0]  # type: ignore[attr-defined]
    assert directory == servers.directory("c1") and box == "the box"
    assert policy.calls == [(directory, {"read_roots": (str(servers.logs("c1")),)})]
    assert spec.argv[1:3] == ["org.apache.spark.deploy.history.HistoryServer", "--properties-file"]
    assert spec.argv[0].endswith("/bin/spark-class")
    env = spec.env
    assert env["SPARK_DAEMON_MEMORY"] == "256m" and env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert env["MRS_JOBS_SERVICE"] == "marker:c1"
    conf = dict(line.split("=", 1) for line in Path(spec.argv[3]).read_text().splitlines() if line)
    assert conf["spark.history.fs.logDirectory"] == servers.logs("c1").as_uri()
    assert conf["spark.history.ui.port"] == str(endpoint.port)
    assert conf["spark.history.fs.update.interval"] == "2s"
    state = json.loads((directory / "state.json").read_text())
    assert (state["pid"], state["port"]) == (os.getpid(), endpoint.port)
    assert servers.ensure("c1") == endpoint  # running: not started twice
    assert len(servers.table.launched) == 1  # type: ignore[attr-defined]
