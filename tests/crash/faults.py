"""The fault side of a crash run: kill -9 of instances, shims, engines and SQL servers.

Kinds:

- ``service``: kill -9 of an instance at a random moment (mid-request or not);
- ``after_submit``: kill -9 of the instance that answered a submit, 0-20 ms after the answer
  (done by the workload loop, which knows the answer);
- ``shim``: SIGKILL of a running job's shim (the pid the store recorded, checked by start time);
- ``engine``: SIGKILL of a process inside a running job's box (found by its job marker);
- ``thrift``: SIGKILL of a cluster's Spark Thrift server (its shim or its JVM, found by the
  service marker), preferably while an SQL job runs on it and only while SQL jobs are still to
  be submitted: the service must start it again for them.

With two instances a killed one comes back either at once or, half of the time, only after its
peer adopted its live jobs (an outage longer than three missed heartbeats). With one instance
it comes back at once. Shim and engine kills pick a real-engine job more often than not when
one is running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy

from mrs_jobs.runtime.process import read_start_ticks

if TYPE_CHECKING:
    from harness import Instance, Run

__all__ = ["FAULT_KINDS", "Faults", "ThriftKill", "marked", "service_processes", "sql"]

FAULT_KINDS = ("service", "after_submit", "shim", "engine", "thrift")
THRIFT_PATIENCE_S = 10.0  # how long a thrift kill waits for an SQL job to be mid-query


@dataclass(frozen=True)
class ThriftKill:
    at_ms: int
    port: int
    instance: str


class Faults:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.rng = run.rng
        self.killers: list[threading.Timer] = []
        self.thrift_kills: list[ThriftKill] = []
        self._thrift_waiting: float | None = None
        self._dying: tuple[int, int] | None = None  # a killed server's shim (pid, ticks)

    # -- instances ---------------------------------------------------------------------------
    def tend(self) -> None:
        """Notice instances that died; bring them back when their outage is over."""
        now = time.monotonic()
        for inst in self.run.instances:
            if inst.down_ms == 0 and inst.proc is not None and inst.proc.poll() is not None:
                inst.down_ms = time.time_ns() // 1_000_000
                with self.run.db.connect() as conn:
                    inst.live_at_kill = {
                        r[0]
                        for r in sql(
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
            self.run.ledger.outages.append((down, time.time_ns() // 1_000_000))

    def _adopted(self, inst: Instance, now: float) -> bool:
        """Whether a peer took over every live job of ``inst`` (or waited long enough)."""
        if now > inst.restart_at + 30:
            return True  # not adopted in time: the summary shows it (adopted count)
        with self.run.db.connect() as conn:
            rows = sql(
                conn, "SELECT id, owner, state FROM jobs WHERE state IN ('ACCEPTED', 'RUNNING')"
            ).all()
        if any(owner == inst.sup_id for _, owner, _ in rows):
            return False
        live = {job_id for job_id, _, _ in rows}
        self.run.ledger.adopted_then_restarted += len(inst.live_at_kill & live)
        return True

    def up(self) -> list[Instance]:
        return [i for i in self.run.instances if i.up]

    def _outage(self) -> str:
        if len(self.run.instances) == 1:
            return "now"
        return self.rng.choice(["short", "adopted"])

    def _victim(self) -> Instance | None:
        """An instance to kill: never the last one up (the client needs one)."""
        up = self.up()
        if len(self.run.instances) > 1 and len(up) < len(self.run.instances):
            return None
        return self.rng.choice(up) if up else None

    def join(self) -> None:
        for timer in self.killers:
            timer.join()

    def cancel(self) -> None:
        for timer in self.killers:
            timer.cancel()

    # -- one fault ---------------------------------------------------------------------------
    def fault(self, kind: str, answered_by: Instance | None = None) -> bool:
        """Inject one fault of ``kind``; False when there is nothing to hit now."""
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
        elif kind == "thrift":
            if not self._kill_thrift():
                return False
        elif not self._kill_in_job(kind):
            return False
        self.run.ledger.faults[kind] += 1
        return True

    def _kill_in_job(self, kind: str) -> bool:
        job = self._running_job()
        if job is None:
            return False
        job_id, pid, pid_start, fake = job
        if kind == "shim":
            if read_start_ticks(pid) != pid_start:
                return False
            target = pid
        else:
            inside = [p for p, argv in marked(job_id).items() if _is_engine(argv, fake)]
            if not inside:
                return False
            target = self.rng.choice(inside)
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.run.ledger.faulted.add(job_id)
        return True

    def _running_job(self) -> tuple[str, int, int, bool] | None:
        run = self.run
        spared = {run.ledger.acked[k] for k in run.kept if k in run.ledger.acked}
        with run.db.connect() as conn:
            rows = sql(
                conn,
                "SELECT id, pid, pid_start FROM jobs WHERE state = 'RUNNING' "
                "AND pid IS NOT NULL AND deleted_ms = 0",
            ).all()
        rows = sorted(r for r in rows if r[0] not in spared and r[0] not in run.ledger.faulted)
        kind_of = {job_id: run.plans[k].kind for k, job_id in run.ledger.acked.items()}
        real = [r for r in rows if kind_of.get(r[0], "fake") != "fake"]
        if real and self.rng.random() < 0.6:
            rows = real
        if not rows:
            return None
        job_id, pid, pid_start = self.rng.choice(rows)
        return job_id, int(pid), int(pid_start), kind_of.get(job_id, "fake") == "fake"

    # -- the SQL server ----------------------------------------------------------------------
    def _kill_thrift(self) -> bool:
        """SIGKILL a serving Thrift server of the cluster (its shim or its JVM)."""
        run = self.run
        later = [p for k, p in run.plans.items() if p.kind == "sql" and k not in run.ledger.acked]
        if not later:
            return False  # nobody would show that the service brings it back
        serving = [s for s in (self._server_of(i) for i in run.instances) if s is not None]
        if not serving:
            return False
        now = time.monotonic()
        if self._thrift_waiting is None:
            self._thrift_waiting = now
        states = self._sql_states()
        if states & {"SUBMITTED", "ACCEPTED"}:
            return False  # one may be handed the server as it dies: see sql_may_submit
        if "RUNNING" not in states and now - self._thrift_waiting < THRIFT_PATIENCE_S:
            return False
        inst, state = self.rng.choice(serving)
        jvms = [
            pid
            for pid, argv in service_processes(f"{inst.installation}:{run.cluster_id}").items()
            if b"HiveThriftServer2" in argv and pid != state["pid"]
        ]
        target = self.rng.choice(jvms) if jvms and self.rng.random() < 0.5 else state["pid"]
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self._thrift_waiting = None
        self._dying = (state["pid"], state["start_ticks"])
        self.thrift_kills.append(ThriftKill(time.time_ns() // 1_000_000, state["port"], inst.name))
        return True

    def _server_of(self, inst: Instance) -> tuple[Instance, dict] | None:
        path = inst.data_dir / "clusters" / self.run.cluster_id / "sql" / "state.json"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if read_start_ticks(state["pid"]) != state["start_ticks"]:
            return None
        return (inst, state) if port_open("127.0.0.1", state["port"]) else None

    def _sql_states(self) -> set[str]:
        """The states of the SQL jobs submitted so far."""
        run = self.run
        sql_jobs = {j for k, j in run.ledger.acked.items() if run.plans[k].kind == "sql"}
        with run.db.connect() as conn:
            rows = sql(conn, "SELECT id, state FROM jobs WHERE deleted_ms = 0").all()
        return {state for job_id, state in rows if job_id in sql_jobs}

    def sql_may_submit(self) -> bool:
        """Whether the last killed server's shim is gone (or a zombie): until then the
        service may still hand it to a new SQL job, which would wait the runner's connect
        timeout (180 s) for a port that never opens again. Known and reported, not what this
        harness measures: SQL submits wait these few milliseconds instead."""
        if self._dying is not None and _alive(*self._dying):
            return False
        self._dying = None
        return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _alive(pid: int, ticks: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[0] not in (b"Z", b"X") and int(fields[19]) == ticks


def _is_engine(argv: bytes, fake: bool) -> bool:
    """A process of the job's own: the fake engine itself, or any process of a real engine
    but its shim and the box's bubblewrap."""
    if fake:
        return b"fake_engine.py" in argv
    parts = argv.split(b"\0")
    return not (parts[0].endswith(b"bwrap") or any(p.endswith(b"shim.py") for p in parts))


def marked(job_id: str) -> dict[int, bytes]:
    """pid -> argv of the live processes carrying this job's marker."""
    return _with_env(f"MRS_JOBS_JOB_ID={job_id}".encode())


def service_processes(marker: str) -> dict[int, bytes]:
    """pid -> argv of the live processes of one service (a cluster's SQL server)."""
    return _with_env(f"MRS_JOBS_SERVICE={marker}".encode())


def _with_env(entry: bytes) -> dict[int, bytes]:
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if entry in (proc / "environ").read_bytes().split(b"\0"):
                stat = (proc / "stat").read_bytes()
                if stat[stat.rfind(b")") + 2 :].split()[:1] != [b"Z"]:
                    found[int(proc.name)] = (proc / "cmdline").read_bytes()
        except OSError:
            continue
    return found


def sql(conn: sqlalchemy.Connection, statement: str, params: dict | None = None):  # type: ignore[no-untyped-def]
    return conn.execute(sqlalchemy.text(statement), params or {})
