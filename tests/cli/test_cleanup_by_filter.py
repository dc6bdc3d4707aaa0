"""``delete`` and ``kill`` by filter: the real commands over the real app (in-process ASGI).

Rows go straight into the store (5,000 in a few hundred ms); the CLI runs through Typer's
runner with its HTTP client pointed at the app, so every selection, batch and kill goes
through the public API exactly as from a terminal. The client records each request, and
hooks on it change the store mid-run (a job submitted after the selection, one deleted or
ended meanwhile).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jobrows import audit_rows, insert_job, insert_jobs, job_row, raw_job, transition_path
from sqlalchemy import select
from typer.testing import CliRunner

from mrs_jobs.api.app import create_app
from mrs_jobs.cli import cleanup, client
from mrs_jobs.cli.common import UsageError
from mrs_jobs.cli.filters import build_filters, parse_before
from mrs_jobs.cli.main import app as cli_app
from mrs_jobs.secretbox import load_secret_box
from mrs_jobs.services.bootstrap import bootstrap
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store.tables import jobs

DAY_MS = 86_400_000
# (state, result) kinds the big store cycles through
KINDS = [
    ("FINISHED", "FAILED"),
    ("FAILED", "FAILED"),
    ("FINISHED", "SUCCEEDED"),
    ("KILLED", "KILLED"),
    ("RUNNING", "UNDEFINED"),
]


class Env:
    """The app, its store and the CLI pointed at it."""

    def __init__(self, store: Store, settings: Settings) -> None:
        boot = bootstrap(
            store, load_secret_box(settings), max_running=0, max_queued=50, parallelism=2
        )
        assert boot is not None
        self.store, self.project, self.cluster = store, boot.project_id, boot.cluster_id
        self.conn_flags = [
            "--endpoint", "http://127.0.0.1:8080", "--project", boot.project_id,
            "--cluster", boot.cluster_id, "--ak", boot.ak, "--sk", boot.sk,
        ]  # fmt: skip
        app = create_app(settings, store, runnable_types=frozenset({"SparkSubmit", "SparkSql"}))
        self.http = TestClient(app, base_url="http://127.0.0.1:8080")
        self.requests: list[str] = []
        self.hooks: dict[str, Callable[[int], None]] = {}  # method -> called before each call

    def row(self, **values: Any) -> dict[str, Any]:
        return job_row(self.project, self.cluster, **values)

    def cli(self, *args: str, answer: str | None = None) -> Any:
        result = CliRunner().invoke(cli_app, [*args, *self.conn_flags], input=answer)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def deleted(self) -> set[str]:
        with self.store.read() as conn:
            rows = conn.execute(select(jobs.c.id).where(jobs.c.deleted_ms > 0)).all()
        return {r.id for r in rows}


@pytest.fixture
def env(
    sqlite_store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> Iterator[Env]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no profile of the host
    for name in ("ENDPOINT", "PROJECT_ID", "CLUSTER_ID", "AK", "SK", "TOKEN", "DATA_DIR"):
        monkeypatch.delenv(f"MRS_JOBS_{name}", raising=False)
    the_env = Env(sqlite_store, settings)
    app_transport = the_env.http._transport
    calls: dict[str, int] = {}

    class AppClient(client.ApiClient):
        """The CLI's own client, over the in-process app, recording and hooking calls."""

        def __init__(self, conn: Any, timeout: float = 30.0, transport: Any = None) -> None:
            super().__init__(conn, timeout, transport or app_transport)

        def _request(self, method: str, url: str, **kw: Any) -> Any:
            the_env.requests.append(f"{method} {url.rsplit('/', 1)[-1]}")
            return super()._request(method, url, **kw)

        def _hooked(self, name: str) -> None:
            calls[name] = calls.get(name, 0) + 1
            if name in the_env.hooks:
                the_env.hooks[name](calls[name])

        def list(self, params: Any) -> dict[str, Any]:
            self._hooked("list")
            return super().list(params)

        def batch_delete(self, job_ids: list[str]) -> None:
            self._hooked("batch_delete")
            super().batch_delete(job_ids)

        def kill(self, job_id: str) -> None:
            self._hooked("kill")
            super().kill(job_id)

    monkeypatch.setattr(client, "ApiClient", AppClient)
    yield the_env
    the_env.http.close()


def _big_store(env: Env) -> tuple[dict[str, dict[str, Any]], int]:
    """5,000 jobs: five kinds, old (10 days) and recent (an hour), two types and names,
    submitted times shared by three jobs each (ties are paged by id)."""
    now = int(time.time() * 1000)
    rows = []
    for i in range(5000):
        state, result = KINDS[i % 5]
        old = i % 7 != 0
        submitted = (now - 10 * DAY_MS if old else now - 3_600_000) + i // 3
        rows.append(
            env.row(
                state=state,
                result=result,
                job_name=f"nightly-{i % 4}" if i % 2 else f"adhoc-{i % 4}",
                job_type="SparkSql" if i % 3 == 0 else "SparkSubmit",
                submitted_ms=submitted,
                finished_ms=0 if state == "RUNNING" else submitted + 1000,
            )
        )
    insert_jobs(env.store, rows)
    return {r["id"]: r for r in rows}, now


def _failed_and_old(row: dict[str, Any], now: int) -> bool:
    return row["result"] == "FAILED" and row["submitted_ms"] < now - 7 * DAY_MS


def test_delete_by_filter_over_5000_jobs(env: Env) -> None:
    rows, now = _big_store(env)
    want = {i for i, r in rows.items() if _failed_and_old(r, now)}
    assert 1000 < len(want) < 5000  # more than one page and one batch, not everything

    dry = env.cli("delete", "--state", "FAILED", "--before", "7d", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"{len(want)} job(s) match --state FAILED, --before 7d" in dry.stdout
    assert "NAME / ID" in dry.stdout and f"and {len(want) - 5} more" in dry.stdout
    assert f"Dry run: would delete {len(want)} job(s); nothing changed." in dry.stdout
    assert env.deleted() == set() and not any("batch-delete" in r for r in env.requests)

    env.requests.clear()
    done = env.cli("delete", "--state", "FAILED", "--before", "7d", "--yes")
    assert done.exit_code == 0, done.output
    assert env.deleted() == want  # exactly the matching ones; every other job remains
    assert f"Deleted {len(want)} job(s); 0 already gone; 0 failed." in done.stdout
    assert "Deleting" in done.stderr and f"{len(want)}/{len(want)}" in done.stderr  # the bar
    batches = [r for r in env.requests if r.endswith("batch-delete")]
    assert len(batches) == -(-len(want) // 1000)  # in batches of at most 1,000
    assert len(audit_rows(env.store, "batch_delete")) == len(batches)

    # The same filter again finds nothing, says so and succeeds.
    again = env.cli("delete", "--state", "FAILED", "--before", "7d", "--yes")
    assert again.exit_code == 0 and "No jobs match --state FAILED, --before 7d" in again.stdout

    # Other filters AND together: recent SparkSql jobs named nightly-*, any state.
    recent = {
        i
        for i, r in rows.items()
        if i not in want
        and r["job_type"] == "SparkSql"
        and r["job_name"].startswith("nightly")
        and r["submitted_ms"] >= now - 2 * 3_600_000
    }
    assert recent
    more = env.cli(
        "delete", "--type", "sparksql", "--name-contains", "NIGHTLY", "--since", "2h", "-y"
    )
    assert more.exit_code == 0, more.output
    assert f"Deleted {len(recent)} job(s)" in more.stdout
    assert env.deleted() == want | recent


def test_results_and_states_map_as_documented(env: Env) -> None:
    ids = {
        kind: insert_job(env.store, env.project, env.cluster, state=kind[0], result=kind[1])
        for kind in [*KINDS, ("SUBMITTED", "UNDEFINED")]
    }
    first = env.cli("delete", "--state", "killed", "--state", "SUCCEEDED", "--dry-run")
    assert "2 job(s) match" in first.stdout
    finished = env.cli("delete", "--state", "FINISHED", "--yes")
    assert "Deleted 2 job(s)" in finished.stdout  # FINISHED: both results
    assert env.deleted() == {ids[("FINISHED", "FAILED")], ids[("FINISHED", "SUCCEEDED")]}
    failed = env.cli("delete", "--state", "FAILED", "--yes")  # every failure left: FAILED/FAILED
    assert "Deleted 1 job(s)" in failed.stdout
    live = env.cli("delete", "--state", "LIVE", "--yes")
    assert "2 job(s) match --state LIVE (2 live, killed first)" in live.stdout
    assert env.deleted() == set(ids.values()) - {ids[("KILLED", "KILLED")]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--state", "BROKEN"], "--state 'BROKEN': one of NEW"),
        (["--before", "7x"], "--before '7x': an age is a whole number and a unit"),
        (["--before", "-7d"], "cannot be negative"),
        (["--since", "tomorrowish"], "--since: cannot read time 'tomorrowish'"),
        (["--since", "1d", "--before", "2d"], "nothing can match"),
        (["--type", "Pig"], "--type 'Pig': one of MapReduce"),
        (["--name-contains", "x" * 65], "at most 64 characters"),
        (["some-id", "--state", "FAILED"], "give job ids or filters (--state FAILED), not both"),
        (["--dry-run"], "no job ids given"),
        (["some-id", "--dry-run", "--yes"], "--dry-run goes with filters"),
    ],
)
def test_bad_filters_are_refused_before_any_request(
    env: Env, args: list[str], message: str
) -> None:
    keep = insert_job(env.store, env.project, env.cluster, state="FAILED")
    result = env.cli("delete", *args, "--yes")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.startswith("Error: ")
    assert env.requests == [] and env.deleted() == set()
    assert raw_job(env.store, keep)["state"] == "FAILED"  # type: ignore[index]


def test_the_prompt_and_yes(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = insert_jobs(env.store, [env.row(state="FAILED") for _ in range(3)])
    refused = env.cli("delete", "--state", "FAILED")  # no terminal, no --yes
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    monkeypatch.setattr(cleanup, "stdin_is_tty", lambda: True)
    declined = env.cli("delete", "--state", "FAILED", answer="n\n")
    assert declined.exit_code == 2, declined.output
    assert "Delete these 3 job(s)?" in declined.stderr and "Nothing deleted." in declined.stderr
    assert env.deleted() == set() and not any("batch-delete" in r for r in env.requests)
    accepted = env.cli("delete", "--state", "FAILED", answer="y\n")
    assert accepted.exit_code == 0 and env.deleted() == set(ids)


def test_selection_is_read_first_and_what_changes_meanwhile_is_counted(env: Env) -> None:
    before = int(time.time() * 1000) - 1000  # the late ones are newer (no tie with the pin)
    ids = insert_jobs(
        env.store,
        [env.row(job_name="sweep", state="FAILED", submitted_ms=before) for _ in range(5)],
    )
    late: list[str] = []

    def submit_during_listing(call: int) -> None:  # after the pin, before the pages
        if call == 2:
            late.append(insert_job(env.store, env.project, env.cluster, job_name="sweep"))

    def delete_one_first(call: int) -> None:  # someone else deletes a selected job
        if call == 1:
            with env.store.write() as conn:
                conn.execute(jobs.update().where(jobs.c.id == ids[0]).values(deleted_ms=1))
            late.append(insert_job(env.store, env.project, env.cluster, job_name="sweep"))

    env.hooks = {"list": submit_during_listing, "batch_delete": delete_one_first}
    result = env.cli("delete", "--name", "sweep", "--yes")
    assert result.exit_code == 0, result.output
    assert "5 job(s) match" in result.stdout
    assert "Deleted 4 job(s); 1 already gone; 0 failed." in result.stdout
    assert env.deleted() == set(ids)
    for job_id in late:  # submitted after the selection was pinned: untouched
        assert raw_job(env.store, job_id)["deleted_ms"] == 0  # type: ignore[index]


def test_a_failed_batch_is_reported_and_the_others_go_on(env: Env) -> None:
    ids = insert_jobs(env.store, [env.row(state="FAILED") for _ in range(2100)])

    def busy_then_broken(call: int) -> None:
        if call == 1:  # a rate limit is waited out
            raise client.ApiError(429, "0202", "Too many requests.")
        if call == 3:
            raise client.ApiError(500, "0161", "Failed to delete jobs in batches.")

    env.hooks = {"batch_delete": busy_then_broken}
    result = env.cli("delete", "--state", "FAILED", "--yes")
    assert result.exit_code == 1, result.output
    assert "Deleted 1100 job(s); 0 already gone; 1000 failed." in result.stdout
    assert "Failed: 1000 job(s) (" in result.stderr
    assert "Error 0161: Failed to delete jobs in batches. (HTTP 500)" in result.stderr
    assert len(env.deleted()) == 1100 and env.deleted() < set(ids)

    def interrupted(call: int) -> None:
        raise KeyboardInterrupt

    env.hooks = {"batch_delete": interrupted}
    stopped = env.cli("delete", "--state", "FAILED", "--yes")
    assert stopped.exit_code == 130, stopped.output
    assert "Deleted 0 job(s); 0 already gone; 0 failed." in stopped.stdout
    assert "Interrupted: 1000 job(s) not done or not confirmed." in stopped.stderr
    assert len(env.deleted()) == 1100


def test_kill_by_filter(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    queued = insert_jobs(env.store, [env.row(job_name="etl", state="SUBMITTED") for _ in range(4)])
    running = insert_jobs(env.store, [env.row(job_name="etl", state="RUNNING") for _ in range(2)])
    ended = insert_job(env.store, env.project, env.cluster, job_name="etl", state="FINISHED")
    other = insert_job(env.store, env.project, env.cluster, job_name="other", state="SUBMITTED")

    wrong = env.cli("kill", "--name", "etl", "--state", "FINISHED", "--yes")
    assert wrong.exit_code == 2 and "kill selects only live jobs" in wrong.stderr
    dry = env.cli("kill", "--name", "etl", "--dry-run")
    assert dry.exit_code == 0 and "Dry run: would kill 6 job(s); nothing changed." in dry.stdout
    assert [raw_job(env.store, i)["state"] for i in queued] == ["SUBMITTED"] * 4  # type: ignore[index]
    monkeypatch.setattr(cleanup, "stdin_is_tty", lambda: True)
    declined = env.cli("kill", "--name", "etl", answer="n\n")
    assert declined.exit_code == 2 and "Nothing killed." in declined.stderr
    assert not any(r.endswith("kill") for r in env.requests)

    def one_ends_meanwhile(call: int) -> None:
        if call == 1:
            transition_path(env.store, running[1], "FINISHED", result="SUCCEEDED")

    env.hooks = {"kill": one_ends_meanwhile}
    result = env.cli("kill", "--name", "etl", "--yes")
    assert result.exit_code == 0, result.output
    assert "6 job(s) match --name etl (6 live)" in result.stdout
    summary = "Kill requested for 5 job(s); 1 already ended; 0 already gone; 0 failed."
    assert summary in result.stdout and "Killing" in result.stderr and "6/6" in result.stderr
    states = {i: raw_job(env.store, i) for i in [*queued, *running, ended, other]}
    assert all(states[i]["state"] == "KILLED" for i in queued)  # type: ignore[index]
    assert states[running[0]]["kill_requested_ms"] > 0  # type: ignore[index]
    assert states[running[1]]["state"] == "FINISHED"  # type: ignore[index]
    assert states[ended]["state"] == "FINISHED" and states[other]["state"] == "SUBMITTED"  # type: ignore[index]
    only_running = env.cli("kill", "--state", "running", "--name", "etl", "--yes")
    assert "1 job(s) match" in only_running.stdout  # the flagged one is RUNNING still


def test_kill_and_delete_by_id_still_work(env: Env) -> None:
    a, b = (insert_job(env.store, env.project, env.cluster) for _ in range(2))
    killed = env.cli("kill", a)
    assert killed.exit_code == 0 and f"Kill requested for job {a}" in killed.stdout
    gone = env.cli("delete", a, b, "--yes")
    assert gone.exit_code == 0 and "Deleted 2 job(s)." in gone.stdout
    assert env.deleted() == {a, b}


def test_filter_parsing_units() -> None:
    now = datetime.fromisoformat("2026-12-07T10:00:00+00:00")
    at = int(now.timestamp() * 1000)
    assert parse_before("7d", now) == at - 7 * 86_400_000 - 1  # strictly before
    assert parse_before("90s", now) == at - 90_000 - 1
    assert parse_before("2026-12-01T00:00Z", now) == at - 6 * 86_400_000 - 10 * 3_600_000 - 1
    f = build_filters(
        states=["failed", "RUNNING"],
        before=None,
        since=None,
        name=None,
        name_contains=None,
        job_type=None,
    )
    assert f is not None and f.queries() == [{"job_result": "FAILED"}, {"job_state": "RUNNING"}]
    k = build_filters(
        states=None, before=None, since=None, name="x", name_contains=None, job_type=None, kill=True
    )
    assert k is not None and [q["job_state"] for q in k.queries()] == [
        "NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"
    ]  # fmt: skip
    assert (
        build_filters(
            states=None, before=None, since=None, name=None, name_contains=None, job_type=None
        )
        is None
    )
    with pytest.raises(UsageError, match="w"):
        parse_before("3y", now)
