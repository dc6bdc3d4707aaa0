"""Summarise py-spy ``--format raw`` (collapsed stacks) output: top frames by samples.

    python bench/stacks.py profile.raw [--thread SUBSTR] [--top 30] [--leaf]

Inclusive counts per function (a frame counted once per stack), and optionally leaf (self)
counts. Used for the profiles quoted in bench/README.md.
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
    args = ap.parse_args(argv)
    stacks = load(args.raw, args.thread)
    if not args.all:  # percentages of busy samples: a thread waiting is not a cost
        stacks = [(f, c) for f, c in stacks if not IDLE.search(f[-1])]
    if args.match:
        stacks = [(f, c) for f, c in stacks if any(args.match in x for x in f)]
    total = sum(c for _, c in stacks)
    counts: collections.Counter[str] = collections.Counter()
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
