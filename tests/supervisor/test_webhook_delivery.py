"""Webhook deliveries end to end: job transitions (``store/jobs.transition``, as the supervisor
makes them) queue deliveries; the supervisor's webhook part (``supervisor/webhooks.py``) sends
them to a real HTTP receiver on 127.0.0.1 (tests/support_webhooks.py).

What must hold: every event of the store reaches the receiver, signed; each job's events
arrive in order; a repeat carries the same ``webhook-id`` and body; a failing receiver gets
retries with a visible backoff and everything once it answers; one that never answers ends
dead-lettered; the secret shows up nowhere but in the creation's answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jobrows import insert_job
from sqlalchemy import select
from support_webhooks import Received, Receiver, check_signature, stored_events
from typer.testing import CliRunner

from mrs_jobs.domain.states import JobState
from mrs_jobs.secretbox import SecretBox, load_secret_box
from mrs_jobs.services.projects import ProjectService
from mrs_jobs.services.webhooks import WebhookAdmin
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import webhooks as wh_store
from mrs_jobs.store.tables import webhook_deliveries
from mrs_jobs.supervisor.webhooks import COUNTS, WebhookDispatcher

P, C = "p1", "c1"
LIFECYCLE_EVENTS = [
    "job.accepted",
    "job.started",
    "job.retrying",
    "job.succeeded",
    "job.failed",
    "job.killed",
]


@dataclass
class Ctx:
    store: Store
    settings: Settings
    secrets: SecretBox


def _ctx(store: Store, tmp_path: Path, **overrides: object) -> Ctx:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=store.url,
        webhook_allow_private=True,
        **overrides,  # type: ignore[arg-type]
    )
    ProjectService(store).create_project("webhooks", P)
    return Ctx(store, settings, load_secret_box(settings))


class Running:
    """The webhook part stepped as the supervisor's loop does (woken by finished attempts)."""

    def __init__(self, ctx: Ctx) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.part = WebhookDispatcher(ctx, self._wake.set)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self.part.step()
            self._wake.wait(0.05)

    def __enter__(self) -> Running:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.part.close()


def _move(store: Store, job_id: str, target: JobState, **kw: object) -> None:
    with store.write() as conn:
        assert job_store.transition(conn, job_id, target, **kw) is not None  # type: ignore[arg-type]


def _lifecycle(store: Store, job_id: str, n: int) -> None:
    """One of four endings: succeeded, failed, killed, or a retry then succeeded."""
    _move(store, job_id, JobState.ACCEPTED)
    _move(store, job_id, JobState.RUNNING)
    if n % 4 == 3:
        _move(store, job_id, JobState.SUBMITTED, only_from=[JobState.RUNNING], reason="retry")
        _move(store, job_id, JobState.ACCEPTED)
        _move(store, job_id, JobState.RUNNING)
    ending = {0: ("FINISHED", "SUCCEEDED"), 1: ("FINISHED", "FAILED"), 2: ("KILLED", "KILLED")}
    state, result = ending.get(n % 4, ("FINISHED", "SUCCEEDED"))
    _move(store, job_id, JobState(state), values={"result": result, "finished_ms": 1})


def _wait_settled(store: Store, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.read() as conn:
            if wh_store.oldest_undelivered_ms(conn) is None:
                return
        time.sleep(0.2)
    raise AssertionError(f"deliveries still pending after {timeout} s")


def _store_events(store: Store, wanted: set[str]) -> dict[tuple[str, str], str]:
    """(job id, event id) -> type of every event of the project the subscription wants."""
    return stored_events(store, P, wanted)


def _check_received(got: list[Received], secret: str, expected: dict[tuple[str, str], str]) -> int:
    """Every expected event arrived signed, in order per job, repeats only as exact copies;
    returns how many requests were repeats."""
    assert got, "nothing arrived"
    bad = [r.msg_id for r in got if not check_signature(secret, r)]
    assert bad == [], "signatures that do not verify"
    first: dict[str, Received] = {}
    repeats = 0
    for r in sorted(got, key=lambda x: x.at):
        if r.msg_id in first:
            repeats += 1
            assert r.body == first[r.msg_id].body, "a repeat changed the body"
            continue
        first[r.msg_id] = r
    arrived: dict[tuple[str, str], str] = {}
    per_job: dict[str, list[int]] = defaultdict(list)
    for r in first.values():
        data = r.event["data"]
        key = (data["job_id"], data["event_id"])
        assert key not in arrived, f"one event under two webhook-ids: {key}"
        arrived[key] = r.event["type"]
        per_job[data["job_id"]].append(int(data["event_id"]))
    assert arrived == expected, "the receiver's events differ from the store's"
    out_of_order = [j for j, seqs in per_job.items() if seqs != sorted(seqs)]
    assert out_of_order == [], "jobs whose events arrived out of order"
    return repeats


def _first_arrival_lags_ms(got: list[Received]) -> list[float]:
    first: dict[str, Received] = {}
    for r in sorted(got, key=lambda x: x.at):
        first.setdefault(r.msg_id, r)
    return [r.at * 1000 - r.event["data"]["at"] for r in first.values()]


@pytest.fixture
def secret_free_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def test_2000_jobs_every_event_delivered_signed_in_order(
    sqlite_store: Store, tmp_path: Path, secret_free_logs: pytest.LogCaptureFixture
) -> None:
    """2,000 jobs through their lifecycles while the part sends; the receiver fails some first
    attempts (500) and answers some too late (a timeout: the attempt is repeated, and the
    receiver sees the same webhook-id twice)."""
    store = sqlite_store
    ctx = _ctx(store, tmp_path, webhook_retry_base_seconds=0.2, webhook_timeout_seconds=1.0)
    admin = WebhookAdmin(store, ctx.secrets, allow_private=True)
    seen: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    def answer(r: Received) -> tuple[int, float]:
        with lock:
            seen[r.msg_id] += 1
            n = len(seen)
            first = seen[r.msg_id] == 1
        if first and n % 97 == 0:
            return 200, 1.5  # too late: the sender times out and tries again
        if first and n % 41 == 0:
            return 500, 0.0
        return 200, 0.0

    with Receiver(answer) as rx:
        created = admin.create(P, rx.url, LIFECYCLE_EVENTS)
        ids = [insert_job(store, P, C, state="SUBMITTED") for _ in range(2000)]
        started = time.monotonic()
        with Running(ctx):
            for n, job_id in enumerate(ids):
                _lifecycle(store, job_id, n)
            changed = time.monotonic() - started
            _wait_settled(store, 240)
        took = time.monotonic() - started
        got = rx.snapshot()
    expected = _store_events(store, set(LIFECYCLE_EVENTS))
    assert len(expected) == 2000 * 3 + 500 * 3
    repeats = _check_received(got, created.secret, expected)
    assert repeats > 0, "the late answers should have caused repeats"
    with store.read() as conn:
        states = conn.execute(select(webhook_deliveries.c.state).distinct()).scalars().all()
    assert states == ["delivered"]
    lag = sorted(_first_arrival_lags_ms(got))
    print(
        f"\n{len(expected)} events, {len(got)} requests ({repeats} repeats); "
        f"transitions {changed:.1f} s, all delivered after {took:.1f} s; change -> received "
        f"median {lag[len(lag) // 2]:.0f} ms, p99 {lag[len(lag) * 99 // 100]:.0f} ms"
    )
    assert created.secret not in secret_free_logs.text
    for wh in admin.list():
        assert created.secret not in repr(wh)


def test_a_receiver_failing_then_answering_gets_everything_with_backoff(
    sqlite_store: Store, tmp_path: Path
) -> None:
    """500 for the first 8 s (scaled down from the issue's 2 minutes: the retry base is 0.5 s;
    the next test keeps the 2 minutes), then 200: all arrive, each attempt is logged, and the
    gaps between a delivery's attempts grow."""
    store = sqlite_store
    ctx = _ctx(store, tmp_path, webhook_retry_base_seconds=0.5)
    _fail_then_answer(ctx, outage_s=8.0, jobs=20, settle_s=60)


@pytest.mark.slow
def test_a_two_minute_outage_loses_nothing(sqlite_store: Store, tmp_path: Path) -> None:
    """The issue's case as stated: 500 for 2 minutes, then 200 (retry base 1 s, waits capped
    at 15 s, so everything arrives within ~20 s of the receiver's recovery)."""
    store = sqlite_store
    ctx = _ctx(store, tmp_path, webhook_retry_base_seconds=1.0, webhook_retry_max_seconds=15.0)
    _fail_then_answer(ctx, outage_s=120.0, jobs=30, settle_s=60)


def _fail_then_answer(ctx: Ctx, *, outage_s: float, jobs: int, settle_s: float) -> None:
    store = ctx.store
    admin = WebhookAdmin(store, ctx.secrets, allow_private=True)
    begin = time.time()
    with Receiver(lambda r: (500 if r.at - begin < outage_s else 200, 0.0)) as rx:
        created = admin.create(P, rx.url, LIFECYCLE_EVENTS)
        ids = [insert_job(store, P, C, state="SUBMITTED") for _ in range(jobs)]
        before = dict(COUNTS.by_outcome)
        with Running(ctx):
            for n, job_id in enumerate(ids):
                _lifecycle(store, job_id, n)
            time.sleep(max(0.0, outage_s - (time.time() - begin)))
            _wait_settled(store, settle_s)
        got = rx.snapshot()
    ok = [r for r in got if r.at - begin >= outage_s]
    _check_received(ok, created.secret, _store_events(store, set(LIFECYCLE_EVENTS)))
    assert COUNTS.by_outcome["retried"] > before["retried"]
    with store.read() as conn:
        rows = wh_store.list_deliveries(conn, limit=10_000)
    assert rows and all(r.state == "delivered" for r in rows)
    first = min(rows, key=lambda r: r.id)  # the oldest waited through the whole outage
    assert len(first.log) >= 5
    assert all(a.status == 500 and a.error == "HTTP 500" for a in first.log[:-1])
    assert first.log[-1].status == 200 and first.log[-1].error is None
    gaps = [b.at_ms - a.at_ms for a, b in zip(first.log, first.log[1:], strict=False)][:4]
    base_ms = ctx.settings.webhook_retry_base_seconds * 1000
    for n, gap in enumerate(gaps):  # base × 2^n, ±20 % jitter (and a pass's latency)
        assert 0.8 * base_ms * 2**n <= gap <= 1.2 * base_ms * 2**n + 500, gaps
    assert gaps == sorted(gaps)


def test_a_receiver_that_never_answers_ends_dead_lettered(
    sqlite_store: Store, tmp_path: Path
) -> None:
    store = sqlite_store
    ctx = _ctx(
        store,
        tmp_path,
        webhook_retry_base_seconds=0.2,
        webhook_max_age_hours=3 / 3600,  # 3 s
        webhook_timeout_seconds=0.5,
    )
    admin = WebhookAdmin(store, ctx.secrets, allow_private=True)
    with Receiver(lambda r: (200, 2.0)) as rx:  # answers after the timeout: never in time
        admin.create(P, rx.url, ["job.accepted", "job.started"])
        job = insert_job(store, P, C, state="SUBMITTED")
        with Running(ctx):
            _move(store, job, JobState.ACCEPTED)
            _move(store, job, JobState.RUNNING)
            _wait_settled(store, 30)
            with store.read() as conn:
                dead = wh_store.list_deliveries(conn, state="dead")
            tries = len(rx.snapshot())
            time.sleep(1.5)  # and nothing is tried after that
            assert len(rx.snapshot()) == tries
    assert sorted(r.event_type for r in dead) == ["job.accepted", "job.started"]
    for row in dead:
        assert row.finished_ms is not None
        # within the max age (3 s) and an attempt or two (the second waited for the first)
        assert row.finished_ms - row.created_ms <= 6000
        assert len(row.log) == row.attempts >= 1
        assert all(a.status is None and a.error == "timed out" for a in row.log)
    accepted = next(r for r in dead if r.event_type == "job.accepted")
    assert accepted.attempts >= 3  # retried (0.2, 0.4, 0.8 s ...) until the max age


def test_private_targets_are_refused_unless_allowed(sqlite_store: Store, tmp_path: Path) -> None:
    from mrs_jobs.errors import InvalidParameter

    ctx = _ctx(sqlite_store, tmp_path)
    strict = WebhookAdmin(sqlite_store, ctx.secrets, allow_private=False)
    for url in ("http://127.0.0.1:8080/x", "http://localhost/x", "http://169.254.169.254/"):
        with pytest.raises(InvalidParameter, match="refused"):
            strict.create(P, url, ["job.failed"])
    with pytest.raises(InvalidParameter):
        strict.create(P, "ftp://example.com/", ["job.failed"])
    assert strict.list() == []
    # a target that became private after creation is refused at send time, not called
    ctx.settings = ctx.settings.model_copy(update={"webhook_allow_private": False})
    with Receiver() as rx:
        WebhookAdmin(sqlite_store, ctx.secrets, allow_private=True).create(
            P, rx.url, ["job.accepted"]
        )
        job = insert_job(sqlite_store, P, C, state="SUBMITTED")
        _move(sqlite_store, job, JobState.ACCEPTED)
        part = WebhookDispatcher(ctx)
        assert part.dispatch() == 1
        part.close()
        assert rx.snapshot() == []
    with sqlite_store.read() as conn:
        (row,) = wh_store.list_deliveries(conn)
    assert row.state == "pending" and "127.0.0.1 is a loopback address" in (row.last_error or "")


def test_over_duration_is_sent_once(sqlite_store: Store, tmp_path: Path) -> None:
    store = sqlite_store
    ctx = _ctx(store, tmp_path)
    admin = WebhookAdmin(store, ctx.secrets, allow_private=True)
    with Receiver() as rx:
        admin.create(P, rx.url, ["job.succeeded"], over_duration_s=1)
        long = insert_job(store, P, C, state="RUNNING", started_ms=job_store.now_ms() - 5000)
        insert_job(store, P, C, state="RUNNING", started_ms=job_store.now_ms() + 60_000)
        part = WebhookDispatcher(ctx)
        for _ in range(3):
            part.queue_over_duration(job_store.now_ms())
        deadline = time.monotonic() + 10
        while not rx.snapshot() and time.monotonic() < deadline:
            part.dispatch()
            time.sleep(0.05)
        part.close()
        (got,) = rx.snapshot()
    assert got.event["type"] == "job.over_duration"
    assert got.event["data"]["job_id"] == long
    assert got.event["data"]["running_s"] >= 5


def test_admin_cli_shows_the_secret_once_and_lists_attempts(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from mrs_jobs.cli.main import app

    data = tmp_path / "data"
    monkeypatch.setenv("MRS_JOBS_DATA_DIR", str(data))
    monkeypatch.setenv("MRS_JOBS_DATABASE_URL", sqlite_store.url)
    monkeypatch.setenv("MRS_JOBS_WEBHOOK_ALLOW_PRIVATE", "true")
    ctx = _ctx(sqlite_store, tmp_path)
    cli = CliRunner()
    with Receiver(lambda r: (503, 0.0)) as rx:
        out = cli.invoke(
            app,
            ["admin", "create-webhook", P, "--url", rx.url, "--events", "job.accepted"],
        )
        assert out.exit_code == 0, out.output
        created = json.loads(out.output)
        secret = created["secret"]
        assert secret.startswith("whsec_")
        job = insert_job(sqlite_store, P, C, state="SUBMITTED")
        _move(sqlite_store, job, JobState.ACCEPTED)
        part = WebhookDispatcher(ctx)
        part.dispatch()
        part.close()
        assert check_signature(secret, rx.snapshot()[0])
    listed = cli.invoke(app, ["admin", "list-webhooks", P, "--json"])
    deliveries = cli.invoke(app, ["admin", "list-deliveries", "--webhook", created["id"]])
    disabled = cli.invoke(app, ["admin", "disable-webhook", created["id"]])
    audit = cli.invoke(app, ["admin", "audit", "--project-id", P])
    for out in (listed, deliveries, disabled, audit):
        assert out.exit_code == 0, out.output
        assert secret not in out.output
        assert secret.removeprefix("whsec_") not in out.output
    assert json.loads(listed.output)["url"] == rx.url
    (row,) = [json.loads(line) for line in deliveries.output.splitlines()]
    assert row["state"] == "pending" and row["attempts"] == 1
    (attempt,) = row["attempt_log"]
    assert (attempt["status"], attempt["error"]) == (503, "HTTP 503")
    assert attempt["at"] != "-"
    actions = [json.loads(line)["action"] for line in audit.output.splitlines()]
    assert actions[:2] == ["webhook_disable", "webhook_create"]
    assert (
        json.loads(cli.invoke(app, ["admin", "list-webhooks", "--json"]).output)["enabled"] is False
    )
    gone = cli.invoke(app, ["admin", "delete-webhook", created["id"]])
    assert gone.exit_code == 0
    assert cli.invoke(app, ["admin", "list-webhooks"]).output.splitlines()[1:] == []


def test_two_supervisors_on_postgresql_send_each_delivery_once(
    store: Store, tmp_path: Path
) -> None:
    """Two webhook parts claim from one PostgreSQL (``SKIP LOCKED``): with a receiver that
    always answers, every event arrives exactly once, in order per job."""
    if store.url.startswith("sqlite"):
        pytest.skip("several supervisors share a PostgreSQL store, not a SQLite file")
    ctx = _ctx(store, tmp_path, webhook_workers=4)
    admin = WebhookAdmin(store, ctx.secrets, allow_private=True)
    with Receiver() as rx:
        created = admin.create(P, rx.url, LIFECYCLE_EVENTS)
        ids = [insert_job(store, P, C, state="SUBMITTED") for _ in range(300)]
        with Running(ctx), Running(Ctx(store, ctx.settings, ctx.secrets)):
            for n, job_id in enumerate(ids):
                _lifecycle(store, job_id, n)
            _wait_settled(store, 120)
        got = rx.snapshot()
    expected = _store_events(store, set(LIFECYCLE_EVENTS))
    assert _check_received(got, created.secret, expected) == 0


def test_a_slow_receiver_does_not_hold_up_the_pass(sqlite_store: Store, tmp_path: Path) -> None:
    """A pass only claims: the attempts run on the pool, at most ``workers`` at once and
    ``2 × workers`` claimed, while the pass returns at once."""
    store = sqlite_store
    ctx = _ctx(store, tmp_path, webhook_workers=2, webhook_timeout_seconds=5.0)
    admin = WebhookAdmin(store, ctx.secrets, allow_private=True)
    with Receiver(lambda r: (200, 1.5)) as rx:
        admin.create(P, rx.url, ["job.accepted"])
        for _ in range(10):
            _move(store, insert_job(store, P, C, state="SUBMITTED"), JobState.ACCEPTED)
        part = WebhookDispatcher(ctx)
        started = time.monotonic()
        assert part.dispatch() == 4
        assert part.dispatch() == 0  # the pool is full: nothing more is claimed
        part.step()
        assert time.monotonic() - started < 0.5
        time.sleep(0.5)
        assert len(rx.snapshot()) == 2  # two workers
        part.close()  # waits for the attempts in flight; starts none of those queued
    with store.read() as conn:
        states = [r.state for r in wh_store.list_deliveries(conn)]
    assert sorted(states) == ["delivered"] * 2 + ["pending"] * 8


def test_a_checked_http_name_is_called_at_the_address_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plain http goes to the address the check resolved (the name only in ``Host``): a name
    that resolves elsewhere a moment later (DNS rebinding) cannot redirect the attempt."""
    import httpx

    from mrs_jobs.domain.webhooks import new_secret
    from mrs_jobs.supervisor import webhook_send

    checked: list[str] = []
    monkeypatch.setattr(webhook_send, "_addresses", lambda host, port: ["127.0.0.1"])
    monkeypatch.setattr(webhook_send, "refused_address", lambda a: checked.append(a))
    with Receiver() as rx, httpx.Client(timeout=5) as client:
        port = rx.server.server_address[1]
        url = f"http://hooks.invalid:{port}/hook"  # .invalid never resolves (RFC 6761)
        res = webhook_send.send(client, url, new_secret(), "msg_x", "{}", allow_private=False)
        (got,) = rx.snapshot()
    assert res.ok, res
    assert checked == ["127.0.0.1"]
    assert got.host == f"hooks.invalid:{port}"
    assert webhook_send.pinned("http://h:8080/a?b=1", "2001:db8::1") == (
        "http://[2001:db8::1]:8080/a?b=1",
        {"host": "h:8080"},
    )


def test_finished_deliveries_are_removed_after_the_retention(
    sqlite_store: Store, tmp_path: Path
) -> None:
    store = sqlite_store
    ctx = _ctx(store, tmp_path, webhook_retention_days=7)
    with Receiver() as rx:
        WebhookAdmin(store, ctx.secrets, allow_private=True).create(P, rx.url, ["job.accepted"])
        _move(store, insert_job(store, P, C, state="SUBMITTED"), JobState.ACCEPTED)
        with Running(ctx):
            _wait_settled(store, 10)
    part = WebhookDispatcher(ctx)
    day = 86_400_000
    assert part.cleanup(job_store.now_ms() + 6 * day) is False
    with store.read() as conn:
        assert len(wh_store.list_deliveries(conn)) == 1
    part.cleanup(job_store.now_ms() + 7 * day + 1000)
    with store.read() as conn:
        assert wh_store.list_deliveries(conn) == []
