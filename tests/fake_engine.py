"""A stand-in engine for supervisor tests: sleeps, prints, exits with a code, ignores SIGTERM.

Standalone script (standard library only). ``--echo-args ARG...`` prints the remaining
arguments as one JSON list on stdout and exits 0, so tests can check they arrived verbatim.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time


def _write_atomic(path: str, text: str) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


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
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--spawn-child", action="store_true")
    parser.add_argument(
        "--spawn-detached",
        action="store_true",
        help="a child in its own session (leaves the group)",
    )
    parser.add_argument("--ready-file", help="written with our pid once set up")
    args = parser.parse_args(argv)

    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.spawn_child:
        child = [sys.executable, os.path.abspath(__file__), "--sleep", "30"]
        if args.ignore_term:
            child.append("--ignore-term")
        if args.ready_file:
            child += ["--ready-file", args.ready_file + ".child"]
        subprocess.Popen(child, stdin=subprocess.DEVNULL)
    if args.spawn_detached:
        detached = [sys.executable, os.path.abspath(__file__), "--sleep", "30"]
        subprocess.Popen(detached, stdin=subprocess.DEVNULL, start_new_session=True)
    for line in args.out:
        print(line, flush=True)
    for line in args.err:
        print(line, file=sys.stderr, flush=True)
    if args.ready_file:
        _write_atomic(args.ready_file, str(os.getpid()))
    deadline = time.monotonic() + args.sleep
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return args.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
