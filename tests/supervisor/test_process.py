"""The process layer with real subprocesses: a shim per run and a fake engine under it."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mrs_jobs.engines.base import LaunchSpec
from mrs_jobs.runtime.process import (
    ExitStatus,
    ProcessHandle,
    ProcessTable,
    find_marked_processes,
    group_alive,
    kill_run,
    read_exit,
    read_start_ticks,
    signal_run,
)

pytestmark = pytest.mark.timeout(30)

FAKE_ENGINE = str(Path(__file__).resolve().parents[1] / "fake_engine.py")

Launcher = Callable[..., ProcessHandle]


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(0.02)


def proc_state(pid: int) -> str | None:
    """State letter of /proc/<pid>/stat, None if there is no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()[0].decode()


def is_dead(pid: int) -> bool:
    return proc_state(pid) in (None, "Z", "X")


def make_spec(
    args: list[str],
    *,
    instance: str = "test-instance",
    job_id: str = "job-1",
    notes: list[str] | None = None,
    cwd: str = "/",
) -> LaunchSpec:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MRS_JOBS_INSTANCE": instance,
        "MRS_JOBS_JOB_ID": job_id,
    }
    return LaunchSpec(argv=args, env=env, cwd=cwd, notes=notes or [])


def engine(*options: str) -> list[str]:
    return [sys.executable, FAKE_ENGINE, *options]


@pytest.fixture
def table() -> ProcessTable:
    return ProcessTable()


@pytest.fixture
def launch(table: ProcessTable) -> Iterator[Launcher]:
    """Launch through ``table`` and make sure every run's tree is gone after the test."""
    handles: list[ProcessHandle] = []

    def _launch(job_dir: Path, spec: LaunchSpec) -> ProcessHandle:
        handle = table.launch(job_dir, spec)
        handles.append(handle)
        return handle

    yield _launch
    for handle in handles:
        kill_run(handle, 0.2)
    table.reap()


def wait_exit(job_dir: Path, timeout: float = 5.0) -> ExitStatus:
    wait_for(lambda: (job_dir / "exit.json").exists(), timeout)
    status = read_exit(job_dir)
    assert status is not None
    return status


def wait_ready(path: Path) -> int:
    wait_for(path.exists)
    return int(path.read_text())


def test_exit_zero_recorded_with_logs_and_notes(
    tmp_path: Path, launch: Launcher, table: ProcessTable
) -> None:
    job_dir = tmp_path / "jobs" / "j1"
    spec = make_spec(
        engine("--print", "hello out", "--eprint", "hello err"),
        notes=["spark-submit resolved", "two\nlines"],
    )
    before_ms = int(time.time() * 1000)
    handle = launch(job_dir, spec)

    status = wait_exit(job_dir)
    assert status.returncode == 0 and status.signal is None and status.error is None
    assert status.succeeded
    assert status.finished_ms >= before_ms
    assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((job_dir / "launch.json").stat().st_mode) == 0o600
    assert json.loads((job_dir / "launch.json").read_text())["argv"] == spec.argv
    assert (job_dir / "stdout.log").read_text() == "hello out\n"
    assert (job_dir / "stderr.log").read_text().splitlines() == [
        "[mrs-jobs] spark-submit resolved",
        "[mrs-jobs] two",
        "[mrs-jobs] lines",
        "hello err",
    ]
    assert int((job_dir / "engine.pid").read_text()) > 0
    wait_for(lambda: not table.is_running(handle))


def test_nonzero_exit_code_recorded(tmp_path: Path, launch: Launcher) -> None:
    launch(tmp_path, make_spec(engine("--exit", "3")))
    status = wait_exit(tmp_path)
    assert (status.returncode, status.signal, status.error) == (3, None, None)
    assert not status.succeeded


def test_shim_leads_a_session_and_engine_is_in_its_group(
    tmp_path: Path, launch: Launcher, table: ProcessTable
) -> None:
    handle = launch(tmp_path, make_spec(engine("--sleep", "10", "--ready-file", f"{tmp_path}/r")))
    engine_pid = wait_ready(tmp_path / "r")
    assert table.is_running(handle)
    assert os.getsid(handle.pid) == handle.pid
    assert os.getpgid(handle.pid) == handle.pid
    assert os.getpgid(engine_pid) == handle.pid
    assert int((tmp_path / "engine.pid").read_text()) == engine_pid
    assert os.getpgid(handle.pid) != os.getpgid(0)


def test_shell_metacharacters_reach_engine_verbatim(tmp_path: Path, launch: Launcher) -> None:
    job_dir = tmp_path / "job"
    trap = tmp_path / "pwned"
    nasty = [
        f"$(touch {trap}1)",
        f"`touch {trap}2`",
        f"; touch {trap}3",
        f"| touch {trap}4",
        f"&& touch {trap}5 &",
        "it's \"quoted\" 'twice'",
        f"line one\ntouch {trap}6",
        "$HOME ${PATH} * ? ~ > /dev/null < x",
    ]
    launch(job_dir, make_spec(engine("--echo-args", *nasty), cwd=str(tmp_path)))
    status = wait_exit(job_dir)
    assert status.succeeded
    assert json.loads((job_dir / "stdout.log").read_text()) == nasty
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job"]


@pytest.mark.parametrize("argv0", ["/nonexistent/engine-bin", "no-such-engine-on-path-xyz"])
def test_missing_executable_records_127(tmp_path: Path, launch: Launcher, argv0: str) -> None:
    launch(tmp_path, make_spec([argv0, "--flag"], notes=["about to start"]))
    status = wait_exit(tmp_path)
    assert status.returncode == 127 and status.signal is None
    assert status.error is not None and argv0 in status.error
    assert not status.succeeded
    log = (tmp_path / "stderr.log").read_text().splitlines()
    assert log[0] == "[mrs-jobs] about to start"
    assert log[1].startswith("[mrs-jobs] could not start")
    assert not (tmp_path / "engine.pid").exists()


def test_missing_cwd_records_127(tmp_path: Path, launch: Launcher) -> None:
    launch(tmp_path, make_spec(engine(), cwd=str(tmp_path / "missing")))
    status = wait_exit(tmp_path)
    assert status.returncode == 127 and status.error is not None


def test_sigterm_to_group_records_signal(
    tmp_path: Path, launch: Launcher, table: ProcessTable
) -> None:
    handle = launch(tmp_path, make_spec(engine("--sleep", "30", "--ready-file", f"{tmp_path}/r")))
    engine_pid = wait_ready(tmp_path / "r")
    assert signal_run(handle, signal.SIGTERM)
    status = wait_exit(tmp_path)
    # Our convention: death by signal is returncode None + signal number, never -15.
    assert (status.returncode, status.signal, status.error) == (None, signal.SIGTERM, None)
    assert not status.succeeded
    wait_for(lambda: not table.is_running(handle))
    wait_for(lambda: not group_alive(handle.pid))
    assert is_dead(engine_pid)
    assert not signal_run(handle, signal.SIGTERM)


def test_sigterm_to_shim_alone_is_forwarded(
    tmp_path: Path, launch: Launcher, table: ProcessTable
) -> None:
    handle = launch(tmp_path, make_spec(engine("--sleep", "30", "--ready-file", f"{tmp_path}/r")))
    wait_ready(tmp_path / "r")
    os.kill(handle.pid, signal.SIGTERM)
    status = wait_exit(tmp_path)
    assert status.signal == signal.SIGTERM and status.returncode is None


def test_kill_run_kills_engine_ignoring_term_and_its_grandchild(
    tmp_path: Path, launch: Launcher, table: ProcessTable
) -> None:
    ready = tmp_path / "r"
    args = engine("--sleep", "30", "--ignore-term", "--spawn-child", "--ready-file", str(ready))
    handle = launch(tmp_path / "job", make_spec(args))
    engine_pid = wait_ready(ready)
    grandchild_pid = wait_ready(tmp_path / "r.child")
    assert os.getpgid(grandchild_pid) == handle.pid

    started = time.monotonic()
    kill_run(handle, grace_seconds=0.3)
    assert time.monotonic() - started >= 0.3  # SIGTERM was ignored: it took the SIGKILL
    assert not group_alive(handle.pid)
    for pid in (engine_pid, grandchild_pid):
        assert is_dead(pid), f"{pid} still {proc_state(pid)}"
    assert not table.is_running(handle)
    # The shim was SIGKILLed too, so it could not record an outcome.
    assert read_exit(tmp_path / "job") is None


def test_signal_group_reaches_engine_after_shim_was_killed(
    tmp_path: Path, launch: Launcher, table: ProcessTable
) -> None:
    handle = launch(tmp_path, make_spec(engine("--sleep", "30", "--ready-file", f"{tmp_path}/r")))
    engine_pid = wait_ready(tmp_path / "r")
    os.kill(handle.pid, signal.SIGKILL)
    wait_for(lambda: not table.is_running(handle))
    assert group_alive(handle.pid)  # the orphaned engine lives on in the group
    assert signal_run(handle, signal.SIGKILL)
    wait_for(lambda: not group_alive(handle.pid))
    assert is_dead(engine_pid)
    assert not signal_run(handle, signal.SIGKILL)


def test_recycled_pid_with_other_start_ticks_is_not_ours(
    tmp_path: Path, table: ProcessTable
) -> None:
    stranger = subprocess.Popen(["sleep", "10"], start_new_session=True)
    try:
        ticks = read_start_ticks(stranger.pid)
        assert ticks is not None
        impostor = ProcessHandle(stranger.pid, ticks + 1)
        assert not table.is_running(impostor)
        assert not signal_run(impostor, signal.SIGKILL)
        kill_run(impostor, 0.1)
        assert stranger.poll() is None and not is_dead(stranger.pid)
        # The genuine handle is seen even though this table did not start the process.
        assert table.is_running(ProcessHandle(stranger.pid, ticks))
    finally:
        stranger.kill()
        stranger.wait()
    assert read_start_ticks(2**22 + 12345) is None
    assert not table.is_running(ProcessHandle(2**22 + 12345, 1))


def test_fresh_table_sees_run_of_previous_table(tmp_path: Path, launch: Launcher) -> None:
    ready = tmp_path / "r"
    job_dir = tmp_path / "job"
    handle = launch(
        job_dir, make_spec(engine("--sleep", "0.5", "--exit", "4", "--ready-file", str(ready)))
    )
    wait_ready(ready)
    restarted = ProcessTable()  # the service restarted: no Popen objects, only the handle
    assert restarted.is_running(handle)
    status = wait_exit(job_dir)
    assert status.returncode == 4
    # The launching table has not reaped it: a zombie must not count as running.
    wait_for(lambda: not restarted.is_running(handle))
    assert proc_state(handle.pid) == "Z"
    assert read_exit(job_dir) == status


def test_no_zombie_left_after_launching_table_polls(
    tmp_path: Path, launch: Launcher, table: ProcessTable
) -> None:
    handle = launch(tmp_path, make_spec(engine()))
    wait_exit(tmp_path)
    wait_for(lambda: proc_state(handle.pid) in (None, "Z"))
    assert not table.is_running(handle)  # polls, which reaps
    assert read_start_ticks(handle.pid) != handle.start_ticks
    assert table.reap() == []


def test_reap_returns_exited_shims(tmp_path: Path, launch: Launcher, table: ProcessTable) -> None:
    handle = launch(tmp_path, make_spec(engine()))
    wait_exit(tmp_path)
    wait_for(lambda: proc_state(handle.pid) in (None, "Z"))
    assert table.reap() == [handle.pid]
    assert proc_state(handle.pid) is None or read_start_ticks(handle.pid) != handle.start_ticks


def test_find_marked_processes_by_instance(tmp_path: Path, launch: Launcher) -> None:
    mine, other = f"inst-{uuid.uuid4().hex}", f"inst-{uuid.uuid4().hex}"
    ha = launch(
        tmp_path / "a",
        make_spec(
            engine("--sleep", "10", "--ready-file", f"{tmp_path}/ra"), instance=mine, job_id="job-a"
        ),
    )
    hb = launch(
        tmp_path / "b",
        make_spec(
            engine("--sleep", "10", "--ready-file", f"{tmp_path}/rb"),
            instance=other,
            job_id="job-b",
        ),
    )
    engine_a = wait_ready(tmp_path / "ra")
    engine_b = wait_ready(tmp_path / "rb")

    found = find_marked_processes("MRS_JOBS_INSTANCE", mine)
    assert found.get(engine_a) == "job-a"
    assert found.get(ha.pid) == "job-a"  # the shim carries the markers too
    assert engine_b not in found and hb.pid not in found
    assert set(found.values()) == {"job-a"}
    assert find_marked_processes("MRS_JOBS_INSTANCE", "no-such-instance") == {}


def test_relaunch_in_same_dir_drops_stale_exit(tmp_path: Path, launch: Launcher) -> None:
    launch(tmp_path, make_spec(engine("--exit", "2")))
    assert wait_exit(tmp_path).returncode == 2
    launch(tmp_path, make_spec(engine("--sleep", "10", "--ready-file", f"{tmp_path}/r")))
    assert read_exit(tmp_path) is None


def test_read_exit_missing_and_corrupt(tmp_path: Path) -> None:
    assert read_exit(tmp_path) is None
    (tmp_path / "exit.json").write_text("{not json")
    status = read_exit(tmp_path)
    assert status is not None and status.error is not None and not status.succeeded
