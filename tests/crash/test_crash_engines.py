"""Crash test: kill -9 the service, shims and engines at random moments; lose nothing.

The harness (harness.py) runs a seeded workload of fast fake-engine jobs (sleep, print, exit
with a code, some ignoring SIGTERM, a quarter with processes outside their launcher's group,
session and marker) against one instance on SQLite and against two instances sharing one
PostgreSQL, with outages longer than the adoption threshold and restarts after the peer
adopted. Every acknowledged job is present (unless deleted) and terminal, none is duplicated
or launched twice, no process of any job is left, no deleted job's files stay on disk, no
answer is a 5xx, and no job is failed by the service on its own.

Some of its jobs run on the real engines instead of the fake one (workload.py: a WordCount in
Hadoop's local runner, an SQL job that creates, fills and sums a table on the cluster's Thrift
server, a DistCp of a local directory, a PySpark job whose two Python workers loop for
seconds). Besides the service, shim and engine kills, some faults SIGKILL the cluster's
Thrift server (faults.py): SQL jobs launched on it may fail and count as faulted, SQL jobs
launched after it must succeed (the service starts it again). Their survival of one service
restart each, job by job, is tests/acceptance/test_restart_survival.py.

Every real-engine job nobody killed, deleted or faulted must succeed and must have produced
what it should have: the word counts, the table's sum, the copied bytes, the sum its workers
computed. ``CRASH_SEED`` replays a run (the seed is printed), ``CRASH_JOBS`` (280),
``CRASH_FAULTS`` (20, of which ``CRASH_THRIFT_FAULTS`` 1) and ``CRASH_ENGINE_JOBS`` (per store,
``mapreduce=3,sql=4,distcp=3,pyspark=2``) size it. ``pytest -s`` prints one summary line per
store. The machine has two cores: the real-engine jobs are a few, spread over the run, with
at most 12 jobs running at a time.
"""

from __future__ import annotations

import os
import random
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from harness import Config, run
from support_db import PG_URL, pg_or_skip
from support_jobs import build_wordcount_jar

from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.mapreduce import hadoop_jars

pytestmark = [pytest.mark.crash, pytest.mark.spark, pytest.mark.timeout(420)]

SEED = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1, 10**9))
JOBS = int(os.environ.get("CRASH_JOBS", "280"))
FAULTS = int(os.environ.get("CRASH_FAULTS", "20"))
THRIFT_FAULTS = int(os.environ.get("CRASH_THRIFT_FAULTS", "1"))
ENGINES = {
    kind: int(count)
    for kind, _, count in (
        part.partition("=")
        for part in os.environ.get(
            "CRASH_ENGINE_JOBS", "mapreduce=3,sql=4,distcp=3,pyspark=2"
        ).split(",")
    )
}


@pytest.fixture(scope="module")
def wc_jar(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """The WordCount jar, compiled now; None without a JDK (no MapReduce jobs then)."""
    javac = Path(find_java_home() or "/usr") / "bin" / "javac"
    if not javac.exists() or shutil.which(str(javac)) is None:
        return None
    api = hadoop_jars(Path(find_spark_home()) / "jars")["hadoop-client-api"]
    return build_wordcount_jar(tmp_path_factory.mktemp("wc"), str(javac), str(api))


def _config(store: str, instances: int, jar: Path | None, db_url: str | None = None) -> Config:
    engines = {k: n for k, n in ENGINES.items() if jar is not None or k != "mapreduce"}
    return Config(
        store,
        instances,
        SEED,
        JOBS,
        FAULTS,
        db_url=db_url,
        engines=engines,
        thrift_faults=THRIFT_FAULTS,
        jar=jar,
        max_running=12,  # real-engine jobs hold their slots long; fake ones need the rest
        drain_seconds=180.0,
    )


def _assert_clean(summary: str, found: dict, cfg: Config) -> None:
    print("\n" + summary)
    keys = ("lost", "duplicated", "twice", "stuck", "orphans", "servers_left", "leaked", "5xx")
    for key in (*keys, "failed"):
        assert found[key] == [], f"{summary}\n{key}:\n" + "\n".join(found[key][:10])
    counts = found["counts"]
    assert found["jobs"] >= JOBS and found["faults"] >= min(FAULTS, 20), summary
    for kind, count in cfg.engines.items():  # each kind really ran, unfaulted, and was checked
        assert count == 0 or counts[f"judged_{kind}"] > 0, f"no {kind} job judged: {summary}"
    if cfg.engines.get("sql") and cfg.thrift_faults:
        assert found["thrift_kills"] > 0, "no Thrift server was killed: " + summary
        assert counts["sql_after_thrift"] > 0, "no SQL job ran after a Thrift kill: " + summary
        if cfg.instances == 1:  # with two, the SQL jobs after it may all go to the other one
            assert counts["thrift_restarted"] > 0, "no SQL job on a restarted server: " + summary
    assert counts["engine_across"] > 0, "no real-engine job ran across a restart: " + summary
    if cfg.instances == 1:
        assert counts["across"] > 0, "no group-leaving job ran across a restart: " + summary
    if cfg.instances > 1:  # their owner came back after the peer adopted its live jobs
        assert found["adopted"] > 0, "no restart after a peer adopted live jobs: " + summary


def test_engines_one_instance_on_sqlite(tmp_path: Path, wc_jar: Path | None) -> None:
    cfg = _config("sqlite", 1, wc_jar)
    _assert_clean(*run(cfg, tmp_path), cfg)


def test_engines_two_instances_on_postgresql(tmp_path: Path, wc_jar: Path | None) -> None:
    pg_or_skip()
    schema = "crash_" + uuid.uuid4().hex[:10]
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
        cfg = _config("postgresql", 2, wc_jar, db_url=url)
        _assert_clean(*run(cfg, tmp_path), cfg)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
