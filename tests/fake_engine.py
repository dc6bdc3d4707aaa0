"""A stand-in engine for supervisor tests: sleeps, prints, exits with a code, ignores SIGTERM.

Standalone script (standard library only). ``--echo-args ARG...`` prints the remaining
arguments as one JSON list on stdout and exits 0, so tests can check they arrived verbatim.
``--dump PATH`` writes the process's identity, umask, rlimits, cwd and environment as JSON;
``--spawn-unmarked TOKEN`` starts a child that sheds both the group and the marker (its own
session, an empty environment; TOKEN in its argv so a test can find it in /proc);
``--wait-children`` makes those children sleep as long as the engine and fails the engine
(exit 1) when one of them did not end cleanly: a job whose processes outside its group were
killed (a restart that ended them) then ends FAILED, as PySpark's does;
``--spawn-until-failure N`` forks up to N sleeping children, stopping at the first failure, and
records how many it got in the dump; ``--burn-cpu`` spins until killed; ``--count-file PATH``
appends a line to PATH at each start and ``--fail-times N`` then exits 1 on the first N starts
(a job that fails twice, then succeeds, on its retries).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time


def _write_atomic(path: str, text: str) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def _count_start(path: str) -> int:
    """Append this start (the job's id) to ``path``; how many starts of this job it holds."""
    line = os.environ.get("MRS_JOBS_JOB_ID", "?") + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
    with open(path, encoding="utf-8") as fh:
        return sum(1 for seen in fh if seen == line)


def _dump(path: str, spawn_limit: int) -> None:
    """Write who/what this process is as JSON (relative paths: under the working directory)."""
    umask = os.umask(0)
    os.umask(umask)
    record: dict[str, object] = {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "gid": os.getgid(),
        "egid": os.getegid(),
        "groups": os.getgroups(),
        "umask": umask,
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "rlimits": {
            name: list(resource.getrlimit(getattr(resource, name)))
            for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NOFILE", "RLIMIT_NPROC")
        },
    }
    if spawn_limit:
        record["spawned"], record["spawn_error"] = _spawn_until_failure(spawn_limit)
    _write_atomic(path, json.dumps(record))


def _spawn_until_failure(limit: int) -> tuple[int, str | None]:
    """Fork up to ``limit`` children that wait on a pipe; stop at the first failure."""
    read_end, write_end = os.pipe()
    children: list[int] = []
    error: str | None = None
    try:
        for _ in range(limit):
            try:
                pid = os.fork()
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            if pid == 0:  # child: wait until the parent closes the pipe
                os.close(write_end)
                os.read(read_end, 1)
                os._exit(0)
            children.append(pid)
    finally:
        os.close(write_end)
        os.close(read_end)
        for pid in children:
            os.waitpid(pid, 0)
    return len(children), error


def main(argv: list[str]) -> int:
    launch_log = os.environ.get("FAKE_ENGINE_LAUNCH_LOG")
    if launch_log:  # one line per start: lets a crash test prove nothing ran twice
        with open(launch_log, "a", encoding="utf-8") as fh:
            fh.write(os.environ.get("MRS_JOBS_JOB_ID", "?") + "\n")
    if argv[:1] == ["--echo-args"]:
        print(json.dumps(argv[1:]), flush=True)
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--print", dest="out", action="append", default=[])
    parser.add_argument("--eprint", dest="err", action="append", default=[])
    parser.add_argument("--exit", dest="code", type=int, default=0)
    parser.add_argument("--count-file", help="a line appended here at each start (attempts)")
    parser.add_argument(
        "--fail-times",
        type=int,
        default=0,
        help="with --count-file: exit 1 while the file holds at most this many lines",
    )
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--spawn-child", action="store_true")
    parser.add_argument(
        "--spawn-detached",
        action="store_true",
        help="a child in its own session (leaves the group)",
    )
    parser.add_argument(
        "--spawn-unmarked",
        metavar="TOKEN",
        help="a child in its own session with an empty environment (no marker), TOKEN in argv",
    )
    parser.add_argument(
        "--wait-children",
        action="store_true",
        help="children sleep as long as we do; exit 1 if one of them did not end cleanly",
    )
    parser.add_argument("--ready-file", help="written with our pid once set up")
    parser.add_argument("--dump", help="write identity, rlimits and environment as JSON here")
    parser.add_argument("--spawn-until-failure", type=int, default=0)
    parser.add_argument("--burn-cpu", action="store_true", help="spin until killed")
    parser.add_argument("--burn-for", type=float, default=0.0, help="spend this much CPU time")
    parser.add_argument(
        "--burn-child", type=float, default=0.0, help="a child spends this much CPU; waited for"
    )
    args = parser.parse_args(argv)

    if args.burn_child:
        burner = [sys.executable, os.path.abspath(__file__), "--burn-for", str(args.burn_child)]
        subprocess.run(burner, stdin=subprocess.DEVNULL, check=True)
    while time.process_time() < args.burn_for:
        pass

    if args.dump:
        _dump(args.dump, args.spawn_until_failure)
    if args.burn_cpu:
        while True:
            pass

    start = _count_start(args.count_file) if args.count_file else 0
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    waited: list[subprocess.Popen[bytes]] = []
    # Children of ours are not launches: they keep the marker, not the launch log.
    child_env = {k: v for k, v in os.environ.items() if k != "FAKE_ENGINE_LAUNCH_LOG"}
    if args.spawn_child:
        child = [sys.executable, os.path.abspath(__file__), "--sleep", "30"]
        if args.ignore_term:
            child.append("--ignore-term")
        if args.ready_file:
            child += ["--ready-file", args.ready_file + ".child"]
        subprocess.Popen(child, stdin=subprocess.DEVNULL, env=child_env)
    if args.spawn_detached:
        seconds = args.sleep if args.wait_children else 30
        detached = [sys.executable, os.path.abspath(__file__), "--sleep", str(seconds)]
        waited.append(
            subprocess.Popen(
                detached, stdin=subprocess.DEVNULL, env=child_env, start_new_session=True
            )
        )
    if args.spawn_unmarked:
        code = f"import time; time.sleep({args.sleep if args.wait_children else 60})"
        unmarked = [sys.executable, "-c", code, args.spawn_unmarked]
        waited.append(
            subprocess.Popen(unmarked, stdin=subprocess.DEVNULL, env={}, start_new_session=True)
        )
    for line in args.out:
        print(line, flush=True)
    for line in args.err:
        print(line, file=sys.stderr, flush=True)
    if args.ready_file:
        _write_atomic(args.ready_file, str(os.getpid()))
    deadline = time.monotonic() + args.sleep
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    if args.wait_children:
        for child in waited:
            if child.wait() != 0:
                print(f"child {child.pid} ended with {child.returncode}", file=sys.stderr)
                return 1
    if start and start <= args.fail_times:
        print(f"fake failure at start {start}", file=sys.stderr, flush=True)
        return 1
    return args.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
