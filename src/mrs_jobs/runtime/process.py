"""Low-level process layer: start engine runs under a shim, find them again, stop them.

Every run is a shim (``shim.py``) in its own session. Without a box its process group holds
the engine and all it forks; with a box (``box.py``) the engine and all it forks live in the
box's pid namespace, whatever process group or session they move to. :func:`signal_run` is the
one way to signal a run, :func:`kill_run` the one way to end it, :func:`kill_strays` the one
way to end processes found by their marker alone. A run is identified by the shim's pid *and*
its start time in clock ticks, so a restarted service never mistakes a recycled pid for one of
its runs. All state needed after a restart lives in the job directory and in ``/proc``, never
only in this process's memory.

Linux only: liveness and ownership are read from ``/proc``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.runtime.box import BoxSpec, namespace_members, pid_namespace
from mrs_jobs.runtime.exitwatch import ExitWatcher
from mrs_jobs.runtime.identity import JobUser, ResourceLimits, prepare_job_dir
from mrs_jobs.runtime.launch import LaunchSpec

__all__ = [
    "ATTEMPT_VARIABLE",
    "JOB_ID_VARIABLE",
    "ExitStatus",
    "ProcessHandle",
    "ProcessTable",
    "find_marked_processes",
    "group_alive",
    "kill_run",
    "kill_strays",
    "marked_attempt",
    "read_exit",
    "read_start_ticks",
    "run_alive",
    "signal_run",
]

JOB_ID_VARIABLE = "MRS_JOBS_JOB_ID"
#: Which attempt of its job a process belongs to (a retried job's old attempt is told apart).
ATTEMPT_VARIABLE = "MRS_JOBS_ATTEMPT"
_SHIM = Path(__file__).with_name("shim.py")
_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessHandle:
    """A run's shim: its pid (also its process group id) and its start time in clock ticks."""

    pid: int
    start_ticks: int


@dataclass(frozen=True)
class ExitStatus:
    """How an engine run ended, as the shim recorded it in ``exit.json``.

    ``returncode`` is None when the engine was killed by a signal; ``signal`` then holds the
    signal number. ``error`` is set when the engine could not be started (returncode 127).
    ``cpu_seconds`` and ``peak_memory_mb``: what the run's process tree used (``shim.py``
    says exactly what); None when the engine never ran or the record is older.
    """

    returncode: int | None
    signal: int | None
    finished_ms: int
    error: str | None = None
    cpu_seconds: float | None = None
    peak_memory_mb: int | None = None

    @property
    def succeeded(self) -> bool:
        """True only for a clean exit 0: a signal or a launch error is never a success."""
        return self.returncode == 0 and self.signal is None and self.error is None


@dataclass(frozen=True)
class _Stat:
    state: str
    ppid: int
    pgid: int
    start_ticks: int


def _read_stat(pid: int) -> _Stat | None:
    """Parse /proc/<pid>/stat; None if the process is gone or unreadable."""
    try:
        data = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # Field 2 (comm) is in parentheses and may itself contain spaces and ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        # fields[0] is field 3 of stat(5), so field n is fields[n - 3].
        return _Stat(fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def _pids() -> list[int]:
    return [int(name) for name in os.listdir(_PROC) if name.isdigit()]


def read_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (stat field 22), or None if no such pid.

    A zombie still has its start time; use ``ProcessTable.is_running`` to exclude zombies.
    """
    stat = _read_stat(pid)
    return None if stat is None else stat.start_ticks


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is in group ``pgid``.

    The engine can outlive a SIGKILLed shim, so the shim being gone proves nothing: only an
    empty group means the whole tree is gone.
    """
    for pid in _pids():
        stat = _read_stat(pid)
        if stat is not None and stat.pgid == pgid and stat.state not in ("Z", "X"):
            return True
    return False


def _write_private(path: Path, data: bytes) -> None:
    """Atomically write a 0600 file: launch.json holds the engine env, which may hold secrets."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_exit(job_dir: Path) -> ExitStatus | None:
    """The outcome the shim recorded, or None while it has not recorded one.

    exit.json is written atomically, so a file that exists but cannot be parsed is reported
    as a failed run with an error rather than silently ignored.
    """
    path = Path(job_dir) / "exit.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return ExitStatus(None, None, int(time.time() * 1000), f"unreadable exit.json: {exc}")

    def _int(key: str) -> int | None:
        value = raw.get(key) if isinstance(raw, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    if not isinstance(raw, dict):
        return ExitStatus(None, None, int(time.time() * 1000), "unreadable exit.json")
    error = raw.get("error")
    cpu, peak = _usage(raw.get("usage"))
    return ExitStatus(
        returncode=_int("returncode"),
        signal=_int("signal"),
        finished_ms=_int("finished_ms") or 0,
        error=str(error) if error is not None else None,
        cpu_seconds=cpu,
        peak_memory_mb=peak,
    )


def _usage(raw: object) -> tuple[float | None, int | None]:
    """The exit record's ``usage`` (cpu seconds, peak MB); None for what is missing or odd."""
    if not isinstance(raw, dict):
        return None, None
    cpu, peak = raw.get("cpu_seconds"), raw.get("peak_memory_mb")
    good_cpu = isinstance(cpu, int | float) and not isinstance(cpu, bool) and 0 <= cpu < 1e12
    good_peak = isinstance(peak, int) and not isinstance(peak, bool) and 0 <= peak < 2**31
    return (float(cpu) if good_cpu else None), (peak if good_peak else None)


def find_marked_processes(marker_key: str, marker_value: str) -> dict[int, str]:
    """Pids whose environment holds ``marker_key=marker_value``, mapped to their job id.

    Lets a restarted service find engine processes it has no record of (crash between launch
    and commit) by the instance marker every launch carries. The job id is the value of
    ``MRS_JOBS_JOB_ID`` in that environment, or "" if absent. The initial environment is what
    is read, so a process that rewrites its own environment is still found.
    """
    wanted = f"{marker_key}={marker_value}".encode()
    job_prefix = f"{JOB_ID_VARIABLE}=".encode()
    found: dict[int, str] = {}
    for pid in _pids():
        try:
            entries = (_PROC / str(pid) / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # vanished, or not ours to read
        if wanted not in entries:
            continue
        job_id = next((e[len(job_prefix) :] for e in entries if e.startswith(job_prefix)), b"")
        found[pid] = job_id.decode(errors="replace")
    return found


def marked_attempt(pid: int) -> int | None:
    """The attempt a marked process was launched for (``MRS_JOBS_ATTEMPT`` in its initial
    environment); None if it is gone, unreadable or carries none (launched before the marker)."""
    prefix = f"{ATTEMPT_VARIABLE}=".encode()
    try:
        entries = (_PROC / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    value = next((e[len(prefix) :] for e in entries if e.startswith(prefix)), b"")
    return int(value) if value.isdigit() else None


def _owns_group(handle: ProcessHandle) -> bool:
    """Whether the group ``handle.pid`` can still be ours to signal.

    A pid number is not reused while a group of that id has members, so if no process has the
    shim's pid, any members left are the run's orphans; if a process has it with another start
    time, the pid was recycled and the group is someone else's.
    """
    ticks = read_start_ticks(handle.pid)
    if ticks is None:
        return group_alive(handle.pid)
    return ticks == handle.start_ticks


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


_OWN_NAMESPACE = pid_namespace(os.getpid())


def _box_namespace(shim_pid: int) -> int | None:
    """The pid namespace of the box a shim started, found from the process tree alone.

    shim -> bwrap (the box's monitor) -> the box's init: files in the job directory are the
    job's to write, so nothing there is trusted to say which processes are its box.
    """
    children: dict[int, list[int]] = {}
    for pid in _pids():
        stat = _read_stat(pid)
        if stat is not None:
            children.setdefault(stat.ppid, []).append(pid)
    for monitor in children.get(shim_pid, ()):
        for init in children.get(monitor, ()):
            namespace = pid_namespace(init)
            if namespace is not None and namespace != _OWN_NAMESPACE:
                return namespace
    return None


def _box_alive(namespace: int | None) -> bool:
    return namespace is not None and bool(namespace_members(namespace))


def signal_run(handle: ProcessHandle, sig: int) -> bool:
    """Send ``sig`` to a run; False if nothing of it is left (or its pid was recycled).

    SIGKILL ends everything at once: for a boxed run every process of its box (the death of
    the box's init alone would make the kernel end the rest), for an unboxed one the shim's
    group. Any other signal goes to the
    shim's group: without a box that is the engine and its children; with a box it is the shim
    alone, which forwards it to every process in the box (a signal to bwrap itself would end
    the box without the engine's own shutdown).
    """
    if not _owns_group(handle):
        return False
    if sig == signal.SIGKILL:
        namespace = _box_namespace(handle.pid)
        if namespace is not None:  # the shim stays to record how the box ended
            return any([_kill(pid, sig) for pid in namespace_members(namespace)])
    return _killpg(handle.pid, sig)


def run_alive(handle: ProcessHandle) -> bool:
    """Whether anything of a run is left: its shim, its group or its box."""
    if not _owns_group(handle):
        return False
    return group_alive(handle.pid) or _box_alive(_box_namespace(handle.pid))


def kill_run(handle: ProcessHandle, grace_seconds: float, *, kill_wait: float = 5.0) -> None:
    """End a whole run: SIGTERM, wait up to the grace period, then SIGKILL.

    Returns once nothing of the run is left, or after ``kill_wait`` more seconds (a process
    stuck in the kernel cannot be waited for forever). A handle whose pid was recycled is left
    alone. Zombies are not waited for: they are already dead.
    """
    if not signal_run(handle, signal.SIGTERM):
        return
    if _wait_gone(handle, grace_seconds):
        return
    signal_run(handle, signal.SIGKILL)
    _wait_gone(handle, kill_wait)


def _wait_gone(handle: ProcessHandle, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    namespace = _box_namespace(handle.pid)
    while group_alive(handle.pid) or _box_alive(namespace):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _kill(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_strays(pids: list[int]) -> int:
    """SIGKILL processes known only by their marker, each with its whole box if it has one.

    Used for what has no run handle any more: a run whose shim is gone but whose processes
    are not (a boxed one cannot outlive its shim for long: the box dies with it), and marked
    processes of jobs that have ended. Returns how many processes were signalled.
    """
    killed = 0
    for pid in pids:
        namespace = pid_namespace(pid)
        targets = [pid]
        if namespace is not None and namespace != _OWN_NAMESPACE:
            targets = namespace_members(namespace) or [pid]
        for target in targets:
            killed += _kill(target, signal.SIGKILL)
    return killed


class ProcessTable:
    """The runs one supervisor started, plus /proc lookups for runs started before a restart.

    It keeps the Popen objects of the shims it started only to reap them: a shim that exited
    stays a zombie until its parent waits for it. One table per supervisor, no module state.
    """

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self.exit_watcher: ExitWatcher | None = None  # set by the supervisor: wake on exit

    def launch(
        self,
        job_dir: Path,
        spec: LaunchSpec,
        *,
        python: str = sys.executable,
        user: JobUser | None = None,
        limits: ResourceLimits | None = None,
        box: BoxSpec | None = None,
        bwrap: str | None = None,
    ) -> ProcessHandle:
        """Write launch.json and start the shim for it in a new session.

        The shim gets ``spec.env`` as its environment so the engine inherits the instance and
        job markers. Files of a previous run in ``job_dir`` (exit.json, engine.pid) are removed
        first so they cannot be taken for this run's. Raises OSError if the interpreter cannot
        be started; nothing runs then. A relative ``spec.cwd`` is relative to ``job_dir``.

        ``job_dir`` is made 0700. With ``user`` the engine runs as that user (the service
        must be root): the directory and what ``build`` put there are handed over to it,
        except launch.json, the logs and the shim's records, which stay the service's.
        ``limits`` are applied to the engine process (see ``supervisor/limits.py``). With
        ``box`` (and the ``bwrap`` binary) the engine starts inside that box (``box.py``).
        Raises PermissionError when ``user`` cannot reach ``job_dir``.
        """
        job_dir = Path(job_dir).absolute()
        if not job_dir.is_dir():
            job_dir.mkdir(parents=True, mode=0o700)
        for stale in ("exit.json", "engine.pid", "launch.json", "shim.started"):
            (job_dir / stale).unlink(missing_ok=True)
        prepare_job_dir(job_dir, user)  # 0700 always (mkdir's mode is filtered by the umask)
        launch: dict[str, object] = {
            "argv": spec.argv,
            "env": spec.env,
            "cwd": spec.cwd,
            "notes": spec.notes,
        }
        if spec.detached:
            launch["detached"] = True
        if user is not None:
            launch["user"] = user.as_launch()
        if limits:
            launch["limits"] = limits.as_launch()
        if box is not None:
            if bwrap is None:
                raise OSError("a box was asked for but bwrap is not installed")
            launch["box"] = {"bwrap": bwrap, "args": box.args()}
        _write_private(job_dir / "launch.json", json.dumps(launch, indent=1).encode())
        popen = subprocess.Popen(
            [python, "-I", str(_SHIM), str(job_dir)],
            env=spec.env,
            cwd=job_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
        ticks = read_start_ticks(popen.pid)  # our unreaped child: its stat cannot be missing
        if ticks is None:  # pragma: no cover - only if /proc is not mounted
            popen.kill()
            popen.wait()
            raise OSError(f"cannot read /proc/{popen.pid}/stat")
        with self._lock:
            self._children[popen.pid] = popen
        if self.exit_watcher is not None:
            self.exit_watcher.watch(popen.pid)
        return ProcessHandle(popen.pid, ticks)

    def reap(self) -> list[int]:
        """Wait for every exited shim this table started; return their pids."""
        with self._lock:
            done = [pid for pid, p in self._children.items() if p.poll() is not None]
            for pid in done:
                del self._children[pid]
        return done

    def is_running(self, handle: ProcessHandle) -> bool:
        """Whether the run's shim is alive: present, not a zombie, same start time.

        Works as well for shims started before a restart of the service (read from /proc).
        """
        with self._lock:
            popen = self._children.get(handle.pid)
            if popen is not None and popen.poll() is not None:
                del self._children[handle.pid]
                return False
        stat = _read_stat(handle.pid)
        if stat is None or stat.state in ("Z", "X"):
            return False
        return stat.start_ticks == handle.start_ticks
