"""An SQL job's diagnostics: the failed statement's own record, else its log."""

from __future__ import annotations

import json
from pathlib import Path

from mrs_jobs.engines.base import JobSpec, LaunchSpec
from mrs_jobs.engines.sql import SqlEngine
from mrs_jobs.engines.thrift import ThriftServers
from mrs_jobs.runtime import jobdir

JOB = JobSpec(job_id="j", job_type="SparkSql", job_name="n", arguments=[], properties={})
LAUNCH = LaunchSpec(argv=["x"], env={}, cwd=".")


def _engine(tmp_path: Path) -> SqlEngine:
    return SqlEngine(ThriftServers(tmp_path / "servers", "marker"))


def test_the_failed_statements_record(tmp_path: Path) -> None:
    results = {"0": [{"1": "1"}], "1": [{"result": "failed", "message": "Syntax error at 'SELEC'"}]}
    (tmp_path / jobdir.SQL_RESULTS).write_text(json.dumps(results))
    (tmp_path / jobdir.STDERR).write_text("[mrs-jobs] statement 1 failed: first line only\n")
    found = _engine(tmp_path).diagnostics(JOB, tmp_path, LAUNCH)
    assert found == "statement 1 failed: Syntax error at 'SELEC'"


def test_without_a_failed_statement_the_log_says_why(tmp_path: Path) -> None:
    (tmp_path / jobdir.SQL_RESULTS).write_text(json.dumps({"0": [{"1": "1"}]}))
    (tmp_path / jobdir.STDERR).write_text(
        "[mrs-jobs] could not connect to the SQL server: refused\n"
        "Traceback (most recent call last):\nConnectionRefusedError: [Errno 111] refused\n"
    )
    found = _engine(tmp_path).diagnostics(JOB, tmp_path, LAUNCH)
    assert found == "ConnectionRefusedError: [Errno 111] refused"
