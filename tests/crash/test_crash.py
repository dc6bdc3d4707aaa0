"""Crash test: kill -9 the service at random moments while a workload runs; lose nothing.

A seeded workload (CRASH_SEED, CRASH_JOBS=200, CRASH_ROUNDS=20 by default) submits fake-engine
jobs (sleep, print, exit with a code, some ignoring SIGTERM) plus a few real Spark jobs, kills
and batch-deletes some of them, and `kill -9`s the server at a random moment in each round,
restarting it each time. Submits carry an X-Idempotency-Key, so a submit whose answer was lost
in a crash is simply retried. At the end every acknowledged job is present (unless deleted)
and terminal, nothing was launched twice, and no engine process is left running.

A quarter of the fake jobs leave their launcher's process group and session as PySpark's
workers and ``setsid`` children do: a child in its own session (still marked) and one in its own
session with an empty environment (no marker; a token in its argv), and the job fails unless
both end cleanly (``--wait-children``). Most of them are never killed or deleted, so that their
end is judged: a restart that ended their children would fail them. The count of jobs the
service failed on its own (a result other than the one the job asked for, or an end without
the job's own output) must be 0, and after the run no process of any job may be left, found in
/proc by the job marker and by the tokens.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from support import SigV4Auth

pytestmark = [pytest.mark.crash, pytest.mark.spark]

HERE = Path(__file__).resolve().parent
SEED = int(os.environ.get("CRASH_SEED", "20261129"))
JOBS = int(os.environ.get("CRASH_JOBS", "200"))
ROUNDS = int(os.environ.get("CRASH_ROUNDS", "20"))
SPARK_JOBS = int(os.environ.get("CRASH_SPARK_JOBS", "2"))
TERMINAL = {"FINISHED", "FAILED", "KILLED"}

SPARK_SCRIPT = """
from pyspark.sql import SparkSession
s = SparkSession.builder.getOrCreate()
print("crash-spark", s.sparkContext.parallelize(range(100), 4).sum())
"""


class Server:
    def __init__(self, data_dir: Path, launch_log: Path) -> None:
        self.data_dir = data_dir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")},
            "MRS_JOBS_DATA_DIR": str(data_dir),
            "MRS_JOBS_PORT": "0",
            "MRS_JOBS_POLL_INTERVAL": "0.05",
            "MRS_JOBS_KILL_GRACE_SECONDS": "1",
            "FAKE_ENGINE_LAUNCH_LOG": str(launch_log),
        }
        roots = os.environ.get("MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS")  # tests/conftest.py
        if roots:  # jobs are boxed: the launch log must be somewhere they may write
            self.env["MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS"] = roots
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / "server.log"
        self.endpoint = ""

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "serve_fake.py")],
            env=self.env,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        marker = "mrs-jobs is running at"
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            if marker in text:
                self.endpoint = text.split(marker, 1)[1].split()[0]
                return
            if self.proc.poll() is not None:
                raise RuntimeError(text[-3000:])
            time.sleep(0.02)
        raise RuntimeError("server did not start")

    def kill9(self, ledger: Ledger | None = None) -> None:
        if ledger is not None:
            ledger.crash_ms.append(time.time_ns() // 1_000_000)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()


@dataclass
class Ledger:
    acked: dict[int, str] = field(default_factory=dict)  # logical job -> job id
    deleted: set[str] = field(default_factory=set)  # 202 received
    maybe_deleted: set[str] = field(default_factory=set)  # request lost in a crash
    server_errors: list[str] = field(default_factory=list)
    crashes: int = 0
    crash_ms: list[int] = field(default_factory=list)  # wall-clock times of the kill -9s
    up_ms: list[int] = field(default_factory=list)  # ... and of the restarted server's answer
    kill_asked: set[str] = field(default_factory=set)  # a kill was sent (answered or not)


def _token(run: str, k: int) -> str:
    return f"crash-unmarked-{run}-{k}"


def _job_args(rng: random.Random, k: int, script: Path, run: str) -> list[str]:
    if k < SPARK_JOBS:
        return [str(script)]
    if rng.random() < 0.25:  # processes outside the launcher's group and session
        return [
            "fake",
            "--sleep",
            f"{rng.uniform(1.5, 4.0):.2f}",
            "--print",
            f"job-{k}",
            "--spawn-detached",
            "--spawn-unmarked",
            _token(run, k),
            "--wait-children",
        ]
    args = ["fake", "--sleep", f"{rng.uniform(0.1, 4.0):.2f}", "--print", f"job-{k}"]
    if rng.random() < 0.2:
        args += ["--exit", str(rng.choice([1, 2, 3]))]
    if rng.random() < 0.1:
        args.append("--ignore-term")
    return args


def test_kill9_at_random_moments_loses_nothing(tmp_path) -> None:
    rng = random.Random(SEED)
    script = tmp_path / "spark_job.py"
    script.write_text(SPARK_SCRIPT)
    launch_log = tmp_path / "launches.log"
    server = Server(tmp_path / "data", launch_log)
    ledger = Ledger()
    run = uuid.uuid4().hex[:12]
    args_of = {k: _job_args(rng, k, script, run) for k in range(JOBS)}
    # Two thirds of the group-leaving jobs are never killed or deleted: their end is judged.
    kept = {k for k, a in args_of.items() if "--wait-children" in a and k % 3}
    next_job = 0
    started = time.monotonic()
    try:
        for _round in range(ROUNDS + 1):
            server.start()
            if ledger.crash_ms:  # reconciled: it does so before it prints its endpoint
                ledger.up_ms.append(time.time_ns() // 1_000_000)
            boot = json.loads((server.data_dir / "bootstrap.json").read_text())
            base = (
                f"{server.endpoint}/v2/{boot['project_id']}/clusters/"
                f"{boot['cluster_id']}/job-executions"
            )
            client = httpx.Client(
                auth=SigV4Auth(boot["ak"], boot["sk"], boot["project_id"]), timeout=10
            )
            last = _round == ROUNDS
            crash_at = None if last else time.monotonic() + rng.uniform(0.3, 2.5)
            killer = None
            if crash_at is not None:
                killer = threading.Timer(crash_at - time.monotonic(), server.kill9, (ledger,))
                killer.start()
            # Retry submits whose answer may have been lost: same key, same body.
            pending = [k for k in range(next_job) if k not in ledger.acked]
            while True:
                if crash_at is not None and server.proc.poll() is not None:
                    break
                if last and next_job >= JOBS and not pending:
                    break
                action = rng.random()
                try:
                    if pending:
                        k = pending.pop()
                        _submit(client, base, k, args_of[k], ledger)
                    elif next_job < JOBS and action < 0.75:
                        k = next_job
                        next_job += 1
                        pending.append(k)
                        _submit(client, base, k, args_of[k], ledger)
                        pending.remove(k)
                    elif action < 0.87 and (choosable := _choosable(ledger, kept)):
                        job_id = rng.choice(choosable)
                        ledger.kill_asked.add(job_id)
                        r = client.post(f"{base}/{job_id}/kill")
                        _check(r, ledger, ok=(202, 400))
                    elif choosable := _choosable(ledger, kept):
                        ids = rng.sample(choosable, min(len(choosable), rng.randint(1, 4)))
                        ids = [i for i in ids if i not in ledger.deleted]
                        if ids:
                            ledger.maybe_deleted.update(ids)
                            r = client.post(f"{base}/batch-delete", json={"job_id_list": ids})
                            _check(r, ledger, ok=(202, 400))
                            if r.status_code == 202:
                                ledger.deleted.update(ids)
                    else:
                        time.sleep(0.01)
                except httpx.TransportError:
                    if crash_at is None:
                        raise
                    continue  # the crash landed mid-request: retried after the restart
            if killer is not None:
                killer.join()
                ledger.crashes += 1
        # Final round: the server is up; let everything drain.
        _drain(client, base, ledger)
        outcome = _verify(client, base, ledger, launch_log)
        judged = _judge(client, base, ledger, args_of, server.data_dir / "jobs")
    finally:
        server.stop()
    # After the service stopped, every job had ended: no process of any job may remain, by
    # its marker or (the children that shed it) by its token.
    tokens = [_token(run, k) for k, a in args_of.items() if "--wait-children" in a]
    deadline = time.monotonic() + 10
    while (left := _leftovers(set(ledger.acked.values()), tokens)) and time.monotonic() < deadline:
        time.sleep(0.2)
    print(
        f"\ncrash test: seed={SEED} jobs={len(ledger.acked)} crashes={ledger.crashes} "
        f"deleted={len(ledger.deleted)} launches={outcome['launches']} "
        f"lost=0 duplicates=0 5xx={len(ledger.server_errors)} orphans={len(left)} "
        f"judged={judged['judged']} group_leaving={judged['leaving']} "
        f"across_restart={judged['across']} failed_by_service={len(judged['failed'])} "
        f"in {time.monotonic() - started:.0f} s"
    )
    assert judged["failed"] == [], "jobs the service failed on its own:\n" + "\n".join(
        judged["failed"]
    )
    assert left == [], f"processes of ended jobs left: {left}"
    assert judged["across"] > 0, "no job with processes outside its group ran across a restart"


def _choosable(ledger: Ledger, kept: set[int]) -> list[str]:
    """Jobs a kill or a delete may pick: all but the kept group-leaving ones."""
    return [j for k, j in ledger.acked.items() if k not in kept]


def _judge(
    client: httpx.Client,
    base: str,
    ledger: Ledger,
    args_of: dict[int, list[str]],
    jobs_dir: Path,
) -> dict:
    """Jobs nobody killed or deleted must end as they asked (their exit code) and must have
    run (their own output is in their log): anything else the service did on its own."""
    listed = client.get(base, params={"limit": 1000}).json()["job_list"]
    visible = {j["job_id"]: j for j in listed}
    failed: list[str] = []
    judged = leaving = across = 0
    for k, job_id in ledger.acked.items():
        job = visible.get(job_id)
        if job is None or job_id in ledger.kill_asked or job_id in ledger.maybe_deleted:
            continue
        judged += 1
        args = args_of[k]
        expected = "FAILED" if "--exit" in args else "SUCCEEDED"
        own = f"job-{k}" if args[:1] == ["fake"] else "crash-spark 4950"
        try:
            ran = own in (jobs_dir / job_id / "stdout.log").read_text(errors="replace")
        except OSError:
            ran = False
        if job["job_result"] != expected or not ran:
            failed.append(
                f"job {k} ({job_id}): {job['job_state']}/{job['job_result']}, expected "
                f"{expected}, {'ran' if ran else 'no output of its own'}"
            )
        if "--wait-children" in args:  # running from before a kill -9 to after the restart
            leaving += 1
            started, ended = job["started_time"], job["finished_time"]
            across += any(
                0 < started <= down and up <= ended
                for down, up in zip(ledger.crash_ms, ledger.up_ms, strict=False)
            )
    return {"failed": failed, "judged": judged, "leaving": leaving, "across": across}


def _leftovers(job_ids: set[str], tokens: list[str]) -> list[str]:
    """Live processes of these jobs: by the job marker in the environment, or by a token in
    the argv of a child that left the marker behind (``python -c <code> <token>``)."""
    markers = {f"MRS_JOBS_JOB_ID={j}".encode() for j in job_ids}
    wanted = {t.encode() for t in tokens}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
            env = set((entry / "environ").read_bytes().split(b"\0"))
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if stat[stat.rfind(b")") + 2 :].split()[:1] == [b"Z"]:
            continue
        if env & markers or (argv[1:2] == [b"-c"] and wanted.intersection(argv)):
            found.append(f"{entry.name}: {b' '.join(argv)[:120].decode(errors='replace')}")
    return found


def _submit(client: httpx.Client, base: str, k: int, args: list[str], ledger: Ledger) -> None:
    r = client.post(
        base,
        json={"job_type": "SparkSubmit", "job_name": f"crash{k}", "arguments": args},
        headers={"X-Idempotency-Key": f"crash-{SEED}-{k}"},
    )
    _check(r, ledger, ok=(200,))
    if r.status_code == 200:
        job_id = r.json()["job_submit_result"]["job_id"]
        assert ledger.acked.get(k, job_id) == job_id, "a retried submit made a second job"
        ledger.acked[k] = job_id


def _check(r: httpx.Response, ledger: Ledger, ok: tuple[int, ...]) -> None:
    if r.status_code >= 500:
        ledger.server_errors.append(f"{r.request.method} {r.request.url.path}: {r.text}")
    assert r.status_code in ok or r.status_code == 429, r.text


def _drain(client: httpx.Client, base: str, ledger: Ledger) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        listed = client.get(base, params={"limit": 1000}).json()
        live = [j for j in listed["job_list"] if j["job_state"] not in TERMINAL]
        if not live:
            return
        time.sleep(0.5)
    raise AssertionError(f"jobs still live after the drain: {len(live)}")


def _verify(client: httpx.Client, base: str, ledger: Ledger, launch_log: Path) -> dict:
    assert ledger.server_errors == []
    listed = client.get(base, params={"limit": 1000}).json()
    visible = {j["job_id"]: j for j in listed["job_list"]}
    assert listed["total_record"] == len(visible)
    known = set(ledger.acked.values())
    assert set(visible) <= known, "a job nobody submitted (or a duplicate) appeared"
    for job_id in known:
        if job_id in ledger.deleted:
            assert job_id not in visible, "a deleted job came back"
        elif job_id not in ledger.maybe_deleted:
            assert job_id in visible, f"lost job {job_id}"
    for job in visible.values():
        assert job["job_state"] in TERMINAL and job["job_result"] != "UNDEFINED"
    launches = [line for line in launch_log.read_text().splitlines() if line]
    dupes = {j for j in launches if launches.count(j) > 1}
    assert not dupes, f"launched twice: {dupes}"
    return {"launches": len(launches)}
