"""The per-run shim: starts one engine process and records how it ended.

Run as ``python -I shim.py <job_dir>`` in a new session (the shim is the session and process
group leader, the engine joins its group). The shim outlives a crash of the service because it
is not the service's child in any way that matters, and it leaves ``exit.json`` behind so that a
restarted service learns the outcome. It imports only the standard library so it starts fast
and never depends on the service's code or virtualenv being importable.

Files in ``<job_dir>``: reads ``launch.json``; appends to ``stdout.log`` and ``stderr.log``;
writes ``engine.pid`` and, last, ``exit.json`` (atomically).

``exit.json`` semantics: ``returncode`` is the engine's exit code when it exited normally and
null when it was killed by a signal, in which case ``signal`` holds the signal number (never a
negative returncode). A run that could not start gets returncode 127 and an ``error`` string.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from types import FrameType
from typing import Any

PREFIX = "[mrs-jobs] "
NOT_STARTED = 127


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _write_atomic(path: str, data: bytes) -> None:
    """Write so that a reader sees the old file, or the whole new one, even across a crash."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
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


def _log(job_dir: str, lines: list[str]) -> None:
    """Append our own lines to the engine's stderr log, where a user looks first."""
    text = "".join(PREFIX + part + "\n" for line in lines for part in str(line).splitlines())
    if text:
        with open(os.path.join(job_dir, "stderr.log"), "a", encoding="utf-8") as f:
            f.write(text)


def _write_exit(
    job_dir: str,
    returncode: int | None,
    sig: int | None,
    error: str | None = None,
    engine_pid: int | None = None,
) -> None:
    record = {
        "returncode": returncode,
        "signal": sig,
        "finished_ms": _now_ms(),
        "error": error,
        "engine_pid": engine_pid,
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

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def attach(self, pid: int) -> None:
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
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signal.SIGTERM)
            elif self._pid is not None:
                os.kill(self._pid, signal.SIGTERM)
        except OSError:
            pass  # already gone


def _read_launch(job_dir: str) -> tuple[list[str], dict[str, str], str, list[str]]:
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
    return argv, env, cwd, [str(n) for n in notes]


def run(job_dir: str) -> int:
    """Start the engine described in launch.json, wait for it and write exit.json."""
    forwarder = _Forwarder()
    forwarder.install()
    try:
        argv, env, cwd, notes = _read_launch(job_dir)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        error = f"invalid launch.json: {type(exc).__name__}: {exc}"
        _log(job_dir, [error])
        _write_exit(job_dir, NOT_STARTED, None, error)
        return 0
    _log(job_dir, notes)
    if forwarder.stop_requested:
        error = "stopped before the engine started"
        _log(job_dir, [error])
        _write_exit(job_dir, None, signal.SIGTERM, error)
        return 0

    out = open(os.path.join(job_dir, "stdout.log"), "ab")
    err = open(os.path.join(job_dir, "stderr.log"), "ab")
    try:
        # Same process group as the shim (no new session): killpg(shim pid) reaches the engine
        # and everything it forks, unless the engine itself calls setsid.
        child = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            close_fds=True,
            shell=False,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        error = f"could not start {argv[0]!r}: {type(exc).__name__}: {exc}"
        _log(job_dir, [error])
        _write_exit(job_dir, NOT_STARTED, None, error)
        return 0
    finally:
        out.close()
        err.close()

    forwarder.attach(child.pid)
    _write_atomic(os.path.join(job_dir, "engine.pid"), f"{child.pid}\n".encode())
    code = child.wait()
    forwarder.detach()
    if code < 0:
        _write_exit(job_dir, None, -code, engine_pid=child.pid)
    else:
        _write_exit(job_dir, code, None, engine_pid=child.pid)
    return 0


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
