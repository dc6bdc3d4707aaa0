"""The job box (runtime/box.py) with real bubblewrap: what a boxed run sees, and how it ends.

Each test starts a real run under the shim, boxed the way the supervisor boxes jobs, with a
small Python program as the "engine".
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mrs_jobs.runtime.box import BoxPolicy, box_support, bwrap_path, namespace_members
from mrs_jobs.runtime.launch import LaunchSpec
from mrs_jobs.runtime.process import (
    ProcessHandle,
    ProcessTable,
    kill_run,
    read_exit,
    run_alive,
    signal_run,
)

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        box_support(bwrap_path()) is not None and not os.environ.get("CI"),
        reason=f"no box on this host: {box_support(bwrap_path())}",
    ),
]


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(0.02)


class Host:
    """A data directory with a key, a database and two jobs' directories."""

    def __init__(self, tmp_path: Path) -> None:
        self.data = tmp_path / "data"
        (self.data / "jobs").mkdir(parents=True)
        self.key = self.data / "secret.key"
        self.key.write_text("KEY-MATERIAL-1234")
        self.db = self.data / "mrs-jobs.db"
        self.db.write_text("DATABASE-ROWS")
        self.other = self.data / "jobs" / "other"
        self.other.mkdir()
        (self.other / "stdout.log").write_text("OTHER-JOB-LOG")
        self.policy = BoxPolicy(bwrap=str(bwrap_path()), hidden=(str(self.data),))
        self.table = ProcessTable()

    def start(
        self, name: str, code: str, *, read_roots: tuple[str, ...] = (), env: dict | None = None
    ) -> tuple[ProcessHandle, Path]:
        workdir = self.data / "jobs" / name
        workdir.mkdir()
        argv = [sys.executable, "-c", textwrap.dedent(code)]
        environ = {"PATH": "/usr/bin:/bin", "MRS_JOBS_JOB_ID": name, **(env or {})}
        box = self.policy.for_run(workdir, argv, environ, read_roots=read_roots)
        spec = LaunchSpec(argv=argv, env=environ, cwd=str(workdir))
        handle = self.table.launch(workdir, spec, box=box, bwrap=self.policy.bwrap)
        return handle, workdir

    def finish(self, workdir: Path, timeout: float = 20.0) -> dict:
        wait_for(lambda: read_exit(workdir) is not None, timeout)
        self.table.reap()
        return json.loads((workdir / "exit.json").read_text())


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


PROBE = """
    import json, os
    found = {}
    def attempt(name, fn):
        try:
            found[name] = str(fn())[:200]
        except Exception as exc:
            found[name] = "DENIED " + type(exc).__name__
    attempt("key", lambda: open(%(key)r).read())
    attempt("db", lambda: open(%(db)r).read())
    attempt("other_log", lambda: open(%(other)r + "/stdout.log").read())
    attempt("write_data", lambda: open(%(data)r + "/planted", "w").write("x"))
    attempt("overwrite_other", lambda: open(%(other)r + "/stdout.log", "w").write("x"))
    attempt("write_etc", lambda: open("/etc/planted", "w").write("x"))
    attempt("shadow", lambda: open("/etc/shadow").read())
    attempt("own", lambda: open("mine.txt", "w").write("ok"))
    attempt("tmp", lambda: open("/tmp/t", "w").write("ok"))
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    found["pids"] = len(pids)
    environs = []
    for p in pids:
        try:
            environs.append(open(f"/proc/{p}/environ", "rb").read())
        except OSError:
            pass
    found["environ_has_service_key"] = any(b"SERVICE-SECRET" in e for e in environs)
    found["pid"] = os.getpid()
    open("probe.json", "w").write(json.dumps(found))
"""


def test_a_boxed_run_sees_its_own_directory_and_nothing_of_the_service(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MRS_JOBS_SECRET_KEY", "SERVICE-SECRET")  # the service's own environment
    code = PROBE % {
        "key": str(host.key),
        "db": str(host.db),
        "other": str(host.other),
        "data": str(host.data),
    }
    _, workdir = host.start("j1", code)
    assert host.finish(workdir)["returncode"] == 0, (workdir / "stderr.log").read_text()
    found = json.loads((workdir / "probe.json").read_text())
    for attempt in ("key", "db", "other_log", "write_data", "overwrite_other", "write_etc"):
        assert found[attempt].startswith("DENIED"), (attempt, found[attempt])
    assert found["shadow"].startswith("DENIED") or found["shadow"] == ""
    assert found["own"] == "2" and found["tmp"] == "2"
    assert found["pids"] <= 3  # the box's init, the program (and nothing of the host)
    assert found["environ_has_service_key"] is False
    assert found["pid"] == 2  # its own pid namespace
    assert host.key.read_text() == "KEY-MATERIAL-1234"
    assert (host.other / "stdout.log").read_text() == "OTHER-JOB-LOG"
    assert not (host.data / "planted").exists() and not Path("/etc/planted").exists()
    assert not Path("/tmp/t").exists()  # its /tmp was its own


def test_with_roots_only_the_roots_and_the_system_are_seen(host: Host, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "in.txt").write_text("INPUT")
    outside = tmp_path / "outside.txt"
    outside.write_text("OUTSIDE")
    code = f"""
        import json
        out = {{}}
        for name, path in (("in", {str(root / "in.txt")!r}), ("out", {str(outside)!r})):
            try:
                out[name] = open(path).read()
            except OSError as exc:
                out[name] = "DENIED"
        try:
            open({str(root / "new.txt")!r}, "w").write("x")
            out["write_root"] = "written"
        except OSError:
            out["write_root"] = "DENIED"
        open("seen.json", "w").write(json.dumps(out))
    """
    _, workdir = host.start("j2", code, read_roots=(str(root),))
    assert host.finish(workdir)["returncode"] == 0, (workdir / "stderr.log").read_text()
    seen = json.loads((workdir / "seen.json").read_text())
    assert seen == {"in": "INPUT", "out": "DENIED", "write_root": "DENIED"}


SPAWNER = """
    import os, signal, subprocess, sys, time
    subprocess.Popen(["setsid", "sleep", "300"])
    subprocess.Popen(["sleep", "301"], env={}, start_new_session=True)
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        time.sleep(302)
        os._exit(0)
    def term(signum, frame):
        open("term.txt", "w").write("got TERM")
        sys.exit(0)
    signal.signal(signal.SIGTERM, term)
    open("ready", "w").write("ok")
    time.sleep(300)
"""


def _box_members(handle: ProcessHandle) -> list[int]:
    from mrs_jobs.runtime.process import _box_namespace

    namespace = _box_namespace(handle.pid)
    return namespace_members(namespace) if namespace is not None else []


def test_kill_ends_every_process_of_the_box_whatever_group_or_session(host: Host) -> None:
    handle, workdir = host.start("j3", SPAWNER)
    wait_for(lambda: (workdir / "ready").exists())
    wait_for(lambda: len(_box_members(handle)) >= 5)  # init, program, 3 children
    members = _box_members(handle)
    groups = {os.getpgid(p) for p in members}
    assert len(groups) >= 3  # they really left the launcher's group
    kill_run(handle, grace_seconds=5.0)
    assert not run_alive(handle)
    assert all(not Path(f"/proc/{p}").exists() or _zombie(p) for p in members)
    status = host.finish(workdir)
    assert (workdir / "term.txt").read_text() == "got TERM"  # the engine got its TERM first
    assert status["returncode"] == 0


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


def test_a_killed_shim_takes_its_box_with_it(host: Host) -> None:
    handle, workdir = host.start("j4", SPAWNER)
    wait_for(lambda: len(_box_members(handle)) >= 5)
    members = _box_members(handle)
    os.kill(handle.pid, signal.SIGKILL)
    wait_for(lambda: all(not Path(f"/proc/{p}").exists() or _zombie(p) for p in members))
    host.table.reap()


def test_sigkill_of_the_run_reaches_processes_that_ignore_term(host: Host) -> None:
    code = """
        import signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        subprocess.Popen(["setsid", "sleep", "300"])
        open("ready", "w").write("ok")
        time.sleep(300)
    """
    handle, workdir = host.start("j5", code)
    wait_for(lambda: (workdir / "ready").exists())
    wait_for(lambda: len(_box_members(handle)) >= 3)
    members = _box_members(handle)
    assert signal_run(handle, signal.SIGTERM)
    time.sleep(0.5)
    assert run_alive(handle)  # TERM ignored
    assert signal_run(handle, signal.SIGKILL)
    wait_for(lambda: not run_alive(handle))
    assert all(not Path(f"/proc/{p}").exists() or _zombie(p) for p in members)
    status = host.finish(workdir)
    assert status["returncode"] is None and status["signal"] == signal.SIGKILL


def test_exit_codes_and_signals_come_through_the_box(host: Host) -> None:
    _, ok = host.start("j6", "import sys; sys.exit(7)")
    assert host.finish(ok)["returncode"] == 7
    _, killed = host.start("j7", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    status = host.finish(killed)
    assert status["returncode"] is None and status["signal"] == signal.SIGKILL
