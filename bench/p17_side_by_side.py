"""P17: the bare endpoint, mrs-jobs on SQLite, mrs-jobs on PostgreSQL and Prefect's server,
side by side in one run, on the same two requests: show one job / flow run, submit one.

Why: P3 says how far ours is from the framework's limit (the bare endpoint); this says, in the
same run and on the same box, where a widely used job service of the same stack stands, so
"ours / Prefect" can be read next to "ours / bare" (the open issue asks for both ratios).

Each system is started once and seeded once with ``--size`` finished jobs / flow runs:

- ``bare``: ``bench/bare_app.py`` as P3 starts it (``p3_throughput.start_bare``);
- ``sqlite`` / ``postgres``: ``mrs-jobs serve`` over a fresh store (``common.make_store``: a
  SQLite file, or a ``bench_<hex>`` schema in the ``test`` database), seeded with
  ``common.seed_jobs`` and started with P3's settings (``p3_throughput.BENCH_ENV``: rate limit
  lifted, retention off), requests pre-signed as P3's (``p3_throughput._service_requests``);
- ``prefect``: ``bench/peer_prefect.py`` (its own venv, SQLite, settings in its docstring).

Load: ``bench/loadgen.py`` through ``p3_throughput.measure``, P3's defaults (2 processes x 16
keep-alive connections, 0.5 s warm-up, closed loop, pre-built requests); for Prefect the load
workers reopen a connection the server closed (it closes one after each 503, see
``peer_prefect._ReopeningLoop``). Every repetition measures each kind on every system, one
window after another, the systems' order rotated per repetition; after each window the run
waits until that server is idle again (``peer_prefect.wait_idle``, at most 60 s), so work a
server leaves behind (Prefect writes its events after answering) does not land in the next
system's window. The ratios are per repetition (windows seconds apart), then median
(min-max). CPU is the server process and its children plus, for PostgreSQL, the server's own
backends, per 2xx answer, in the median window.

    python bench/p17_side_by_side.py [--size 10000] [--reps 3] [--seconds 2]
        [--only bare,sqlite,postgres,prefect] [--kinds show,submit] [--prefect-services events]

Prints a Markdown table and writes it to ``bench/out/p17-<time>.md``, with the commit the
service ran from (and how many files of ``src/`` differed from it). ``mrs-jobs serve`` is
started with this checkout's ``src/`` first on PYTHONPATH, so a copy of the repository
(``git clone``) measures its own code even with the venv installed from another checkout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    OUT,
    BenchStore,
    Server,
    children_of,
    hardware,
    log,
    make_store,
    pg_available,
    print_table,
    proc_cpu_seconds,
    seed_jobs,
    summarize,
)
from p3_throughput import (  # noqa: E402
    BENCH_ENV,
    _bare_requests,
    _service_requests,
    measure,
    start_bare,
)
from peer_prefect import (  # noqa: E402
    PREFECT_VERSION,
    SERVICES,
    PrefectPeer,
    wait_idle,
    with_errors,
)

SYSTEMS = ("bare", "sqlite", "postgres", "prefect")
OURS = ("sqlite", "postgres")
KINDS = ("show", "submit")
PER_WORKER = 6000  # P3's count of unique pre-signed submits per load worker and window


@dataclass
class Target:
    """One running system: how to build its requests and measure one window on it."""

    name: str
    server: Any  # common.Server or peer_prefect.PrefectPeer (host, port, pid)
    requests: Callable[[str], Any]  # kind -> loadgen's make_requests
    bs: BenchStore | None = None
    seed_seconds: float = 0.0
    windows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def cpu_seconds(self) -> float:
        pid = self.server.pid
        return sum(proc_cpu_seconds(p) for p in [pid, *children_of(pid)])

    def measure(self, kind: str, args: argparse.Namespace) -> dict[str, Any]:
        if isinstance(self.server, PrefectPeer):
            return self.server.measure(
                kind, args.seconds, processes=args.processes, conns=args.conns
            )
        res = measure(
            self.server,
            self.requests(kind),
            self.bs,
            processes=args.processes,
            conns=args.conns,
            seconds=args.seconds,
            warmup=0.5,
        )
        return with_errors(res, args.seconds, wait_idle(self.cpu_seconds))


def bare_target(stack: ExitStack) -> Target:
    tmp = Path(tempfile.mkdtemp(prefix="p17-bare-"))
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    server = start_bare(tmp)
    stack.callback(server.stop)
    return Target("bare", server, lambda kind: _bare_requests(kind, server.host, server.port))


def ours_target(stack: ExitStack, kind: str, size: int) -> Target:
    bs = make_store(kind)
    stack.callback(bs.drop)
    log(f"seeding {kind} {size:,}")
    t0 = time.monotonic()
    seed_jobs(bs, size)
    seeded = time.monotonic() - t0
    server = Server.mrs(bs, **BENCH_ENV).start()
    stack.callback(server.stop)
    assert bs.tenant is not None
    tenant, ids = bs.tenant, bs.job_ids

    def requests(k: str) -> Any:
        return _service_requests(k, tenant, server.host, server.port, ids, PER_WORKER)

    return Target(kind, server, requests, bs, seeded)


def prefect_target(stack: ExitStack, size: int, services: str) -> Target:
    peer = stack.enter_context(PrefectPeer(size, services))
    return Target("prefect", peer, peer.requests, None, peer.seed_seconds)


def start_all(stack: ExitStack, args: argparse.Namespace) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for name in args.only:
        if name == "bare":
            targets[name] = bare_target(stack)
        elif name in OURS:
            if name == "postgres" and not pg_available():
                log("PostgreSQL not reachable: postgres skipped")
                continue
            targets[name] = ours_target(stack, name, args.size)
        elif name == "prefect":
            targets[name] = prefect_target(stack, args.size, args.prefect_services)
    return targets


def run(targets: dict[str, Target], args: argparse.Namespace) -> None:
    """``reps`` x kinds x systems windows; the systems' order rotates per repetition."""
    names = list(targets)
    for t in targets.values():
        t.windows = {k: [] for k in args.kinds}
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for kind in args.kinds:
            for name in order:
                w = targets[name].measure(kind, args)
                targets[name].windows[kind].append(w)
                log(
                    f"P17 rep{rep} {kind} {name}: {w['rate']:.0f}/s statuses={w['statuses']}"
                    f" closed={w['closed']} server {w['server_cpu']:.2f} db {w['db_cpu']:.2f}"
                    f" other {w['other_cpu']:.2f} cores, idle again after "
                    f"{w['after_seconds']:.1f} s"
                )


def spread(xs: list[float], unit: str = "") -> str:
    """median (min-max); ratios below 10 with two decimals, below 0.1 with two digits."""
    s = summarize(xs)

    def f(x: float) -> str:
        if unit != "x" or abs(x) >= 10:
            return f"{x:,.0f}"
        return f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.2g}"

    return f"{f(s['median'])}{unit} ({f(s['min'])}-{f(s['max'])})"


def ratios(a: Target, b: Target, kind: str) -> list[float]:
    """a's rate / b's rate, per repetition (windows measured seconds apart)."""
    pairs = zip(a.windows[kind], b.windows[kind], strict=True)
    return [x["rate"] / y["rate"] if y["rate"] else float("nan") for x, y in pairs]


def median_window(ws: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(ws, key=lambda w: w["rate"])[len(ws) // 2]


def row(targets: dict[str, Target], name: str, kind: str) -> list[str]:
    t = targets[name]
    ws = t.windows[kind]
    med = median_window(ws)
    cpu = f"{med['server_cpu_per_req_ms']:.2f}"
    if med["errors"]:
        cpu += f" ({med['server_cpu_per_answer_ms']:.2f} per answer)"
    vs_bare = vs_prefect = "-"
    if name != "bare" and "bare" in targets:
        vs_bare = spread(ratios(t, targets["bare"], kind), "x")
    if name in OURS and "prefect" in targets:
        vs_prefect = spread(ratios(t, targets["prefect"], kind), "x")
    return [
        kind,
        name,
        spread([w["rate"] for w in ws]),
        f"{summarize([w['errors'] for w in ws])['median']:,.0f}",
        cpu,
        f"{summarize([w['latency']['median'] for w in ws])['median'] * 1e3:.1f}",
        vs_bare,
        vs_prefect,
    ]


def table(targets: dict[str, Target], args: argparse.Namespace) -> str:
    rows = [row(targets, name, kind) for kind in args.kinds for name in targets]
    return print_table(
        f"P17 side by side: {args.size:,} seeded, {args.processes}x{args.conns} connections, "
        f"{args.seconds:g} s windows, median (min-max) of {args.reps} repetitions",
        [
            "endpoint",
            "system",
            "2xx /s",
            "non-2xx per window",
            "server CPU ms per 2xx",
            "p50 ms",
            "÷ bare",
            "ours ÷ Prefect",
        ],
        rows,
    )


def notes(targets: dict[str, Target], args: argparse.Namespace) -> list[str]:
    out = []
    seeded = ", ".join(f"{n} {t.seed_seconds:.1f} s" for n, t in targets.items() if t.seed_seconds)
    if seeded:
        out.append(f"Seeding {args.size:,}: {seeded}.")
    busy = []
    for n, t in targets.items():
        for k in args.kinds:
            after = summarize([w["after_seconds"] for w in t.windows[k]])
            closed = summarize([w["closed"] for w in t.windows[k]])["median"]
            busy.append(
                f"{n} {k} {after['median']:.1f} s"
                + (f" ({closed:,.0f} connections closed by the server)" if closed else "")
            )
    out.append("Idle again after each window (median; 1.0 s = at once): " + ", ".join(busy) + ".")
    return out


def source() -> str:
    """The commit the service runs from, and whether src/ differs from it."""
    import mrs_jobs

    src = Path(mrs_jobs.__file__).resolve().parent.parent

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(src), *argv], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else "?"

    dirty = git("status", "--porcelain", "--", ".")
    changed = len(dirty.splitlines()) if dirty != "?" else 0
    return f"{src} at {git('rev-parse', '--short', 'HEAD')}" + (
        f" with {changed} uncommitted files in src/" if changed else ""
    )


def header(args: argparse.Namespace, load: tuple[float, float]) -> list[str]:
    hw = hardware()
    return [
        f"# P17 side by side ({time.strftime('%Y-%m-%d %H:%M')})",
        "",
        "`" + " ".join(["python", *sys.argv]) + "`",
        "",
        f"Systems: {', '.join(args.only)}; Prefect {PREFECT_VERSION} (SQLite, services "
        f"{args.prefect_services}). Box: {hw['nproc']} cores ({hw['cpu']}), Python "
        f"{hw['python']}, SQLite {hw['sqlite']}; load average {load[0]:.1f} before, "
        f"{load[1]:.1f} after. Service code: {source()}.",
    ]


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--only", default=",".join(SYSTEMS))
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--prefect-services", choices=SERVICES, default="events")
    args = ap.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    args.kinds = [k for k in args.kinds.split(",") if k]
    bad = sorted(set(args.only) - set(SYSTEMS)) + sorted(set(args.kinds) - set(KINDS))
    if bad:
        ap.error(f"unknown: {', '.join(bad)}")
    return args


def same_code_for_servers() -> None:
    """``mrs-jobs serve`` imports the ``src/`` this process imports (common.py puts the
    checkout's own first), not the one the venv was installed from, if they differ."""
    import mrs_jobs

    src = str(Path(mrs_jobs.__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = src + (os.pathsep + rest if rest else "")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    same_code_for_servers()
    load0 = os.getloadavg()[0]
    with ExitStack() as stack:
        targets = start_all(stack, args)
        run(targets, args)
    text = table(targets, args)
    lines = [*header(args, (load0, os.getloadavg()[0])), text, "", *notes(targets, args)]
    print("\n" + "\n".join(notes(targets, args)), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"p17-{time.strftime('%Y%m%d-%H%M%S')}.md"
    path.write_text("\n".join(lines) + "\n")
    log(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
