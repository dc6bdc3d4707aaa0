"""P9: what measuring a job's usage costs, and what the alternative would have cost.

The shim measures a run's process tree with ``getrusage(RUSAGE_CHILDREN)`` once the engine
ended (``runtime/shim.py``): it becomes a child subreaper at start (``prctl``, through
``ctypes``), reaps what the run left to it (the box's init) and reads the counters once.

1. **The pieces, in a fresh interpreter each** (``python -I``, as the shim runs): the
   subreaper call including the ``ctypes`` import, the reaping with nothing left, one
   ``getrusage``. This is everything the feature adds to a run.
2. **A whole run, with and without**: the shim over ``/bin/true`` in a job box, the shim and
   a copy whose three usage functions do nothing, alternating; both copies write their own
   CPU time (``RUSAGE_SELF``, user + system) last, so the figure is the shim's alone, not the
   box's; and the wall time to the shim's exit. The runs are identical but for the
   measurement, so the difference of the medians is its cost (within the noise of a shared
   machine, which the spread shows). ``wait4`` of the shim (it and all it reaped) is printed
   too: with the measurement it includes the box's init, which it then reaps.
3. **The alternative not taken, /proc sampling**: the CPU one sample costs per process of the
   tree (``/proc/<pid>/stat`` for utime/stime, ``/proc/<pid>/statm`` for the resident size),
   and the scan that finds the tree's members (every ``/proc/<pid>/stat`` of the host, as
   members come and go); a 1 s sampling interval costs that every second of every run.

Run: ``.venv/bin/python bench/p9_usage_cost.py [--runs 30] [--samples 2000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import log, print_table, summarize  # noqa: E402

from mrs_jobs.runtime.box import BoxPolicy, bwrap_path  # noqa: E402

SHIM = Path(__file__).resolve().parents[1] / "src" / "mrs_jobs" / "runtime" / "shim.py"

PIECES = r"""
import importlib.util, json, sys, time
spec = importlib.util.spec_from_file_location("shim", sys.argv[1])
shim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shim)
out = {}
t = time.process_time_ns(); w = time.perf_counter_ns()
shim._become_subreaper()
out["subreaper"] = (time.process_time_ns() - t, time.perf_counter_ns() - w)
t = time.process_time_ns(); w = time.perf_counter_ns()
shim._reap(None)
out["reap"] = (time.process_time_ns() - t, time.perf_counter_ns() - w)
t = time.process_time_ns(); w = time.perf_counter_ns()
for _ in range(1000):
    shim._tree_usage()
out["getrusage"] = ((time.process_time_ns() - t) / 1000, (time.perf_counter_ns() - w) / 1000)
print(json.dumps(out))
"""

NO_USAGE = {
    "        _become_subreaper()  # the box's init is left to us when bwrap exits: reap it\n": (
        "        pass\n"
    ),
    "    _reap(box[1] if box is not None else None)\n": "",
    "usage=_tree_usage()": "usage=None",
}
END = "    _record_end(job_dir, launch, child.pid, code, box)\n"
SELF = (
    END + "    with open(os.path.join(job_dir, 'self.json'), 'w') as f:\n"
    "        json.dump(list(resource.getrusage(resource.RUSAGE_SELF)[:2]), f)\n"
)


def pieces(n: int) -> dict[str, dict[str, float]]:
    """Microseconds (CPU, wall) of each added piece, each run in a fresh interpreter."""
    got: dict[str, list[float]] = {}
    for _ in range(n):
        line = subprocess.run(
            [sys.executable, "-I", "-c", PIECES, str(SHIM)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for name, (cpu_ns, wall_ns) in json.loads(line).items():
            got.setdefault(f"{name} cpu", []).append(cpu_ns / 1000)
            got.setdefault(f"{name} wall", []).append(wall_ns / 1000)
    return {k: summarize(v) for k, v in got.items()}


def _copy(scratch: Path, name: str, edits: dict[str, str]) -> Path:
    """The shim with ``edits``, reporting its own CPU time in ``self.json`` at the end."""
    text = SHIM.read_text()
    for old, new in {**edits, END: SELF}.items():
        assert old in text, old
        text = text.replace(old, new)
    copy = scratch / name
    copy.write_text(text)
    return copy


def _run(shim: Path, workdir: Path, launch: dict) -> tuple[float, float, float]:
    """One shim run: CPU seconds of the shim, of it and all it reaped, wall seconds."""
    workdir.mkdir(parents=True)
    (workdir / "launch.json").write_text(json.dumps(launch))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-I", str(shim), str(workdir)], start_new_session=True)
    _, status, used = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0 and (workdir / "exit.json").exists()
    own = sum(json.loads((workdir / "self.json").read_text()))
    return own, used.ru_utime + used.ru_stime, wall


def whole_runs(n: int, scratch: Path) -> dict[str, dict[str, float]]:
    bwrap = bwrap_path()
    assert bwrap, "bwrap is needed (the runs are boxed, as jobs are)"
    policy = BoxPolicy(bwrap=str(bwrap), hidden=(str(scratch / "data"),))
    shims = {
        "with usage": _copy(scratch, "shim_with.py", {}),
        "without": _copy(scratch, "shim_without.py", NO_USAGE),
    }
    cpu: dict[str, list[float]] = {k: [] for k in shims}
    tree: dict[str, list[float]] = {k: [] for k in shims}
    wall: dict[str, list[float]] = {k: [] for k in shims}
    measured: list[dict] = []
    for i in range(n + 2):  # the first two warm the caches, not counted
        for kind in shims if i % 2 else reversed(list(shims)):
            workdir = scratch / "data" / "jobs" / f"{kind.replace(' ', '-')}-{i}"
            argv, env = ["/bin/true"], {"PATH": "/usr/bin:/bin"}
            box = policy.for_run(workdir, argv, env)
            launch = {
                "argv": argv,
                "env": env,
                "cwd": str(workdir),
                "box": {"bwrap": str(bwrap), "args": box.args()},
            }
            c, t, w = _run(shims[kind], workdir, launch)
            if i >= 2:
                cpu[kind].append(c * 1000)
                tree[kind].append(t * 1000)
                wall[kind].append(w * 1000)
                if kind == "with usage":
                    measured.append(json.loads((workdir / "exit.json").read_text())["usage"])
    out = {f"{k}: shim CPU ms": summarize(v) for k, v in cpu.items()}
    out.update({f"{k}: wait4 CPU ms": summarize(v) for k, v in tree.items()})
    out.update({f"{k}: wall ms": summarize(v) for k, v in wall.items()})
    out["recorded cpu_seconds of /bin/true ms"] = summarize(
        [m["cpu_seconds"] * 1000 for m in measured]
    )
    out["recorded peak_memory_mb"] = summarize([m["peak_memory_mb"] for m in measured])
    return out


def proc_sampling(samples: int, procs: int) -> dict[str, dict[str, float]]:
    """CPU microseconds of /proc sampling: per tree member per sample, and one host scan."""
    children = [subprocess.Popen(["sleep", "60"]) for _ in range(procs)]
    try:
        pids = [c.pid for c in children]
        per: list[float] = []
        for _ in range(samples // 10):
            t = time.process_time_ns()
            for _ in range(10):
                for pid in pids:
                    with open(f"/proc/{pid}/stat", "rb") as f:
                        fields = f.read().rsplit(b")", 1)[1].split()
                    _ = int(fields[11]) + int(fields[12])
                    with open(f"/proc/{pid}/statm", "rb") as f:
                        _ = int(f.read().split()[1])
            per.append((time.process_time_ns() - t) / 1000 / (10 * len(pids)))
        scans: list[float] = []
        host = 0
        for _ in range(max(10, samples // 100)):
            t = time.process_time_ns()
            host = 0
            for name in os.listdir("/proc"):
                if name.isdigit():
                    try:
                        with open(f"/proc/{name}/stat", "rb") as f:
                            f.read()
                        host += 1
                    except OSError:
                        pass
            scans.append((time.process_time_ns() - t) / 1000)
    finally:
        for c in children:
            c.kill()
            c.wait()
    return {
        "per process per sample us": summarize(per),
        f"host scan ({host} processes) us": summarize(scans),
    }


def _fmt(s: dict[str, float]) -> str:
    return f"{s['median']:.3g} ({s['min']:.3g}-{s['max']:.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="p9-") as tmp:
        scratch = Path(tmp)
        log("pieces")
        p = pieces(max(5, args.runs // 3))
        log("whole runs")
        w = whole_runs(args.runs, scratch)
        log("/proc sampling")
        s = proc_sampling(args.samples, 8)
    print_table(
        "P9 — what the usage measurement adds to a run (us, median (min-max))",
        ["piece", "CPU us", "wall us"],
        [
            [name, _fmt(p[f"{name} cpu"]), _fmt(p[f"{name} wall"])]
            for name in ("subreaper", "reap", "getrusage")
        ],
    )
    print_table(
        f"P9 — a boxed /bin/true run through the shim, {args.runs} each, alternating",
        ["figure", "median (min-max)"],
        [[name, _fmt(v)] for name, v in w.items()],
    )
    print_table(
        "P9 — /proc sampling, the alternative (CPU us)",
        ["figure", "median (min-max)"],
        [[name, _fmt(v)] for name, v in s.items()],
    )


if __name__ == "__main__":
    main()
