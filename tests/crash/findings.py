"""What a crash run found once it drained: the counts of its summary, each with its evidence.

Jobs lost, duplicated, launched twice, stuck; processes left over (by job marker and by token);
SQL servers left after the instances stopped; directories left by purged jobs; and jobs the
service failed on its own: a job nobody killed, deleted or faulted that did not end as it asked
or did not produce what it should have (workload.check_output). An SQL job whose cluster's
Thrift server was killed while it was launched on it is faulted too; one launched after that
must succeed (the service starts the server again).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from faults import service_processes, sql
from workload import check_output, token

if TYPE_CHECKING:
    from harness import Run

__all__ = ["leftovers", "servers_left", "verify"]

TERMINAL = {"FINISHED", "FAILED", "KILLED"}
THRIFT_GRACE_MS = 1000  # a launch this close after a server's kill may still have been given it


def verify(run: Run, listed: list[dict]) -> dict:
    ledger = run.ledger
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
    launches = [line for line in run.launch_log.read_text().splitlines() if line]
    twice = sorted(j for j, c in Counter(launches).items() if c > 1)
    failed, counts = _judge(run, visible)
    return {
        "lost": lost + came_back,
        "duplicated": ledger.duplicated + strangers,
        "twice": twice,
        "stuck": stuck,
        "launches": len(launches),
        "leaked": _leaked_dirs(run),
        "failed": failed,
        "counts": counts,
    }


def _rows(run: Run) -> dict[str, dict]:
    with run.db.connect() as conn:
        rows = sql(conn, "SELECT id, workdir, owner, reason FROM jobs").all()
        accepted = dict(
            sql(
                conn,
                "SELECT job_id, max(at_ms) FROM job_events WHERE to_state = 'ACCEPTED' "
                "GROUP BY job_id",
            ).all()
        )
    return {
        r[0]: {"workdir": r[1], "owner": r[2], "reason": r[3], "accepted": accepted.get(r[0], 0)}
        for r in rows
    }


def _sql_results(run: Run, job_id: str) -> dict | None:
    with run.client(run.faults.up()[0]) as http:
        r = http.get(f"{run.base_path}/{job_id}/sql-result")
    return r.json().get("sql_results") if r.status_code < 300 else None


def _engine_info(row: dict) -> dict:
    try:
        return json.loads((Path(row["workdir"] or "/nonexistent") / "engine.json").read_text())
    except (OSError, ValueError):
        return {}


def _on_restarted_server(run: Run, row: dict) -> bool:
    """Whether an SQL job ran, after a kill, on a new server of the killed one's instance."""
    info = _engine_info(row)
    data_dirs = {inst.name: str(inst.data_dir) + "/" for inst in run.instances}
    return any(
        row["accepted"] > kill.at_ms
        and info.get("port") != kill.port
        and str(info.get("server_dir") or "").startswith(data_dirs[kill.instance])
        for kill in run.faults.thrift_kills
    )


def _thrift_hit(run: Run, row: dict, job: dict) -> bool:
    """Whether an SQL job was launched on a Thrift server that was killed before it ended."""
    port = _engine_info(row).get("port")  # None: never given a server, none hurt it
    return any(
        port == kill.port
        and row["accepted"] <= kill.at_ms + THRIFT_GRACE_MS
        and job["finished_time"] >= kill.at_ms
        for kill in run.faults.thrift_kills
    )


def _judge(run: Run, visible: dict[str, dict]) -> tuple[list[str], Counter[str]]:
    """Jobs nobody killed, deleted or faulted must end as they asked and must have produced
    their output: anything else the service did."""
    ledger = run.ledger
    rows = _rows(run)
    failed: list[str] = []
    counts: Counter[str] = Counter()
    skip = ledger.kill_asked | ledger.maybe_deleted | ledger.faulted
    first_thrift_kill = min((k.at_ms for k in run.faults.thrift_kills), default=None)
    for k, job_id in sorted(ledger.acked.items()):
        job, plan, row = visible.get(job_id), run.plans[k], rows.get(job_id, {})
        if job is None or job_id in skip:
            continue
        if plan.kind == "sql" and run.faults.thrift_kills and _thrift_hit(run, row, job):
            counts["thrift_faulted"] += 1
            continue
        counts["judged"] += 1
        counts[f"judged_{plan.kind}"] += 1
        workdir = Path(row.get("workdir") or "/nonexistent")
        results = _sql_results(run, job_id) if plan.kind == "sql" else None
        wrong = _check_result(job, plan.expected) or check_output(plan, workdir, results)
        if wrong:
            failed.append(
                f"job {k} [{plan.kind}] ({job_id}): {wrong}\n" + evidence(run, job_id, workdir)
            )
        elif plan.kind == "sql" and first_thrift_kill and row["accepted"] > first_thrift_kill:
            counts["sql_after_thrift"] += 1
            counts["thrift_restarted"] += _on_restarted_server(run, row)
        start, end = job["started_time"], job["finished_time"]
        if not wrong and any(0 < start <= down and up <= end for down, up in ledger.outages):
            # ran from before a kill -9 of its instance to after the restart, and right
            counts["across"] += plan.leaves_group
            counts["engine_across"] += plan.kind != "fake"
    return failed, counts


def _check_result(job: dict, expected: str) -> str:
    if job["job_result"] == expected:
        return ""
    return f"{job['job_state']}/{job['job_result']}, expected {expected}"


def evidence(run: Run, job_id: str, workdir: Path) -> str:
    with run.db.connect() as conn:
        events = sql(
            conn,
            "SELECT at_ms, from_state, to_state, reason FROM job_events "
            "WHERE job_id = :j ORDER BY id",
            {"j": job_id},
        ).all()
        row = sql(
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
    for inst in run.instances:
        for line in inst.log.read_text(errors="replace").splitlines():
            if job_id in line:
                lines.append(f"  {inst.name}.log: {line[:300]}")
    lines += [f"  thrift kill: {k}" for k in run.faults.thrift_kills]
    return "\n".join(lines)


def _leaked_dirs(run: Run) -> list[str]:
    """Job directories with files in them whose job is purged (after the purges ran)."""
    deadline = time.monotonic() + 20
    while True:
        with run.db.connect() as conn:
            pending = sql(conn, "SELECT count(*) FROM jobs WHERE deleted_ms > 0").scalar_one()
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    present = set(_rows(run))
    leaked = []
    for inst in run.instances:
        jobs_dir = inst.data_dir / "jobs"
        for d in jobs_dir.iterdir() if jobs_dir.exists() else []:
            if d.name not in present and any(d.iterdir()):
                leaked.append(str(d))
    return leaked


def leftovers(run: Run) -> list[str]:
    """Live processes of the run's jobs, waited for a little (kills take their grace)."""
    tokens = [token(run.run_id, k) for k, p in run.plans.items() if p.leaves_group]
    deadline = time.monotonic() + 10
    while (left := _leftovers(set(run.ledger.acked.values()), tokens)) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    return left


def servers_left(run: Run) -> list[str]:
    """The cluster's SQL servers still alive once every instance stopped (a stopping service
    stops its idle servers), then ended so that the run leaves no JVM behind."""
    markers = [f"{inst.installation}:{run.cluster_id}" for inst in run.instances]
    deadline = time.monotonic() + 10
    while True:
        found = {pid: argv for m in markers for pid, argv in service_processes(m).items()}
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return [f"{pid}: {_shown(argv)}" for pid, argv in found.items()]


def _shown(argv: bytes) -> str:
    return argv.replace(b"\0", b" ")[:120].decode(errors="replace")


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
