"""The jobs of a crash run: what each one asks for, and what it must have produced.

Most jobs are fast fake-engine jobs (tests/fake_engine.py: sleep, print, exit with a code, a
quarter with processes outside their launcher's group, session and marker). With an engine mix
(:class:`Config.engines <harness.Config>`) some of them are real-engine jobs instead, spread
evenly over the run:

- ``mapreduce``: Hadoop's local runner counting the words of two small files (a few ms per
  record, so it is mid-map for a few seconds); checked: ``part-r-00000`` holds the counts;
- ``sql``: SparkSql on the cluster's Thrift server: create a table, INSERT rows, then sum the
  table; checked: the last statement's rows (via the API);
- ``distcp``: a local directory copied with ``-update`` at 1 MB/s (a text file and a binary
  one); checked: the target holds both, byte for byte;
- ``pyspark``: a SparkSubmit of a Python script whose two Python workers each sum a range with
  a Python loop (CPU-bound for seconds); checked: its output file and its stdout.

Every input and expected output is derived from the run's seeded random generator.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ENGINE_KINDS", "Plan", "build_programs", "check_output", "make_plans", "token"]

ENGINE_KINDS = ("mapreduce", "sql", "distcp", "pyspark")
WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")

BUSY_PY = """\
import os, sys
from pyspark.sql import SparkSession

out, n = sys.argv[1], int(sys.argv[2])
spark = SparkSession.builder.appName("crash-busy").getOrCreate()


def busy(chunks):
    total = 0
    for lo, hi in chunks:
        for j in range(lo, hi):  # a Python loop on purpose: the worker is busy
            total += j
    yield total


chunks = [(i * n // 4, (i + 1) * n // 4) for i in range(4)]
total = spark.sparkContext.parallelize(chunks, 2).mapPartitions(busy).sum()
with open(out + ".tmp", "w") as fh:
    fh.write(str(total))
os.replace(out + ".tmp", out)
print("BUSY-SUM", total, flush=True)
spark.stop()
"""


@dataclass
class Plan:
    """One logical job: its request, and what to check once it ended."""

    k: int
    kind: str  # "fake" or one of ENGINE_KINDS
    job_type: str
    arguments: list[str]
    expected: str = "SUCCEEDED"  # the job_result it asked for
    properties: dict[str, str] = field(default_factory=dict)
    work: Path | None = None  # its inputs and outputs (real engines)
    want: Any = None  # what it must produce (kind-specific)

    @property
    def leaves_group(self) -> bool:
        return "--wait-children" in self.arguments

    def body(self) -> dict:
        body: dict = {
            "job_type": self.job_type,
            "job_name": f"crash{self.k}",
            "arguments": self.arguments,
        }
        if self.properties:
            body["properties"] = self.properties
        return body


def token(run_id: str, k: int) -> str:
    return f"crash-unmarked-{run_id}-{k}"


def _fake(rng: random.Random, k: int, run_id: str) -> Plan:
    """Fast fake jobs; a quarter leave their launcher's group and session (and the marker)."""
    if rng.random() < 0.25:
        args = [
            "fake",
            "--sleep",
            f"{rng.uniform(1.0, 3.0):.2f}",
            "--print",
            f"job-{k}",
            "--spawn-detached",
            "--spawn-unmarked",
            token(run_id, k),
            "--wait-children",
        ]
        return Plan(k, "fake", "SparkSubmit", args)
    args = ["fake", "--sleep", f"{rng.uniform(0.2, 2.0):.2f}", "--print", f"job-{k}"]
    if rng.random() < 0.2:
        args += ["--exit", str(rng.choice([1, 2, 3]))]
    if rng.random() < 0.1:
        args.append("--ignore-term")
    return Plan(k, "fake", "SparkSubmit", args, "FAILED" if "--exit" in args else "SUCCEEDED")


def _mapreduce(rng: random.Random, k: int, work: Path, programs: Path) -> Plan:
    (work / "in").mkdir(parents=True)
    counts: Counter[str] = Counter()
    for name in ("a.txt", "b.txt"):
        lines = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(20, 50))
        ]
        counts.update(w for line in lines for w in line.split())
        (work / "in" / name).write_text("\n".join(lines) + "\n")
    args = [str(programs / "wc.jar"), "WordCount", str(work / "in"), str(work / "out")]
    want = {w: str(c) for w, c in counts.items()}
    props = {"wc.sleep.ms": "30"}  # per record: mid-map for a few seconds
    return Plan(k, "mapreduce", "MapReduce", args, properties=props, work=work, want=want)


def _sql(rng: random.Random, k: int, run_id: str) -> Plan:
    table = f"crash_{run_id}_{k}"
    rows = [(rng.choice(WORDS), rng.randint(1, 1000)) for _ in range(rng.randint(2, 6))]
    values = ", ".join(f"('{w}', {n})" for w, n in rows)
    text = (
        f"CREATE TABLE {table} (word STRING, n INT) USING parquet; "
        f"INSERT INTO {table} VALUES {values}; "
        f"SELECT count(*) AS c, sum(n) AS total FROM {table}"
    )
    want = {"2": [{"c": str(len(rows)), "total": str(sum(n for _, n in rows))}]}
    return Plan(k, "sql", "SparkSql", [text], want=want)


def _distcp(rng: random.Random, k: int, work: Path) -> Plan:
    src = work / "src"
    src.mkdir(parents=True)
    files = {
        "a.txt": "\n".join(rng.choice(WORDS) for _ in range(50)).encode(),
        "sub/b.bin": rng.randbytes(rng.randint(1_000_000, 2_500_000)),
    }
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    args = ["-update", "-m", "1", "-bandwidth", "1", str(src), str(work / "dst")]
    want = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    return Plan(k, "distcp", "DistCp", args, work=work, want=want)


def _pyspark(rng: random.Random, k: int, work: Path, programs: Path) -> Plan:
    work.mkdir(parents=True)
    n = rng.randint(15_000_000, 30_000_000)
    args = [str(programs / "busy.py"), str(work / "sum.txt"), str(n)]
    return Plan(k, "pyspark", "SparkSubmit", args, work=work, want=n * (n - 1) // 2)


def _engine_slots(rng: random.Random, jobs: int, engines: dict[str, int]) -> dict[int, str]:
    """Which logical jobs are real-engine ones: evenly spread from 3 % to 95 % of the run,
    the kinds taking turns (shuffled per round, SQL first in the first), so each kind also
    comes late in the run."""
    rounds: list[list[str]] = []
    left = dict(engines)
    while any(left.values()):
        turn = [kind for kind in ENGINE_KINDS if left.get(kind, 0) > 0]
        rng.shuffle(turn)
        if not rounds and "sql" in turn:  # the first starts the cluster's SQL server: early
            turn.remove("sql")
            turn.insert(0, "sql")
        for kind in turn:
            left[kind] -= 1
        rounds.append(turn)
    kinds = [kind for turn in rounds for kind in turn]
    if not kinds:
        return {}
    span = 0.92 * jobs / len(kinds)
    return {int(0.03 * jobs + i * span): kind for i, kind in enumerate(kinds)}


def make_plans(
    rng: random.Random,
    jobs: int,
    run_id: str,
    engines: dict[str, int],
    root: Path,
    programs: Path | None,
) -> dict[int, Plan]:
    """Every logical job of the run (inputs of real-engine jobs are written now)."""
    slots = _engine_slots(rng, jobs, engines)
    plans: dict[int, Plan] = {}
    for k in range(jobs):
        kind = slots.get(k, "fake")
        work = root / "work" / f"{kind}-{k}"
        if kind == "fake":
            plans[k] = _fake(rng, k, run_id)
        elif kind == "sql":
            plans[k] = _sql(rng, k, run_id)
        elif kind == "distcp":
            plans[k] = _distcp(rng, k, work)
        else:
            assert programs is not None, "real-engine jobs need the programs (build_programs)"
            maker = _mapreduce if kind == "mapreduce" else _pyspark
            plans[k] = maker(rng, k, work, programs)
    return plans


def build_programs(into: Path, jar: Path | None) -> Path:
    """The run's programs, under its output root (a job's box shows only the roots): the
    PySpark script, and the WordCount jar built by the test module (support_jobs)."""
    into.mkdir(parents=True, exist_ok=True)
    (into / "busy.py").write_text(BUSY_PY)
    if jar is not None:
        shutil.copyfile(jar, into / "wc.jar")
    return into


def check_output(plan: Plan, workdir: Path, sql_results: dict | None) -> str:
    """Why what ``plan``'s job produced is wrong ("" when it is right)."""
    try:
        if plan.kind == "fake":
            stdout = (workdir / "stdout.log").read_text(errors="replace")
            return "" if f"job-{plan.k}" in stdout else "no output of its own"
        assert plan.work is not None or plan.kind == "sql"
        if plan.kind == "mapreduce":
            text = (plan.work / "out" / "part-r-00000").read_text()  # type: ignore[operator]
            got = dict(line.split("\t") for line in text.splitlines())
            return "" if got == plan.want else f"counts {got} != {plan.want}"
        if plan.kind == "sql":
            got = {i: (sql_results or {}).get(i) for i in plan.want}
            return "" if got == plan.want else f"sql results {sql_results} lack {plan.want}"
        if plan.kind == "distcp":
            dst = plan.work / "dst"  # type: ignore[operator]
            got = {n: hashlib.sha256((dst / n).read_bytes()).hexdigest() for n in plan.want}
            return "" if got == plan.want else f"copied files differ: {sorted(got)}"
        text = (plan.work / "sum.txt").read_text()  # type: ignore[operator]
        stdout = (workdir / "stdout.log").read_text(errors="replace")
        if text != str(plan.want) or f"BUSY-SUM {plan.want}" not in stdout:
            return f"sum {text!r}, expected {plan.want}"
        return ""
    except (OSError, ValueError) as exc:
        return f"no output: {type(exc).__name__}: {exc}"
