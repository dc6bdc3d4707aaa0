"""The crash harness: a seeded workload against one or two ``serve`` instances, with faults.

One run (:func:`run`) starts the instances on one store (SQLite: one instance; PostgreSQL: two,
each with its own data directory, sharing the store and the sealing key), makes a cluster,
and submits jobs at a steady pace (workload.py: fast fake-engine jobs, and optionally a mix of
MapReduce, SQL, DistCp and busy PySpark jobs on the real engines) while it injects faults
(faults.py): kill -9 of an instance at random moments and 0-20 ms after a submit's answer,
SIGKILL of shims, of processes in a job's box and of the cluster's Thrift server.

With two instances a killed one comes back either at once or, half of the time, only after its
peer adopted its live jobs (an outage longer than three missed heartbeats): the restart must
leave the adopted jobs alone. With one instance it comes back at once.

Then it drains, and counts (findings.py): jobs lost, duplicated, launched twice, stuck,
processes left over (by marker and by token), SQL servers left, directories left by purged
jobs, 5xx answers, and jobs the service failed on its own (a job nobody killed, deleted or
faulted that did not end as it asked or did not produce its output). Each failed one comes
with its evidence: its events, its exit.json and the service log lines that name it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy
from faults import FAULT_KINDS, Faults
from findings import TERMINAL, leftovers, servers_left, verify
from support import SigV4Auth
from workload import build_programs, make_plans

from mrs_jobs.secretbox import generate_key
from mrs_jobs.settings import Settings, installation_id

__all__ = ["Config", "run"]

HERE = Path(__file__).resolve().parent
SERVE_FAKE = HERE / "serve_fake.py"
SHARED_SECRET_KEY = generate_key()  # instances sharing one store share the sealing key


@dataclass
class Config:
    store: str  # "sqlite" or "postgresql"
    instances: int
    seed: int
    jobs: int
    faults: int
    db_url: str | None = None  # None: SQLite in the first instance's data directory
    heartbeat_seconds: float = 0.5
    max_running: int = 8
    engines: dict[str, int] = field(default_factory=dict)  # real-engine jobs of each kind
    thrift_faults: int = 0  # of the faults, kills of the cluster's Thrift server
    jar: Path | None = None  # the WordCount jar (support_jobs), for MapReduce jobs
    pace: float | None = None  # seconds between submits; None: the faults spread over them
    drain_seconds: float = 120.0


class Instance:
    """One ``serve`` process (tests/crash/serve_fake.py) with its own data directory."""

    def __init__(self, name: str, root: Path, launch_log: Path, cfg: Config) -> None:
        self.name = name
        self.data_dir = root / name
        self.log = root / f"{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")}
        self.env.update(
            MRS_JOBS_DATA_DIR=str(self.data_dir),
            MRS_JOBS_PORT="0",
            MRS_JOBS_POLL_INTERVAL="0.05",
            MRS_JOBS_KILL_GRACE_SECONDS="1",
            MRS_JOBS_HEARTBEAT_SECONDS=str(cfg.heartbeat_seconds),
            FAKE_ENGINE_LAUNCH_LOG=str(launch_log),
        )
        roots = os.environ.get("MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS")  # tests/conftest.py
        if roots:  # jobs are boxed: the launch log must be somewhere they may write
            self.env["MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS"] = roots
        if cfg.db_url:
            self.env["MRS_JOBS_DATABASE_URL"] = cfg.db_url
            self.env["MRS_JOBS_SECRET_KEY"] = SHARED_SECRET_KEY
        settings = Settings(data_dir=self.data_dir, database_url=cfg.db_url)
        self.installation = installation_id(settings)  # also the mark of its SQL servers
        self.sup_id = f"{socket.gethostname()}-{self.installation}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self.down_ms = 0  # when it was killed (0: up)
        self.outage = "now"  # how the pending restart waits: now | short | adopted
        self.restart_at = 0.0
        self.live_at_kill: set[str] = set()

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.down_ms == 0

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVE_FAKE)],
            env=self.env,
            stdout=open(self.log, "ab"),  # noqa: SIM115 - the child holds it
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        marker = "mrs-jobs is running at"
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            if marker in text:
                self.endpoint = text.split(marker, 1)[1].split()[0]
                self.down_ms = 0
                return
            if self.proc.poll() is not None:
                raise RuntimeError(text[-3000:])
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not start")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()


@dataclass
class Ledger:
    acked: dict[int, str] = field(default_factory=dict)  # logical job -> job id
    deleted: set[str] = field(default_factory=set)  # 202 received
    maybe_deleted: set[str] = field(default_factory=set)  # asked (answer maybe lost)
    kill_asked: set[str] = field(default_factory=set)
    faulted: set[str] = field(default_factory=set)  # its shim or engine was SIGKILLed
    server_errors: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    outages: list[tuple[int, int]] = field(default_factory=list)  # (down ms, up again ms)
    adopted_then_restarted: int = 0  # live jobs a peer adopted before their owner came back


class Run:
    def __init__(self, cfg: Config, root: Path) -> None:
        self.cfg = cfg
        self.root = root
        self.rng = random.Random(cfg.seed)
        self.run_id = uuid.uuid4().hex[:12]
        self.launch_log = root / "launches.log"
        self.instances = [
            Instance(f"data{i}", root, self.launch_log, cfg) for i in range(cfg.instances)
        ]
        self.db = sqlalchemy.create_engine(
            cfg.db_url or f"sqlite:///{root / 'data0' / 'mrs-jobs.db'}"
        )
        self.ledger = Ledger()
        programs = build_programs(root / "programs", cfg.jar) if cfg.engines else None
        self.plans = make_plans(self.rng, cfg.jobs, self.run_id, cfg.engines, root, programs)
        sql_jobs = sorted(k for k, p in self.plans.items() if p.kind == "sql")
        # The last SQL jobs are submitted once the Thrift servers were killed: they show that
        # the service starts a server again.
        self.held = set(sql_jobs[-2:]) if cfg.thrift_faults else set()
        self.deferred: list[int] = []  # jobs whose turn came while they had to wait
        # Never killed, deleted or faulted, so judged: two thirds of the group-leaving jobs,
        # the held SQL jobs and the first real-engine job of each kind.
        firsts = {min(k for k, p in self.plans.items() if p.kind == kind) for kind in cfg.engines}
        self.kept = {k for k, p in self.plans.items() if p.leaves_group and k % 3}
        self.kept |= self.held | firsts
        self.thrift_deadline = 0.0
        self.base_path = ""
        self.cluster_id = ""
        self.auth: SigV4Auth | None = None
        self.faults = Faults(self)

    # -- set-up ------------------------------------------------------------------------------
    def setup(self) -> None:
        for inst in self.instances:
            inst.start()
        first = self.instances[0]
        boot = json.loads((first.data_dir / "bootstrap.json").read_text())
        env = {**first.env}
        self.cluster_id = subprocess.run(
            [
                str(Path(sys.executable).parent / "mrs-jobs"),
                "admin",
                "create-cluster",
                boot["project_id"],
                "--max-running",
                str(self.cfg.max_running),
                "--max-queued",
                "100000",
                "--output-root",
                str(self.root),
                "--components",
                "Spark,Hive,Hadoop",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        self.auth = SigV4Auth(boot["ak"], boot["sk"], boot["project_id"])
        self.base_path = f"/v2/{boot['project_id']}/clusters/{self.cluster_id}/job-executions"

    # -- the client side ---------------------------------------------------------------------
    def client(self, inst: Instance) -> httpx.Client:
        return httpx.Client(base_url=inst.endpoint, auth=self.auth, timeout=10)

    def _fault_plan(self) -> list[str]:
        """The faults in order: the four kinds in turn, shuffled; Thrift server kills spread
        over the first 60 % (SQL jobs must still come after them)."""
        cfg, rng = self.cfg, self.rng
        base = FAULT_KINDS[:4]
        plan = [base[i % len(base)] for i in range(cfg.faults - cfg.thrift_faults)]
        rng.shuffle(plan)
        for i in range(cfg.thrift_faults):
            plan.insert(int(len(plan) * 0.6 * (i + 1) / (cfg.thrift_faults + 1)), "thrift")
        return plan

    def _fault_failed(self, plan: list[str]) -> None:
        """plan[0] found nothing to hit now: a Thrift kill waits its turn behind the next
        fault (it needs a serving server), or becomes an instance kill once no SQL job is
        left to show that the server comes back. A shim or engine kill that finds no running
        job once every job was submitted becomes an instance kill too, so the run still
        makes its count of faults (a run once ended one short, none of its jobs running)."""
        if plan[0] in ("shim", "engine") and len(self.ledger.acked) >= self.cfg.jobs:
            plan[0] = "service"
            return
        if plan[0] != "thrift":
            return
        to_come = any(p.kind == "sql" and k not in self.ledger.acked for k, p in self.plans.items())
        if not to_come or time.monotonic() > self.thrift_deadline:
            plan[0] = "service"
        elif len(plan) > 1:
            plan.insert(1, plan.pop(0))

    def _may_submit(self, k: int, plan: list[str]) -> bool:
        """Held SQL jobs wait for the Thrift kills; SQL jobs wait for a killed server to be
        gone."""
        if k in self.held and "thrift" in plan:
            return False
        return self.plans[k].kind != "sql" or self.faults.sql_may_submit()

    def _next(self, next_job: int, due: bool, plan: list[str], pending: list[int]) -> int:
        """Queue the next job to submit: a deferred one that may go now, else the next in
        turn when it is due (deferred when it must wait); returns the next in turn."""
        ready = [k for k in self.deferred if self._may_submit(k, plan)]
        if ready:
            self.deferred.remove(ready[0])
            pending.append(ready[0])
        elif due and next_job < self.cfg.jobs:
            waits = not self._may_submit(next_job, plan)
            (self.deferred if waits else pending).append(next_job)
            return next_job + 1
        return next_job

    def workload(self) -> None:
        cfg, rng = self.cfg, self.rng
        plan = self._fault_plan()
        pace = cfg.pace or 2.2 * cfg.faults / cfg.jobs  # seconds between submits
        started = time.monotonic()
        self.thrift_deadline = started + cfg.jobs * pace + 150
        next_fault = started + rng.uniform(0.5, 2.0)
        next_job = 0
        pending: list[int] = []
        while next_job < cfg.jobs or pending or plan or self.deferred:
            self.faults.tend()
            over = time.monotonic() > started + 400 * pace
            if not pending and not self.deferred and next_job >= cfg.jobs and over:
                break  # faults that found no running job to hit: the summary counts the rest
            up = self.faults.up()
            if not up:
                time.sleep(0.01)
                continue
            now = time.monotonic()
            if plan and now >= next_fault and plan[0] != "after_submit":
                if self.faults.fault(plan[0]):
                    plan.pop(0)
                    next_fault = now + rng.uniform(1.2, 3.0)
                else:
                    self._fault_failed(plan)
                    next_fault = now + 0.2
                continue
            inst = rng.choice(up)
            if not pending:
                next_job = self._next(next_job, now >= started + next_job * pace, plan, pending)
            if not pending:
                if plan and plan[0] == "after_submit" and next_job >= cfg.jobs:
                    plan.pop(0)  # no submit left to answer: make it a plain kill
                    plan.insert(0, "service")
                time.sleep(0.01)
                continue
            k = pending[-1]
            try:
                with self.client(inst) as http:
                    if not self._submit(http, k):
                        continue
                    pending.pop()
                    if plan and plan[0] == "after_submit" and now >= next_fault:
                        if self.faults.fault("after_submit", answered_by=inst):
                            plan.pop(0)
                            next_fault = time.monotonic() + rng.uniform(1.2, 3.0)
                        continue
                    self._kill_or_delete(http, k)
            except httpx.TransportError:
                continue  # the instance died mid-request: the submit is retried (same key)
        self.faults.join()
        self.faults.tend()

    def _submit(self, http: httpx.Client, k: int) -> bool:
        r = http.post(
            self.base_path,
            json=self.plans[k].body(),
            headers={"X-Idempotency-Key": f"crash-{self.cfg.seed}-{self.run_id}-{k}"},
        )
        self._check(r, ok=(200,))
        if r.status_code != 200:
            return False
        job_id = r.json()["job_submit_result"]["job_id"]
        if self.ledger.acked.get(k, job_id) != job_id:
            self.ledger.duplicated.append(f"job {k}: {self.ledger.acked[k]} and {job_id}")
        self.ledger.acked[k] = job_id
        return True

    def _kill_or_delete(self, http: httpx.Client, k: int) -> None:
        roll = self.rng.random()
        choosable = sorted(j for i, j in self.ledger.acked.items() if i not in self.kept)
        if roll < 0.08 and choosable:
            job_id = self.rng.choice(choosable)
            self.ledger.kill_asked.add(job_id)
            self._check(http.post(f"{self.base_path}/{job_id}/kill"), ok=(202, 400))
        elif roll < 0.14 and choosable:
            ids = self.rng.sample(choosable, min(len(choosable), self.rng.randint(1, 3)))
            ids = [i for i in ids if i not in self.ledger.deleted]
            if ids:
                self.ledger.maybe_deleted.update(ids)
                r = http.post(f"{self.base_path}/batch-delete", json={"job_id_list": ids})
                self._check(r, ok=(202, 400))
                if r.status_code == 202:
                    self.ledger.deleted.update(ids)

    def _check(self, r: httpx.Response, ok: tuple[int, ...]) -> None:
        if r.status_code >= 500:
            self.ledger.server_errors.append(
                f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}"
            )
        elif r.status_code not in ok and r.status_code != 429:
            raise AssertionError(f"{r.request.method} {r.request.url.path}: {r.text}")

    # -- the end -----------------------------------------------------------------------------
    def drain(self) -> list[dict]:
        """Wait until every visible job is terminal (or the timeout); the jobs as listed."""
        deadline = time.monotonic() + self.cfg.drain_seconds
        while True:
            self.faults.tend()
            with self.client(self.faults.up()[0]) as http:
                listed = http.get(self.base_path, params={"limit": 1000}).json()["job_list"]
            live = [j for j in listed if j["job_state"] not in TERMINAL]
            if not live or time.monotonic() > deadline:
                return listed
            time.sleep(0.5)

    def stop(self) -> None:
        self.faults.cancel()
        for inst in self.instances:
            inst.stop()
        self.db.dispose()


def run(cfg: Config, root: Path) -> tuple[str, dict]:
    """One harness run; the summary line and the findings (lists of evidence)."""
    started = time.monotonic()
    harness = Run(cfg, root)
    try:
        harness.setup()
        harness.workload()
        listed = harness.drain()
        found = verify(harness, listed)
    finally:
        harness.stop()
        left = servers_left(harness)
    found["orphans"] = leftovers(harness)
    found["servers_left"] = left
    found["5xx"] = harness.ledger.server_errors
    found["adopted"] = harness.ledger.adopted_then_restarted
    found["faults"] = sum(harness.ledger.faults.values())
    found["thrift_kills"] = len(harness.faults.thrift_kills)
    found["jobs"] = len(harness.ledger.acked)
    return _summary(harness, found, time.monotonic() - started), found


def _summary(harness: Run, found: dict, seconds: float) -> str:
    cfg, ledger, counts = harness.cfg, harness.ledger, found["counts"]
    kinds = FAULT_KINDS if cfg.thrift_faults else FAULT_KINDS[:4]
    faults = " ".join(f"{k}={ledger.faults[k]}" for k in kinds)
    line = (
        f"crash [{cfg.store} x{cfg.instances}] seed={cfg.seed} jobs={len(ledger.acked)} "
        f"faults={found['faults']} ({faults}) "
        f"adopted_then_restarted={ledger.adopted_then_restarted} "
        f"deleted={len(ledger.deleted)} killed={len(ledger.kill_asked)} "
        f"launches={found['launches']} lost={len(found['lost'])} "
        f"duplicated={len(found['duplicated'])} launched_twice={len(found['twice'])} "
        f"stuck={len(found['stuck'])} orphans={len(found['orphans'])} "
        f"leaked_dirs={len(found['leaked'])} 5xx={len(found['5xx'])} "
        f"failed_by_service={len(found['failed'])} judged={counts['judged']} "
        f"across_restart={counts['across']}"
    )
    if cfg.engines:
        line += " " + _engine_summary(harness, found)
    return line + f" in {seconds:.0f} s"


def _engine_summary(harness: Run, found: dict) -> str:
    """Per kind of real-engine job: judged (ran unfaulted) / submitted."""
    ledger, counts = harness.ledger, found["counts"]
    kind_of = {job_id: harness.plans[k].kind for k, job_id in ledger.acked.items()}
    submitted = Counter(kind_of.values())
    mix = " ".join(f"{k}={counts['judged_' + k]}/{submitted[k]}" for k in harness.cfg.engines)
    faulted = sum(1 for j in ledger.faulted if kind_of.get(j, "fake") != "fake")
    return (
        f"engine_jobs_judged/submitted=({mix}) engine_jobs_faulted={faulted} "
        f"engine_jobs_across_restart={counts['engine_across']} "
        f"thrift_faulted={counts['thrift_faulted']} "
        f"sql_after_thrift_kill={counts['sql_after_thrift']} "
        f"on_restarted_server={counts['thrift_restarted']} "
        f"sql_servers_left={len(found['servers_left'])}"
    )
