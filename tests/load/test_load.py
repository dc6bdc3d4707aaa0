"""Load test: ~200 concurrent clients mixing submit, list, show, kill and batch delete.

Against one server on SQLite, and against two servers (each with its own supervisor) sharing
one PostgreSQL. Bounded in time (LOAD_SECONDS, default 15) and loopback only. At the end:
zero 5xx, every acknowledged job present unless deleted, none duplicated or launched twice,
all terminal after a drain, and the cluster's running limit never exceeded across instances.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from support import SigV4Auth
from support_db import PG_URL, pg_or_skip

from mrs_jobs.secretbox import generate_key

pytestmark = pytest.mark.load

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "200"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "15"))
SERVE_FAKE = Path(__file__).resolve().parent.parent / "crash" / "serve_fake.py"
TERMINAL = {"FINISHED", "FAILED", "KILLED"}


SHARED_SECRET_KEY = generate_key()


def start(data_dir: Path, launch_log: Path, db_url: str | None) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")}
    env.update(
        MRS_JOBS_DATA_DIR=str(data_dir),
        MRS_JOBS_PORT="0",
        MRS_JOBS_POLL_INTERVAL="0.1",
        MRS_JOBS_KILL_GRACE_SECONDS="1",
        FAKE_ENGINE_LAUNCH_LOG=str(launch_log),
    )
    # the fake engine appends to launch_log, outside its job directory (tests/conftest.py)
    env["MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS"] = os.environ["MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS"]
    if db_url:
        env["MRS_JOBS_DATABASE_URL"] = db_url
        # Instances sharing one store must share the SK-sealing key (secretbox.py).
        env["MRS_JOBS_SECRET_KEY"] = SHARED_SECRET_KEY
    data_dir.mkdir(parents=True)
    log = data_dir.parent / f"{data_dir.name}.log"
    proc = subprocess.Popen(
        [sys.executable, str(SERVE_FAKE)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "mrs-jobs is running at" in text:
            return proc, text.split("mrs-jobs is running at", 1)[1].split()[0]
        if proc.poll() is not None:
            raise RuntimeError(text[-2000:])
        time.sleep(0.05)
    raise RuntimeError("server did not start")


class Workload:
    def __init__(self, bases: list[str], auth: SigV4Auth, seed: int) -> None:
        self.bases = bases
        self.auth = auth
        self.rng = random.Random(seed)
        self.acked: set[str] = set()
        self.deleted: set[str] = set()
        self.status: Counter[int] = Counter()
        self.errors: list[str] = []

    async def client(self, n: int, until: float) -> None:
        rng = random.Random(self.rng.random())
        async with httpx.AsyncClient(auth=self.auth, timeout=30) as http:
            while time.monotonic() < until:
                base = self.bases[n % len(self.bases)]
                roll = rng.random()
                if roll < 0.35 or not self.acked:
                    r = await http.post(
                        base,
                        json={
                            "job_type": "SparkSubmit",
                            "job_name": f"load{n}",
                            "arguments": ["fake", "--sleep", f"{rng.uniform(0.05, 1.0):.2f}"],
                        },
                    )
                    if r.status_code == 200:
                        self.acked.add(r.json()["job_submit_result"]["job_id"])
                elif roll < 0.6:
                    r = await http.get(base, params={"limit": rng.choice([10, 50, 100])})
                elif roll < 0.8:
                    r = await http.get(f"{base}/{rng.choice(sorted(self.acked))}")
                elif roll < 0.92:
                    r = await http.post(f"{base}/{rng.choice(sorted(self.acked))}/kill")
                else:
                    ids = rng.sample(sorted(self.acked), min(3, len(self.acked)))
                    r = await http.post(f"{base}/batch-delete", json={"job_id_list": ids})
                    if r.status_code == 202:
                        self.deleted.update(ids)
                self.status[r.status_code] += 1
                if r.status_code >= 500:
                    self.errors.append(f"{r.request.method} {r.request.url.path} {r.text}")
                elif r.status_code == 400:
                    code = r.json()["error_code"]
                    if code not in ("0175", "0176"):  # racing kills/deletes are expected
                        self.errors.append(f"unexpected 400 {code}: {r.text}")

    async def run(self) -> None:
        until = time.monotonic() + SECONDS
        await asyncio.gather(*(self.client(n, until) for n in range(CLIENTS)))


def _check(
    work: Workload,
    base: str,
    auth: SigV4Auth,
    launch_log: Path,
    max_running: int,
    running_seen: list[int],
) -> str:
    assert work.errors == [], work.errors[:5]
    assert all(code < 500 for code in work.status), work.status
    client = httpx.Client(auth=auth, timeout=30)
    deadline = time.monotonic() + 180
    while True:
        listed = client.get(base, params={"limit": 1000, "job_state": "SUBMITTED"}).json()
        live = client.get(base, params={"limit": 1}).json()
        states = Counter()
        page, visible = 1, {}
        while True:
            chunk = client.get(base, params={"limit": 1000, "offset": page}).json()
            for j in chunk["job_list"]:
                visible[j["job_id"]] = j
                states[j["job_state"]] += 1
            if len(chunk["job_list"]) < 1000:
                break
            page += 1
        if all(s in TERMINAL for s in states) or time.monotonic() > deadline:
            break
        time.sleep(1)
    del listed, live
    assert all(s in TERMINAL for s in states), states
    assert set(visible) <= work.acked, "a job nobody submitted appeared"
    assert work.acked - work.deleted <= set(visible), "lost jobs"
    assert not (work.deleted & set(visible)), "a deleted job is still listed"
    launches = [x for x in launch_log.read_text().splitlines() if x]
    twice = [j for j, c in Counter(launches).items() if c > 1]
    assert twice == [], f"launched twice: {twice[:5]}"
    assert max(running_seen, default=0) <= max_running, running_seen
    return (
        f"requests={sum(work.status.values())} by status={dict(work.status)} "
        f"jobs={len(work.acked)} deleted={len(work.deleted)} launches={len(launches)} "
        f"max running seen={max(running_seen, default=0)}/{max_running}"
    )


async def _sample_running(db_url: str, stop: asyncio.Event, out: list[int]) -> None:
    eng = sqlalchemy.create_engine(db_url)
    try:
        while not stop.is_set():
            with eng.connect() as conn:
                out.append(
                    conn.exec_driver_sql(
                        "SELECT count(*) FROM jobs WHERE state IN ('ACCEPTED','RUNNING')"
                    ).scalar_one()
                )
            await asyncio.sleep(0.2)
    finally:
        eng.dispose()


def _run(tmp_path: Path, db_url: str | None, servers: int) -> str:
    launch_log = tmp_path / "launches.log"
    procs, endpoints = [], []
    try:
        for i in range(servers):
            proc, endpoint = start(tmp_path / f"data{i}", launch_log, db_url)
            procs.append(proc)
            endpoints.append(endpoint)
        boot = json.loads((tmp_path / "data0" / "bootstrap.json").read_text())
        env = {**os.environ, "MRS_JOBS_DATA_DIR": str(tmp_path / "data0")}
        if db_url:
            env["MRS_JOBS_DATABASE_URL"] = db_url
        cluster = subprocess.run(
            [
                str(Path(sys.executable).parent / "mrs-jobs"),
                "admin",
                "create-cluster",
                boot["project_id"],
                "--max-running",
                "6",
                "--max-queued",
                "100000",
                "--output-root",
                str(tmp_path),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        auth = SigV4Auth(boot["ak"], boot["sk"], boot["project_id"])
        bases = [
            f"{e}/v2/{boot['project_id']}/clusters/{cluster}/job-executions" for e in endpoints
        ]
        work = Workload(bases, auth, seed=int(os.environ.get("LOAD_SEED", "7")))
        running_seen: list[int] = []
        sample_url = db_url or f"sqlite:///{tmp_path / 'data0' / 'mrs-jobs.db'}"

        async def main() -> None:
            stop = asyncio.Event()
            sampler = asyncio.create_task(_sample_running(sample_url, stop, running_seen))
            await work.run()
            stop.set()
            await sampler

        asyncio.run(main())
        return _check(work, bases[0], auth, launch_log, 6, running_seen)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_load_one_server_sqlite(tmp_path) -> None:
    print("\nload, one server on SQLite:", _run(tmp_path, None, 1))


def test_load_two_servers_postgresql(tmp_path) -> None:
    pg_or_skip()
    schema = "load_" + uuid.uuid4().hex[:10]
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        print("\nload, two servers on PostgreSQL:", _run(tmp_path, url, 2))
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
