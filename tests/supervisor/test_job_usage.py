"""What a job used, measured by the shim of its run (boxed, through the real supervisor).

The fake engine spends CPU time (``--burn-for``, measured with ``process_time`` so a busy
host does not change the amount) in itself and in a child it waits for: the job's
``cpu_seconds`` is the whole tree's, ``peak_memory_mb`` one Python process's peak.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from support_supervisor import drive

from mrs_jobs.domain.job import to_mrs
from mrs_jobs.runtime import jobdir


def _ended(world, job_id: str) -> bool:  # type: ignore[no-untyped-def]
    return world.show(job_id).state in ("FINISHED", "FAILED", "KILLED")


def test_a_job_burning_two_cpu_seconds_reports_them(world) -> None:
    sup = world.supervisor()
    burner = world.submit("--burn-for", "1.0", "--burn-child", "1.0")
    idle = world.submit("--sleep", "0.2")
    drive(sup, lambda: _ended(world, burner) and _ended(world, idle), timeout=60)
    job = world.show(burner)
    assert (job.state, job.result) == ("FINISHED", "SUCCEEDED")
    assert 1.5 <= job.cpu_seconds <= 3.0, job.cpu_seconds  # two processes' second each
    assert 5 <= job.peak_memory_mb <= 500, job.peak_memory_mb  # one Python interpreter
    # Written by the shim with the exit status: a restarted service would find it there.
    record = json.loads((Path(job.workdir) / jobdir.EXIT).read_text())
    assert record["usage"] == {"cpu_seconds": job.cpu_seconds, "peak_memory_mb": job.peak_memory_mb}
    shown = to_mrs(job, 0)
    assert (shown["cpu_seconds"], shown["peak_memory_mb"]) == (
        job.cpu_seconds,
        job.peak_memory_mb,
    )
    # A job that sleeps uses next to nothing: the figure is the job's, not the host's.
    quiet = world.show(idle)
    assert quiet.cpu_seconds is not None and quiet.cpu_seconds < 1.0


def test_a_killed_job_still_reports_what_it_used(world) -> None:
    sup = world.supervisor()
    job_id = world.submit("--burn-cpu")
    drive(sup, lambda: world.show(job_id).state == "RUNNING")
    # Let it spend some CPU, then kill it: the box's processes are reaped and counted.
    drive(sup, lambda: _cpu_of(world.show(job_id).pid) >= 0.5, timeout=30)
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    drive(sup, lambda: _ended(world, job_id), timeout=30)
    job = world.show(job_id)
    assert job.state == "KILLED"
    # /proc's clock ticks and the shim's rusage round differently (0.499 seen against 0.5):
    # what matters is that the killed run's CPU was counted at all, not lost (~0).
    assert job.cpu_seconds is not None and job.cpu_seconds >= 0.4, job.cpu_seconds


def test_a_job_that_ended_while_the_service_was_down_keeps_its_usage(world) -> None:
    first = world.supervisor()
    job_id = world.submit("--burn-for", "0.8")
    drive(first, lambda: world.show(job_id).state == "RUNNING")
    workdir = Path(world.show(job_id).workdir)
    first.stop()  # the engine runs on, and ends while no service watches it
    deadline = time.monotonic() + 30
    while not (workdir / jobdir.EXIT).exists():
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.05)
    assert world.show(job_id).state == "RUNNING"
    second = world.supervisor()
    second.reconcile()
    drive(second, lambda: _ended(world, job_id))
    job = world.show(job_id)
    assert job.result == "SUCCEEDED"
    assert 0.6 <= job.cpu_seconds <= 2.0, job.cpu_seconds


def test_a_job_that_never_started_has_no_usage(world) -> None:
    sup = world.supervisor()
    job_id = world.submit("--refuse")
    drive(sup, lambda: _ended(world, job_id))
    job = world.show(job_id)
    assert (job.cpu_seconds, job.peak_memory_mb) == (None, None)
    assert to_mrs(job, 0)["cpu_seconds"] is None


def _cpu_of(shim_pid: int | None) -> float:
    """CPU seconds of the shim's descendants alive now (the burning engine)."""
    if shim_pid is None:
        return 0.0
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == shim_pid:  # in the session the shim leads
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total
