"""The crash harness: a seeded workload against one or two ``serve`` instances, with faults.

One run (:func:`run`) starts the instances on one store (SQLite: one instance; PostgreSQL: two,
each with its own data directory, sharing the store and the sealing key), makes a cluster,
and submits fake-engine jobs at a steady pace while it injects faults of four kinds:

- ``service``: kill -9 of an instance at a random moment (mid-request or not);
- ``after_submit``: kill -9 of the instance that answered a submit, 0-20 ms after the answer;
- ``shim``: SIGKILL of a running job's shim (the pid the store recorded, checked by start time);
- ``engine``: SIGKILL of a process inside a running job's box (found by its job marker).

With two instances a killed one comes back either at once or, half of the time, only after its
peer adopted its live jobs (an outage longer than three missed heartbeats): the restart must
leave the adopted jobs alone. With one instance it comes back at once.

Then it drains, and counts: jobs lost, duplicated, launched twice, stuck, processes left over
(by marker and by token), directories left by purged jobs, 5xx answers, and jobs the service
failed on its own (a job nobody killed, deleted or faulted that did not end as it asked or did
not write its own output). Each failed one comes with its evidence: its events, its exit.json
and the service log lines that name it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy
from support import SigV4Auth

from mrs_jobs.runtime.process import read_start_ticks
from mrs_jobs.secretbox import generate_key
from mrs_jobs.settings import Settings, installation_id

__all__ = ["Config", "run"]

HERE = Path(__file__).resolve().parent
SERVE_FAKE = HERE / "serve_fake.py"
TERMINAL = {"FINISHED", "FAILED", "KILLED"}
FAULT_KINDS = ("service", "after_submit", "shim", "engine")
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
        self.sup_id = f"{socket.gethostname()}-{installation_id(settings)}"
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


def _token(run_id: str, k: int) -> str:
    return f"crash-unmarked-{run_id}-{k}"


def job_args(rng: random.Random, k: int, run_id: str) -> list[str]:
    """Fast fake jobs; a quarter leave their launcher's group and session (and the marker)."""
    if rng.random() < 0.25:
        return [
            "fake",
            "--sleep",
            f"{rng.uniform(1.0, 3.0):.2f}",
            "--print",
            f"job-{k}",
            "--spawn-detached",
            "--spawn-unmarked",
            _token(run_id, k),
            "--wait-children",
        ]
    args = ["fake", "--sleep", f"{rng.uniform(0.2, 2.0):.2f}", "--print", f"job-{k}"]
    if rng.random() < 0.2:
        args += ["--exit", str(rng.choice([1, 2, 3]))]
    if rng.random() < 0.1:
        args.append("--ignore-term")
    return args


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
        self.args_of = {k: job_args(self.rng, k, self.run_id) for k in range(cfg.jobs)}
        # Two thirds of the group-leaving jobs are never killed, deleted or faulted: judged.
        self.kept = {k for k, a in self.args_of.items() if "--wait-children" in a and k % 3}
        self.base_path = ""
        self.auth: SigV4Auth | None = None
        self.killers: list[threading.Timer] = []

    # -- set-up ------------------------------------------------------------------------------
    def setup(self) -> None:
        for inst in self.instances:
            inst.start()
        first = self.instances[0]
        boot = json.loads((first.data_dir / "bootstrap.json").read_text())
        env = {**first.env}
        cluster = subprocess.run(
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
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        self.auth = SigV4Auth(boot["ak"], boot["sk"], boot["project_id"])
        self.base_path = f"/v2/{boot['project_id']}/clusters/{cluster}/job-executions"

    # -- the fault side ----------------------------------------------------------------------
    def _tend(self) -> None:
        """Notice instances that died; bring them back when their outage is over."""
        now = time.monotonic()
        for inst in self.instances:
            if inst.down_ms == 0 and inst.proc is not None and inst.proc.poll() is not None:
                inst.down_ms = time.time_ns() // 1_000_000
                with self.db.connect() as conn:
                    inst.live_at_kill = {
                        r[0]
                        for r in _sql(
                            conn,
                            "SELECT id FROM jobs WHERE owner = :o "
                            "AND state IN ('ACCEPTED', 'RUNNING')",
                            {"o": inst.sup_id},
                        )
                    }
                inst.restart_at = now + (
                    self.rng.uniform(0.1, 0.8) if inst.outage == "short" else 0.0
                )
            if inst.down_ms == 0:
                continue
            if inst.outage == "adopted" and not self._adopted(inst, now):
                continue
            if now < inst.restart_at:
                continue
            down = inst.down_ms
            inst.start()
            self.ledger.outages.append((down, time.time_ns() // 1_000_000))

    def _adopted(self, inst: Instance, now: float) -> bool:
        """Whether a peer took over every live job of ``inst`` (or waited long enough)."""
        if now > inst.restart_at + 30:
            return True  # not adopted in time: the summary shows it (adopted count)
        with self.db.connect() as conn:
            rows = _sql(
                conn, "SELECT id, owner, state FROM jobs WHERE state IN ('ACCEPTED', 'RUNNING')"
            ).all()
        if any(owner == inst.sup_id for _, owner, _ in rows):
            return False
        live = {job_id for job_id, _, _ in rows}
        self.ledger.adopted_then_restarted += len(inst.live_at_kill & live)
        return True

    def _up(self) -> list[Instance]:
        return [i for i in self.instances if i.up]

    def _outage(self) -> str:
        if len(self.instances) == 1:
            return "now"
        return self.rng.choice(["short", "adopted"])

    def _victim(self) -> Instance | None:
        """An instance to kill: never the last one up (the client needs one)."""
        up = self._up()
        if len(self.instances) > 1 and len(up) < len(self.instances):
            return None
        return self.rng.choice(up) if up else None

    def fault(self, kind: str, answered_by: Instance | None = None) -> bool:
        ledger = self.ledger
        if kind == "service":
            victim = self._victim()
            if victim is None:
                return False
            victim.outage = self._outage()
            timer = threading.Timer(self.rng.uniform(0.0, 0.4), victim.kill9)
            timer.start()
            self.killers.append(timer)
        elif kind == "after_submit":
            if answered_by is None or self._victim() is None:
                return False
            time.sleep(self.rng.uniform(0.0, 0.02))
            answered_by.outage = self._outage()
            answered_by.kill9()
        else:
            job = self._running_job()
            if job is None:
                return False
            job_id, pid, pid_start = job
            if kind == "shim":
                if read_start_ticks(pid) != pid_start:
                    return False
                target = pid
            else:
                inside = [p for p, argv in _marked(job_id).items() if b"fake_engine.py" in argv]
                if not inside:
                    return False
                target = self.rng.choice(inside)
            try:
                os.kill(target, signal.SIGKILL)
            except ProcessLookupError:
                return False
            ledger.faulted.add(job_id)
        ledger.faults[kind] += 1
        return True

    def _running_job(self) -> tuple[str, int, int] | None:
        spared = {self.ledger.acked[k] for k in self.kept if k in self.ledger.acked}
        with self.db.connect() as conn:
            rows = _sql(
                conn,
                "SELECT id, pid, pid_start FROM jobs WHERE state = 'RUNNING' "
                "AND pid IS NOT NULL AND deleted_ms = 0",
            ).all()
        rows = [r for r in rows if r[0] not in spared and r[0] not in self.ledger.faulted]
        if not rows:
            return None
        job_id, pid, pid_start = self.rng.choice(sorted(rows))
        return job_id, int(pid), int(pid_start)

    # -- the client side ---------------------------------------------------------------------
    def _client(self, inst: Instance) -> httpx.Client:
        return httpx.Client(base_url=inst.endpoint, auth=self.auth, timeout=10)

    def workload(self) -> None:
        cfg, rng = self.cfg, self.rng
        plan = [FAULT_KINDS[i % len(FAULT_KINDS)] for i in range(cfg.faults)]
        rng.shuffle(plan)
        pace = 2.2 * cfg.faults / cfg.jobs  # seconds between submits: faults spread over it
        started = time.monotonic()
        next_fault = started + rng.uniform(0.5, 2.0)
        next_job = 0
        pending: list[int] = []
        while next_job < cfg.jobs or pending or plan:
            self._tend()
            if not pending and next_job >= cfg.jobs and time.monotonic() > started + 400 * pace:
                break  # faults that found no running job to hit: the summary counts the rest
            up = self._up()
            if not up:
                time.sleep(0.01)
                continue
            now = time.monotonic()
            if plan and now >= next_fault and plan[0] != "after_submit":
                if self.fault(plan[0]):
                    plan.pop(0)
                    next_fault = now + rng.uniform(1.2, 3.0)
                else:
                    next_fault = now + 0.2
                continue
            inst = rng.choice(up)
            if not pending and next_job < cfg.jobs and now >= started + next_job * pace:
                pending.append(next_job)
                next_job += 1
            if not pending:
                if plan and plan[0] == "after_submit" and next_job >= cfg.jobs:
                    plan.pop(0)  # no submit left to answer: make it a plain kill
                    plan.insert(0, "service")
                time.sleep(0.01)
                continue
            k = pending[-1]
            try:
                with self._client(inst) as http:
                    if not self._submit(http, k):
                        continue
                    pending.pop()
                    if plan and plan[0] == "after_submit" and now >= next_fault:
                        if self.fault("after_submit", answered_by=inst):
                            plan.pop(0)
                            next_fault = time.monotonic() + rng.uniform(1.2, 3.0)
                        continue
                    self._kill_or_delete(http, k)
            except httpx.TransportError:
                continue  # the instance died mid-request: the submit is retried (same key)
        for timer in self.killers:
            timer.join()
        self._tend()

    def _submit(self, http: httpx.Client, k: int) -> bool:
        r = http.post(
            self.base_path,
            json={"job_type": "SparkSubmit", "job_name": f"crash{k}", "arguments": self.args_of[k]},
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
    def drain(self, timeout: float = 120.0) -> list[dict]:
        """Wait until every visible job is terminal (or the timeout); the jobs as listed."""
        deadline = time.monotonic() + timeout
        while True:
            self._tend()
            with self._client(self._up()[0]) as http:
                listed = http.get(self.base_path, params={"limit": 1000}).json()["job_list"]
            live = [j for j in listed if j["job_state"] not in TERMINAL]
            if not live or time.monotonic() > deadline:
                return listed
            time.sleep(0.5)

    def verify(self, listed: list[dict]) -> dict:
        ledger = self.ledger
        visible = {j["job_id"]: j for j in listed}
        known = set(ledger.acked.values())
        lost = [
            j
            for j in known
            if j not in visible and j not in ledger.maybe_deleted and j not in ledger.deleted
        ]
        came_back = [j for j in ledger.deleted if j in visible]
        strangers = [j for j in visible if j not in known]
        stuck = [j for j, job in visible.items() if job["job_state"] not in TERMINAL]
        launches = [line for line in self.launch_log.read_text().splitlines() if line]
        twice = sorted(j for j, c in Counter(launches).items() if c > 1)
        failed, judged, across = self._judge(visible)
        leaked = self._leaked_dirs()
        return {
            "lost": lost + came_back,
            "duplicated": ledger.duplicated + strangers,
            "twice": twice,
            "stuck": stuck,
            "failed": failed,
            "judged": judged,
            "across": across,
            "launches": len(launches),
            "leaked": leaked,
        }

    def _rows(self) -> dict[str, dict]:
        with self.db.connect() as conn:
            rows = _sql(conn, "SELECT id, workdir, owner, reason FROM jobs").all()
        return {r[0]: {"workdir": r[1], "owner": r[2], "reason": r[3]} for r in rows}

    def _judge(self, visible: dict[str, dict]) -> tuple[list[str], int, int]:
        """Jobs nobody killed, deleted or faulted must end as they asked (their exit code) and
        must have run (their own output is in their log): anything else the service did."""
        ledger = self.ledger
        rows = self._rows()
        failed: list[str] = []
        judged = across = 0
        skip = ledger.kill_asked | ledger.maybe_deleted | ledger.faulted
        for k, job_id in sorted(ledger.acked.items()):
            job = visible.get(job_id)
            if job is None or job_id in skip:
                continue
            judged += 1
            args = self.args_of[k]
            expected = "FAILED" if "--exit" in args else "SUCCEEDED"
            workdir = Path(rows.get(job_id, {}).get("workdir") or "/nonexistent")
            try:
                ran = f"job-{k}" in (workdir / "stdout.log").read_text(errors="replace")
            except OSError:
                ran = False
            if job["job_result"] != expected or not ran:
                failed.append(
                    f"job {k} ({job_id}): {job['job_state']}/{job['job_result']}, expected "
                    f"{expected}, {'ran' if ran else 'no output of its own'}\n"
                    + self.evidence(job_id, workdir)
                )
            if "--wait-children" in args:  # running from before a kill -9 to after a restart
                start, end = job["started_time"], job["finished_time"]
                across += any(0 < start <= down and up <= end for down, up in ledger.outages)
        return failed, judged, across

    def evidence(self, job_id: str, workdir: Path) -> str:
        with self.db.connect() as conn:
            events = _sql(
                conn,
                "SELECT at_ms, from_state, to_state, reason FROM job_events "
                "WHERE job_id = :j ORDER BY id",
                {"j": job_id},
            ).all()
            row = _sql(
                conn, "SELECT owner, pid, pid_start, workdir FROM jobs WHERE id = :j", {"j": job_id}
            ).first()
        lines = [f"  row: {tuple(row) if row else None}"]
        lines += [f"  event {e[0]} {e[1]} -> {e[2]}: {e[3]}" for e in events]
        for name in ("exit.json", "stderr.log"):
            try:
                text = (workdir / name).read_text(errors="replace")[-600:]
            except OSError as exc:
                text = f"({type(exc).__name__})"
            lines.append(f"  {name}: {text.strip()}")
        for inst in self.instances:
            for line in inst.log.read_text(errors="replace").splitlines():
                if job_id in line:
                    lines.append(f"  {inst.name}.log: {line[:300]}")
        return "\n".join(lines)

    def _leaked_dirs(self) -> list[str]:
        """Job directories with files in them whose job is purged (after the purges ran)."""
        deadline = time.monotonic() + 20
        while True:
            with self.db.connect() as conn:
                pending = _sql(conn, "SELECT count(*) FROM jobs WHERE deleted_ms > 0").scalar_one()
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        present = set(self._rows())
        leaked = []
        for inst in self.instances:
            jobs_dir = inst.data_dir / "jobs"
            for d in jobs_dir.iterdir() if jobs_dir.exists() else []:
                if d.name not in present and any(d.iterdir()):
                    leaked.append(str(d))
        return leaked

    def leftovers(self) -> list[str]:
        tokens = [_token(self.run_id, k) for k, a in self.args_of.items() if "--wait-children" in a]
        deadline = time.monotonic() + 10
        while (left := _leftovers(set(self.ledger.acked.values()), tokens)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        return left

    def stop(self) -> None:
        for timer in self.killers:
            timer.cancel()
        for inst in self.instances:
            inst.stop()
        self.db.dispose()


def _marked(job_id: str) -> dict[int, bytes]:
    """pid -> argv of the live processes carrying this job's marker."""
    marker = f"MRS_JOBS_JOB_ID={job_id}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
        except OSError:
            continue
    return found


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


def run(cfg: Config, root: Path) -> tuple[str, dict]:
    """One harness run; the summary line and the findings (lists of evidence)."""
    started = time.monotonic()
    harness = Run(cfg, root)
    try:
        harness.setup()
        harness.workload()
        listed = harness.drain()
        found = harness.verify(listed)
    finally:
        harness.stop()
    found["orphans"] = harness.leftovers()
    found["5xx"] = harness.ledger.server_errors
    ledger = harness.ledger
    faults = " ".join(f"{k}={ledger.faults[k]}" for k in FAULT_KINDS)
    summary = (
        f"crash [{cfg.store} x{cfg.instances}] seed={cfg.seed} jobs={len(ledger.acked)} "
        f"faults={sum(ledger.faults.values())} ({faults}) "
        f"adopted_then_restarted={ledger.adopted_then_restarted} "
        f"deleted={len(ledger.deleted)} killed={len(ledger.kill_asked)} "
        f"launches={found['launches']} lost={len(found['lost'])} "
        f"duplicated={len(found['duplicated'])} launched_twice={len(found['twice'])} "
        f"stuck={len(found['stuck'])} orphans={len(found['orphans'])} "
        f"leaked_dirs={len(found['leaked'])} 5xx={len(found['5xx'])} "
        f"failed_by_service={len(found['failed'])} judged={found['judged']} "
        f"across_restart={found['across']} in {time.monotonic() - started:.0f} s"
    )
    found["adopted"] = ledger.adopted_then_restarted
    found["faults"] = sum(ledger.faults.values())
    found["jobs"] = len(ledger.acked)
    return summary, found


def _sql(conn: sqlalchemy.Connection, statement: str, params: dict | None = None):  # type: ignore[no-untyped-def]
    return conn.execute(sqlalchemy.text(statement), params or {})
