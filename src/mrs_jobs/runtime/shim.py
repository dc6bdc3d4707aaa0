"""The per-run shim: starts one engine process and records how it ended.

Run as ``python -I shim.py <job_dir>`` in a new session (the shim is the session and process
group leader, the engine joins its group). The shim outlives a crash of the service because it
is not the service's child in any way that matters, and it leaves ``exit.json`` behind so that a
restarted service learns the outcome. It imports only the standard library so it starts fast
and never depends on the service's code or virtualenv being importable.

Files in ``<job_dir>``: reads ``launch.json``; appends to ``stdout.log`` and ``stderr.log``;
writes ``shim.started`` before it starts the engine (a restarted service that finds neither
it, nor ``exit.json``, nor a process of the job knows the engine never ran), ``engine.pid`` and,
last, ``exit.json`` (atomically).

Optional ``launch.json`` fields: ``box`` (``{"bwrap": path, "args": [...]}``, see ``box.py``)
starts the engine inside a bubblewrap box, in a process group of its own (so a signal to the
shim's group reaches only the shim, which forwards it to every process of the box; a signal to
bwrap itself would end the box at once) and with ``--die-with-parent`` (the box ends if the
shim is killed); ``user`` (``{"name", "uid", "gid"}``) runs the engine as that
user with its primary group and no supplementary groups (the shim must run as root then), and
``limits`` (``{"RLIMIT_AS": n, ...}``, only the names in ``RLIMITS``) sets soft = hard limits in
the engine's child before exec (RLIMIT_CPU gets a hard limit ``CPU_KILL_GRACE`` seconds above
the soft one, so SIGXCPU comes first and SIGKILL after). The engine always starts with umask
077. The job directory may belong to the job user, so every file the shim (possibly root)
writes there is opened without following symlinks.

``exit.json`` semantics: ``returncode`` is the engine's exit code when it exited normally and
null when it was killed by a signal, in which case ``signal`` holds the signal number (never a
negative returncode). A run that could not start gets returncode 127 and an ``error`` string.
``usage`` (when the engine ran) is what the run's process tree used, from
``getrusage(RUSAGE_CHILDREN)`` once the engine was waited for: ``cpu_seconds``, user + system
CPU of every process of the tree that ended and was reaped (with a box the shim is a child
subreaper: the box's init, which reaps the box's orphans, is left to it when bwrap exits, and
is waited for before measuring; without a box, a process that outlived its parent is reaped
by the host's init and does not count), and
``peak_memory_mb``, the largest resident size one process of the tree reached (not a sum over
processes; at least the shim's own size, as a forked child starts as a copy of it).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import traceback
from types import FrameType
from typing import Any

PREFIX = "[mrs-jobs] "
NOT_STARTED = 127
RLIMITS = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_NPROC")
CPU_KILL_GRACE = 5
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
REAP_SECONDS = 5.0
ENGINE_UMASK = 0o077
_SIGNALS = frozenset(int(s) for s in signal.Signals)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _write_atomic(path: str, data: bytes) -> None:
    """Write so that a reader sees the old file, or the whole new one, even across a crash."""
    tmp = f"{path}.tmp"
    try:  # never write through a file or symlink someone else left at the temporary name
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _open_log(path: str) -> int:
    """Open a log for appending: a regular file with one link, never through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600)
    st = os.fstat(fd)
    if not (st.st_mode & 0o170000 == 0o100000 and st.st_nlink == 1):
        os.close(fd)
        raise OSError(f"{path} is not a plain file")
    return fd


def _log(job_dir: str, lines: list[str]) -> None:
    """Append our own lines to the engine's stderr log, where a user looks first."""
    text = "".join(PREFIX + part + "\n" for line in lines for part in str(line).splitlines())
    if text:
        fd = _open_log(os.path.join(job_dir, "stderr.log"))
        try:
            view = memoryview(text.encode("utf-8"))
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def _write_exit(
    job_dir: str,
    returncode: int | None,
    sig: int | None,
    error: str | None = None,
    engine_pid: int | None = None,
    usage: dict[str, float | int] | None = None,
) -> None:
    record = {
        "returncode": returncode,
        "signal": sig,
        "finished_ms": _now_ms(),
        "error": error,
        "engine_pid": engine_pid,
        "usage": usage,
    }
    _write_atomic(os.path.join(job_dir, "exit.json"), json.dumps(record).encode() + b"\n")


class _Forwarder:
    """Turns SIGTERM/SIGINT to the shim into a SIGTERM to the engine, instead of dying.

    The shim must live until the engine is gone, or nobody would record how it ended. A signal
    that arrives before the engine exists is remembered and forwarded as soon as it does.
    """

    def __init__(self) -> None:
        self.stop_requested = False
        self._pid: int | None = None
        self._pidfd: int | None = None
        self._box: tuple[int, int] | None = None  # (pid namespace, host pid of its init)

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def attach(self, pid: int, box: tuple[int, int] | None = None) -> None:
        self._box = box
        try:
            # A pidfd cannot hit a recycled pid, unlike os.kill after the child was reaped.
            self._pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self._pidfd = None
        self._pid = pid
        if self.stop_requested:
            self._forward()

    def detach(self) -> None:
        self._pid = None
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True
        self._forward()

    def _forward(self) -> None:
        if self._box is not None:
            namespace, init = self._box
            for pid in _namespace_members(namespace):
                if pid != init:  # the box's init ends the box (all of it) when it exits
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except OSError:
                        pass
            return
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signal.SIGTERM)
            elif self._pid is not None:
                os.kill(self._pid, signal.SIGTERM)
        except OSError:
            pass  # already gone


def _become_subreaper() -> None:
    """Orphans of the run (the box's init once bwrap exits) become the shim's children, so
    their resource usage reaches ``RUSAGE_CHILDREN`` when the shim reaps them."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: orphans go to init, and their usage with them


def _reap(box_init: int | None) -> None:
    """Reap what the run left to the shim: the box's init (killed by bwrap's exit; bounded
    wait, as its end waits for the box's processes) and orphans that already ended."""
    deadline = time.monotonic() + REAP_SECONDS
    while box_init is not None and time.monotonic() < deadline:
        try:
            if os.waitpid(box_init, os.WNOHANG)[0] == box_init:
                break
        except ChildProcessError:
            break  # not ours (no subreaper here) or already reaped
        time.sleep(0.005)
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def _tree_usage() -> dict[str, float | int]:
    """What the waited-for process tree used (see the module's ``usage``): one system call,
    after the engine ended, so measuring costs the run nothing while it runs."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_seconds": round(used.ru_utime + used.ru_stime, 3),
        "peak_memory_mb": -(-used.ru_maxrss // 1024),  # ru_maxrss is in KiB on Linux
    }


def _pid_namespace(pid: int) -> int | None:
    try:
        link = os.readlink(f"/proc/{pid}/ns/pid")
        return int(link[link.index("[") + 1 : link.index("]")])
    except (OSError, ValueError):
        return None


def _namespace_members(namespace: int) -> list[int]:
    return [
        int(name)
        for name in os.listdir("/proc")
        if name.isdigit() and _pid_namespace(int(name)) == namespace
    ]


class _Launch:
    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        notes: list[str],
        user: dict[str, Any] | None,
        limits: dict[str, int],
        box: dict[str, Any] | None = None,
    ) -> None:
        self.argv, self.env, self.cwd, self.notes = argv, env, cwd, notes
        self.user, self.limits, self.box = user, limits, box


def _read_box(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("bwrap"), str)
        or not isinstance(raw.get("args"), list)
        or not all(isinstance(a, str) for a in raw["args"])
    ):
        raise ValueError("box must be an object with bwrap (a path) and args (strings)")
    return {"bwrap": raw["bwrap"], "args": list(raw["args"])}


def _read_status(fd: int) -> dict[str, Any]:
    """bwrap's first JSON status line (child-pid, pid-namespace); {} when the box failed.

    The descriptor stays open: bwrap writes its exit code there at the end, and a closed pipe
    would kill it with SIGPIPE instead.
    """
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    try:
        status = json.loads(data.split(b"\n", 1)[0] or b"{}")
    except ValueError:
        return {}
    return status if isinstance(status, dict) else {}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_user(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not _is_int(raw.get("uid")) or not _is_int(raw.get("gid")):
        raise ValueError("user must be an object with integer uid and gid")
    return {"name": str(raw.get("name") or raw["uid"]), "uid": raw["uid"], "gid": raw["gid"]}


def _read_limits(raw: Any) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("limits must be an object")
    for name, value in raw.items():
        if name not in RLIMITS or not _is_int(value) or value == 0:
            raise ValueError(f"bad limit {name!r}: {value!r}")
    return dict(raw)


def _apply_limits(limits: dict[str, int]) -> None:
    """In the engine's child, after the user switch and before exec: set the rlimits.

    A limit above the current hard limit (which an unprivileged process cannot raise) is
    lowered to it rather than failing the launch.
    """
    for name, value in limits.items():
        which = getattr(resource, name)
        soft = value
        hard = value + CPU_KILL_GRACE if name == "RLIMIT_CPU" else value
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))


def _read_launch(job_dir: str) -> _Launch:
    with open(os.path.join(job_dir, "launch.json"), encoding="utf-8") as f:
        raw: Any = json.load(f)
    argv, env, cwd, notes = raw["argv"], raw["env"], raw["cwd"], raw.get("notes") or []
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a non-empty list of strings")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ValueError("env must map strings to strings")
    if not isinstance(cwd, str) or not isinstance(notes, list):
        raise ValueError("cwd must be a string and notes a list")
    user = _read_user(raw.get("user"))
    limits = _read_limits(raw.get("limits"))
    box = _read_box(raw.get("box"))
    return _Launch(argv, env, cwd, [str(n) for n in notes], user, limits, box)


def run(job_dir: str) -> int:
    """Start the engine described in launch.json, wait for it and write exit.json."""
    forwarder = _Forwarder()
    forwarder.install()
    try:
        launch = _read_launch(job_dir)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return _not_started(job_dir, f"invalid launch.json: {type(exc).__name__}: {exc}")
    _log(job_dir, launch.notes)
    if forwarder.stop_requested:
        error = "stopped before the engine started"
        _log(job_dir, [error])
        _write_exit(job_dir, None, signal.SIGTERM, error)
        return 0
    if launch.box is not None:
        _become_subreaper()  # the box's init is left to us when bwrap exits: reap it
    _write_atomic(os.path.join(job_dir, "shim.started"), f"{os.getpid()}\n".encode())
    started = _start(job_dir, launch)
    if started is None:
        return 0
    child, status_r = started
    box: tuple[int, int] | None = None
    if status_r >= 0:
        status = _read_status(status_r)
        init, namespace = status.get("child-pid"), status.get("pid-namespace")
        if _is_int(init) and _is_int(namespace):
            box = (namespace, init)
    forwarder.attach(child.pid, box)
    _write_atomic(os.path.join(job_dir, "engine.pid"), f"{child.pid}\n".encode())
    code = child.wait()
    forwarder.detach()
    if status_r >= 0:
        os.close(status_r)
    _reap(box[1] if box is not None else None)
    _record_end(job_dir, launch, child.pid, code, box)
    return 0


def _not_started(job_dir: str, error: str, *, log: bool = True) -> int:
    if log:
        _log(job_dir, [error])
    _write_exit(job_dir, NOT_STARTED, None, error)
    return 0


def _start(job_dir: str, launch: _Launch) -> tuple[subprocess.Popen[bytes], int] | None:
    """Start the engine (in its box when it has one) with the job's logs as its output.
    Returns it and the read end of bwrap's status pipe (-1 without a box); None when it could
    not start (exit.json says why)."""
    # The logs stay the shim's (the service's) files: the engine writes through the inherited
    # descriptors, whoever it runs as.
    try:
        out = _open_log(os.path.join(job_dir, "stdout.log"))
    except OSError as exc:
        _not_started(job_dir, f"cannot open stdout.log: {exc}", log=False)
        return None
    try:
        err = _open_log(os.path.join(job_dir, "stderr.log"))
    except OSError as exc:
        os.close(out)
        _not_started(job_dir, f"cannot open stderr.log: {exc}", log=False)
        return None
    identity: dict[str, Any] = {}
    if launch.user is not None:
        identity = {"user": launch.user["uid"], "group": launch.user["gid"], "extra_groups": []}
    limits = launch.limits
    argv = launch.argv
    status_r = status_w = -1
    extra: dict[str, Any] = {}
    if launch.box is not None:
        status_r, status_w = os.pipe()
        bwrap_opts = ["--json-status-fd", str(status_w), "--chdir", launch.cwd, "--"]
        argv = [launch.box["bwrap"], *launch.box["args"], *bwrap_opts, *argv]
        extra = {"pass_fds": (status_w,), "process_group": 0}
    try:
        # Without a box: same process group as the shim (no new session), so killpg(shim pid)
        # reaches the engine and everything it forks, unless the engine calls setsid. The shim
        # is single threaded, so preexec_fn (needed for setrlimit in the child) is safe here.
        child = subprocess.Popen(
            argv,
            env=launch.env,
            cwd=launch.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            close_fds=True,
            shell=False,
            umask=ENGINE_UMASK,
            preexec_fn=(lambda: _apply_limits(limits)) if limits else None,
            **identity,
            **extra,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        if status_r >= 0:
            os.close(status_r)
        _not_started(job_dir, f"could not start {argv[0]!r}: {type(exc).__name__}: {exc}")
        return None
    finally:
        os.close(out)
        os.close(err)
        if status_w >= 0:
            os.close(status_w)
    return child, status_r


def _record_end(
    job_dir: str, launch: _Launch, pid: int, code: int, box: tuple[int, int] | None
) -> None:
    """exit.json from the engine's wait status (bwrap's, when boxed)."""
    if launch.box is not None and box is None:
        error = "the job's box could not be made (bwrap failed; its message is above)"
        _log(job_dir, [error])
        _write_exit(job_dir, NOT_STARTED, None, error, engine_pid=pid)
    elif code < 0:
        _write_exit(job_dir, None, -code, engine_pid=pid, usage=_tree_usage())
    elif box is not None and code > 128 and code - 128 in _SIGNALS:
        # bwrap reports a command killed by signal N as exit code 128 + N.
        _write_exit(job_dir, None, code - 128, engine_pid=pid, usage=_tree_usage())
    else:
        _write_exit(job_dir, code, None, engine_pid=pid, usage=_tree_usage())


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -I shim.py <job_dir>\n")
        return 2
    job_dir = os.path.abspath(argv[1])
    try:
        return run(job_dir)
    except Exception:
        # Leave a trace of a shim bug where the user will look; the supervisor sees no
        # exit.json and treats the run as lost.
        try:
            _log(job_dir, ["shim failed:", *traceback.format_exc().splitlines()])
        except OSError:
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
