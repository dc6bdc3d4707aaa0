"""Summarise py-spy ``--format raw`` (collapsed stacks) output: top frames by samples.

    python bench/stacks.py profile.raw [--thread SUBSTR] [--top 30] [--leaf]
    python bench/stacks.py profile.raw --layers     # the request path's layers (issue 21)

Inclusive counts per function (a frame counted once per stack), and optionally leaf (self)
counts. ``--layers``: each busy sample goes to the deepest layer of :data:`LAYERS` its stack
passes through (a store call made by the auth layer counts as the store's), so the shares add
up to 100 %. Used for the profiles quoted in bench/README.md.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys

IDLE = re.compile(
    r"^(Condition\.wait|Event\.wait|Queue\.get|EpollSelector\.select|"
    r"select|_wait_for_tstate_lock|wait) "
)


#: The request path's layers, outermost first, each named by frames of its code. A sample of
#: the supervisor's thread is the supervisor's, whatever it calls.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("event loop: uvicorn, HTTP parsing, socket writes", ("MainThread",)),
    ("middlewares", ("middleware.py", "instrument.py", "middleware/errors.py")),
    ("routing, dependency solving", ("routing.py", "dependencies/utils.py")),
    ("auth: signature, credential cache, limiter", ("auth.py", "signing.py", "ratelimit.py")),
    ("body parsing, validation, sealing", ("body.py", "validation.py", "prepare_submit")),
    ("serialisation (to_mrs, JSON)", ("render.py", "to_mrs", "responses.py", "json/")),
    (
        "thread hand-offs (anyio, futures, group commit's queue)",
        ("to_thread.py", "_backends/_asyncio.py", "concurrency.py", "group_commit.py"),
    ),
    ("store: statements, transactions, commit", ("store/", "sqlalchemy/", "psycopg")),
]
SUPERVISOR = "supervisor thread (in the same process)"
OTHER = "other threads"


def layer_of(frames: list[str]) -> str:
    """The supervisor's, or the deepest layer whose frames the stack passes through."""
    if frames and "mrs-jobs-supervisor" in frames[0]:
        return SUPERVISOR
    found, depth = OTHER, -1
    for frame in frames:
        for i, (name, marks) in enumerate(LAYERS):
            if i >= depth and any(m in frame for m in marks):
                found, depth = name, i
    return found


def load(path: str, thread: str | None) -> list[tuple[list[str], int]]:
    stacks = []
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if thread and not any(thread in f for f in frames[:1]):
            continue
        stacks.append((frames, int(count)))
    return stacks


def short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py:123)"
    return re.sub(r"\((?:[^()]*/)?([^/()]+)\)", r"(\1)", frame)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("--thread", help="keep stacks whose first frame contains this")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--leaf", action="store_true", help="self time instead of inclusive")
    ap.add_argument("--match", help="only stacks containing a frame with this substring")
    ap.add_argument("--all", action="store_true", help="keep idle stacks (waits, select)")
    ap.add_argument("--layers", action="store_true", help="busy samples by request-path layer")
    args = ap.parse_args(argv)
    stacks = load(args.raw, args.thread)
    if not args.all:  # percentages of busy samples: a thread waiting is not a cost
        stacks = [(f, c) for f, c in stacks if not IDLE.search(f[-1])]
    if args.match:
        stacks = [(f, c) for f, c in stacks if any(args.match in x for x in f)]
    total = sum(c for _, c in stacks)
    counts: collections.Counter[str] = collections.Counter()
    if args.layers:
        for frames, c in stacks:
            counts[layer_of(frames)] += c
        print(f"{total} busy samples")
        for name in [name for name, _ in LAYERS] + [SUPERVISOR, OTHER]:
            if name in counts:
                print(f"{100.0 * counts[name] / max(total, 1):6.1f}%  {name}")
        return 0
    for frames, c in stacks:
        if args.leaf:
            counts[short(re.sub(r":\d+\)", ")", frames[-1]))] += c
        else:
            for f in {short(re.sub(r":\d+\)", ")", x)) for x in frames}:
                counts[f] += c
    print(f"{total} samples")
    for f, c in counts.most_common(args.top):
        print(f"{100.0 * c / max(total, 1):6.1f}%  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
