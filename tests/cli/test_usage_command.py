"""``mrs-jobs usage``: the roll-up as a table, through the real command over the real app
(in-process ASGI), and ``show``'s usage lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jobrows import insert_jobs, job_row
from typer.testing import CliRunner

from mrs_jobs.api.app import create_app
from mrs_jobs.cli import client
from mrs_jobs.cli.main import app as cli_app
from mrs_jobs.secretbox import load_secret_box
from mrs_jobs.services.bootstrap import bootstrap
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store.jobs import now_ms

DAY = 86_400_000


class Env:
    def __init__(self, store: Store, settings: Settings) -> None:
        boot = bootstrap(
            store, load_secret_box(settings), max_running=0, max_queued=50, parallelism=1
        )
        assert boot is not None
        self.store, self.project, self.cluster = store, boot.project_id, boot.cluster_id
        self.flags = [
            "--endpoint", "http://127.0.0.1:8080", "--project", boot.project_id,
            "--cluster", boot.cluster_id, "--ak", boot.ak, "--sk", boot.sk,
        ]  # fmt: skip
        app = create_app(settings, store, runnable_types=frozenset({"SparkSubmit"}))
        self.http = TestClient(app, base_url="http://127.0.0.1:8080")
        self.urls: list[str] = []

    def cli(self, *args: str) -> Any:
        result = CliRunner().invoke(cli_app, [*args, *self.flags], env={"COLUMNS": "160"})
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result


@pytest.fixture
def env(
    sqlite_store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> Iterator[Env]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("ENDPOINT", "PROJECT_ID", "CLUSTER_ID", "AK", "SK", "TOKEN", "DATA_DIR"):
        monkeypatch.delenv(f"MRS_JOBS_{name}", raising=False)
    the_env = Env(sqlite_store, settings)
    transport = the_env.http._transport

    class AppClient(client.ApiClient):
        def __init__(self, conn: Any, timeout: float = 30.0, transport_: Any = None) -> None:
            super().__init__(conn, timeout, transport_ or transport)

        def _request(self, method: str, url: str, **kw: Any) -> Any:
            the_env.urls.append(f"{method} {url} {kw.get('params')}")
            return super()._request(method, url, **kw)

    monkeypatch.setattr(client, "ApiClient", AppClient)
    yield the_env


def _jobs(env: Env) -> list[str]:
    now = now_ms()
    rows = [
        job_row(env.project, env.cluster, state="FINISHED", job_type="SparkSubmit",
                user_name="ana", started_ms=now - 3_000, finished_ms=now - 1_000,
                cpu_seconds=2.25, peak_memory_mb=300, attempt=3),
        job_row(env.project, env.cluster, state="FAILED", job_type="SparkSubmit",
                user_name="ben", started_ms=now - 3_000, finished_ms=now - 1_000,
                cpu_seconds=1.5, peak_memory_mb=1200, attempt=1),
        job_row(env.project, env.cluster, state="KILLED", job_type="MapReduce",
                user_name="ana", started_ms=now - 10 * DAY, finished_ms=now - 9 * DAY,
                cpu_seconds=40.0, peak_memory_mb=5000, attempt=1),
    ]  # fmt: skip
    insert_jobs(env.store, rows)
    return [r["id"] for r in rows]


def test_usage_prints_a_table_by_job_type_with_a_total(env: Env) -> None:
    _jobs(env)
    out = env.cli("usage")
    assert out.exit_code == 0, out.output
    rows = [line.replace("│", " ").replace("┃", " ").split() for line in out.output.splitlines()]
    spark = next(cells for cells in rows if cells[:1] == ["SparkSubmit"])
    assert spark[1:] == ["2", "2", "3.8", "1,200", "3,000"]  # 2 jobs, 2.25 + 1.5 CPU s
    total = next(cells for cells in rows if cells[:1] == ["total"])
    assert total[1:4] == ["2", "2", "3.8"]  # the MapReduce job ended 9 days ago
    assert "MapReduce" not in out.output
    assert "since=7d" in env.urls[-1] or "'since': '7d'" in env.urls[-1]


def test_usage_by_user_over_two_weeks_and_as_json(env: Env) -> None:
    _jobs(env)
    out = env.cli("usage", "--since", "2w", "--by", "user", "--json")
    assert out.exit_code == 0, out.output
    import json

    data = json.loads(out.output)
    assert [(g["group"], g["job_count"], g["cpu_seconds"]) for g in data["groups"]] == [
        ("ana", 2, 42.25),
        ("ben", 1, 1.5),
    ]
    table = env.cli("usage", "--since", "2w", "--by", "day")
    assert table.exit_code == 0 and "DAY (UTC)" in table.output


def test_iso_dates_are_read_by_the_client(env: Env) -> None:
    out = env.cli("usage", "--since", "2025-12-01", "--until", "2025-12-02")
    assert out.exit_code == 0, out.output
    sent = env.urls[-1]
    assert "'until'" in sent and "'since'" in sent
    assert "2025" not in sent  # sent as epoch ms


def test_bad_options_exit_with_a_clear_message(env: Env) -> None:
    bad_by = env.cli("usage", "--by", "queue")
    assert bad_by.exit_code == 2 and "--by must be one of job_type, user, day" in bad_by.output
    bad_since = env.cli("usage", "--since", "yesterday")
    assert bad_since.exit_code == 2 and "cannot read time" in bad_since.output
    backwards = env.cli("usage", "--since", "1d", "--until", "2d")
    assert backwards.exit_code != 0 and "must be before until" in backwards.output


def test_show_prints_what_the_job_used(env: Env) -> None:
    done, *_ = _jobs(env)
    out = env.cli("show", done)
    assert out.exit_code == 0, out.output
    assert "CPU seconds" in out.output and "2.25" in out.output
    assert "Peak memory MB" in out.output and "300" in out.output
    attempt = [line.split() for line in out.output.splitlines() if line.startswith("Attempt")]
    assert attempt == [["Attempt", "3"]]  # a retried job's attempt, labelled like the rest
