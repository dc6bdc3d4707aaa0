"""Crash test: kill -9 the service at random moments while a workload runs; lose nothing.

A seeded workload (CRASH_SEED, CRASH_JOBS=200, CRASH_ROUNDS=20 by default) submits fake-engine
jobs (sleep, print, exit with a code, some ignoring SIGTERM) plus a few real Spark jobs, kills
and batch-deletes some of them, and `kill -9`s the server at a random moment in each round,
restarting it each time. Submits carry an X-Idempotency-Key, so a submit whose answer was lost
in a crash is simply retried. At the end every acknowledged job is present (unless deleted)
and terminal, nothing was launched twice, and no engine process is left running.
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
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from support import SigV4Auth
from support_supervisor import marked_pids

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

    def kill9(self) -> None:
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


def _job_args(rng: random.Random, k: int, script: Path) -> list[str]:
    if k < SPARK_JOBS:
        return [str(script)]
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
    args_of = {k: _job_args(rng, k, script) for k in range(JOBS)}
    next_job = 0
    started = time.monotonic()
    try:
        for _round in range(ROUNDS + 1):
            server.start()
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
                killer = threading.Timer(crash_at - time.monotonic(), server.kill9)
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
                    elif action < 0.87 and ledger.acked:
                        job_id = rng.choice(list(ledger.acked.values()))
                        r = client.post(f"{base}/{job_id}/kill")
                        _check(r, ledger, ok=(202, 400))
                    elif ledger.acked:
                        ids = rng.sample(
                            list(ledger.acked.values()), min(len(ledger.acked), rng.randint(1, 4))
                        )
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
    finally:
        server.stop()
    print(
        f"\ncrash test: seed={SEED} jobs={len(ledger.acked)} crashes={ledger.crashes} "
        f"deleted={len(ledger.deleted)} launches={outcome['launches']} "
        f"lost=0 duplicates=0 orphans=0 5xx={len(ledger.server_errors)} "
        f"in {time.monotonic() - started:.0f} s"
    )
    # After the service stopped, every job had ended: no engine process may remain.
    leftovers = [p for j in ledger.acked.values() for p in marked_pids(j)]
    assert leftovers == []


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
