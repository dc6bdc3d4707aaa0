"""Crash test: kill -9 the service, shims and engines at random moments; lose nothing.

The harness (harness.py) runs a seeded workload of fast fake-engine jobs (sleep, print, exit
with a code, some ignoring SIGTERM, a quarter with processes outside their launcher's group,
session and marker) against one instance on SQLite and against two instances sharing one
PostgreSQL, with outages longer than the adoption threshold and restarts after the peer
adopted. ``CRASH_SEED`` replays a run (the seed is printed), ``CRASH_JOBS`` (280) and
``CRASH_FAULTS`` (24) size it. ``pytest -s tests/crash`` prints one summary line per store.

Every acknowledged job is present (unless deleted) and terminal, none is duplicated or
launched twice, no process of any job is left, no deleted job's files stay on disk, no answer
is a 5xx, and no job is failed by the service on its own.

Real engines under these faults (MapReduce, SQL and kills of the cluster's Thrift server,
DistCp, PySpark with busy workers) are test_crash_engines.py; their survival of one service
restart each, job by job, is tests/acceptance/test_restart_survival.py.
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from harness import Config, run
from support_db import PG_URL, pg_or_skip

pytestmark = [pytest.mark.crash, pytest.mark.timeout(420)]

SEED = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1, 10**9))
JOBS = int(os.environ.get("CRASH_JOBS", "280"))
FAULTS = int(os.environ.get("CRASH_FAULTS", "24"))


def _assert_clean(summary: str, found: dict, instances: int) -> None:
    print("\n" + summary)
    for key in ("lost", "duplicated", "twice", "stuck", "orphans", "leaked", "5xx", "failed"):
        assert found[key] == [], f"{summary}\n{key}:\n" + "\n".join(found[key][:10])
    assert found["jobs"] >= JOBS and found["faults"] >= min(FAULTS, 20), summary
    if instances == 1:
        across = found["counts"]["across"]
        assert across > 0, "no group-leaving job ran across a restart: " + summary
    else:  # the case that used to kill adopted jobs: their owner came back after adoption
        assert found["adopted"] > 0, "no restart after a peer adopted live jobs: " + summary


def test_one_instance_on_sqlite(tmp_path: Path) -> None:
    cfg = Config("sqlite", 1, SEED, JOBS, FAULTS)
    _assert_clean(*run(cfg, tmp_path), cfg.instances)


def test_two_instances_on_postgresql(tmp_path: Path) -> None:
    pg_or_skip()
    schema = "crash_" + uuid.uuid4().hex[:10]
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in PG_URL else "?"
        url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
        cfg = Config("postgresql", 2, SEED, JOBS, FAULTS, db_url=url)
        _assert_clean(*run(cfg, tmp_path), cfg.instances)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
