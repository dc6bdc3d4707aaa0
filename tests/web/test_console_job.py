"""The console shows what happened to a job: its reason, the log that has it, its history, how
long it ran, times with their zone, a page for a job that is not there; the name search finds a
part of a name, and the Actions column stays in view in an 800 px window.

The same server and browser as ``test_console.py`` (``conftest.py``). The failed job is real: a
DistCp (a Python process of ours, no JVM) from a source that does not exist, on the default
cluster. Its stdout has lines too, so a console that opened on stdout or on the longer log
would not show the reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from console_support import Env, open_page, row, rows, shot, sign_in

try:
    from playwright.sync_api import Browser, Page, Route, expect
except ImportError:  # pragma: no cover - reported by the browser fixture
    pass

HOSTILE = "<img src=x onerror=window.__xss=1>"  # in the failed job's reason, as text only


def fmt_duration(ms: int) -> str:
    """The console's duration text (format.js fmtDuration), for durations under a day."""
    s = ms // 1000
    if s <= 0:
        return "<1s" if ms > 0 else "—"
    h, m, s = s // 3600, s % 3600 // 60, s % 60
    return f"{h}h {m}m {s}s" if h else f"{m}m {s}s" if m else f"{s}s"


def seconds_of(text: str) -> int:
    parts = dict((unit, int(n)) for n, unit in re.findall(r"(\d+)([hms])", text))
    return parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


@pytest.fixture(scope="module")
def failed(env: Env) -> dict[str, Any]:
    """A real job that failed, as the API shows it (with its events and log sizes)."""
    api = env.api(env.default_cluster)
    source = env.tmp / HOSTILE / "gone"
    job_id = api.submit(
        "copy-gone", job_type="DistCp", arguments=[str(source), str(env.tmp / "copies")]
    )
    deadline = time.monotonic() + 120
    while (state := api.state(job_id)) not in ("FINISHED", "FAILED", "KILLED"):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    job = api.show(job_id).json()["job_detail"]
    assert job["job_result"] == "FAILED", job
    assert "source not found" in job["diagnostics"] and HOSTILE in job["diagnostics"], job
    sizes = {}
    for kind in ("stdout", "stderr"):
        r = api.http.get(f"{api.base}/{job_id}/log", params={"type": kind})
        sizes[kind] = (int(r.headers["X-Log-Size"]), r.text)
    assert sizes["stdout"][0] > 0, "stdout has lines: opening on stdout would miss the reason"
    assert "source not found" not in sizes["stdout"][1]
    events = api.http.get(f"{api.base}/{job_id}/events").json()["job_events"]
    return {"job": job, "events": events, "sizes": sizes}


@pytest.fixture
def narrow(browser: Browser, env: Env) -> Iterator[Page]:
    with open_page(browser, env, viewport={"width": 800, "height": 900}) as p:
        yield p


@pytest.fixture
def in_kolkata(browser: Browser, env: Env) -> Iterator[Page]:
    with open_page(browser, env, timezone_id="Asia/Kolkata") as p:
        yield p


@pytest.mark.browser
def test_a_failed_job_shows_its_reason_and_opens_on_the_log_that_has_it(
    page: Page, env: Env, failed: dict[str, Any], tmp_path
) -> None:
    job = failed["job"]
    sign_in(page, env, env.default_cluster)
    row(page, "copy-gone").locator("a.job-name").click()
    reason = page.locator("#detail-reason")
    expect(reason).to_be_visible()
    expect(page.locator("#detail-reason-title")).to_have_text("Why it failed")
    expect(page.locator("#detail-reason-text")).to_have_text(job["diagnostics"])
    # At the top: above the fields, the log and everything else of the job.
    top = reason.bounding_box()
    assert top and top["y"] < page.locator("#detail-fields").bounding_box()["y"]
    assert page.evaluate("window.__xss") is None
    assert page.locator("#detail-view img").count() == 0  # the markup stayed text
    # The log that has the reason is the one shown.
    expect(page.locator("#log-stderr")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#log-stdout")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#log")).to_contain_text("source not found")
    shot(page, tmp_path, "failed-job")
    # The other stream is one click away, and a reader's choice is kept.
    page.click("#log-stdout")
    expect(page.locator("#log")).to_contain_text(failed["sizes"]["stdout"][1].strip()[:30])


@pytest.mark.browser
def test_the_history_link_shows_the_events(
    page: Page, env: Env, failed: dict[str, Any], tmp_path
) -> None:
    events = failed["events"]
    assert len(events) >= 5 and events[0]["from_state"] is None
    sign_in(page, env, env.default_cluster)
    page.goto(f"{env.endpoint}/console/#/jobs/{failed['job']['job_id']}")
    expect(page.locator("#history-card")).to_be_hidden()
    page.click("#detail-history")
    expect(page.locator("#history-card")).to_be_visible()
    expect(page.locator("#history-table th")).to_have_text(
        ["Time", "Change", "Reason", "Caused by"]
    )
    trs = page.locator("#history-body tr")
    expect(trs).to_have_count(len(events))
    for i, e in enumerate(events):
        cells = trs.nth(i).locator("td")
        change = f"{e['from_state']} → {e['to_state']}" if e["from_state"] else f"→ {e['to_state']}"
        expect(cells.nth(1)).to_have_text(change)
        expect(cells.nth(2)).to_have_text(e["reason"] or "—")
        expect(cells.nth(3)).to_have_text(e["caused_by"] or "—")
        expect(cells.nth(0)).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"))
    expect(trs.first.locator("td").nth(3)).to_contain_text("by alice")
    expect(page.locator("#history-status")).to_have_text(f"{len(events)} changes")
    shot(page, tmp_path, "history")
    page.click("#detail-history")  # and it folds away
    expect(page.locator("#history-card")).to_be_hidden()


@pytest.mark.browser
def test_duration_column_shows_how_long_a_job_ran_and_counts_up(
    page: Page, env: Env, failed: dict[str, Any]
) -> None:
    job = failed["job"]
    assert job["elapsed_time"] > 0
    sign_in(page, env, env.default_cluster)
    headers = page.locator("#jobs-table thead th")
    expect(headers.nth(8)).to_have_text("Duration")
    cell = row(page, "copy-gone").locator("td.col-duration")
    expect(cell).to_have_text(fmt_duration(job["elapsed_time"]))

    # A running job: the API's elapsed time, counted up on the page between answers. A queued
    # cluster's job is shown as running by rewriting the list's answer.
    cluster = env.queued_cluster("duration")
    api = env.api(cluster)
    api.submit("runs-long")
    started = int(time.time() * 1000) - 65_000

    def as_running(route: Route) -> None:
        data = api.http.get(route.request.url).json()
        now = int(time.time() * 1000)  # as the API answers: now - started while RUNNING
        for j in data["job_list"]:
            j.update(job_state="RUNNING", started_time=started, elapsed_time=now - started)
        route.fulfill(status=202, json=data)

    page.route(re.compile(r"/job-executions\?"), as_running)
    page.click("#sign-out")
    sign_in(page, env, cluster)
    running = row(page, "runs-long").locator("td.col-duration")
    expect(running).to_have_text(re.compile(r"^1m \d+s$"))
    first = seconds_of(running.inner_text())
    assert 65 <= first <= 90, first  # the sign-in in between takes a few seconds
    expect(running).not_to_have_text(running.inner_text(), timeout=3_000)
    page.wait_for_timeout(2_000)
    assert seconds_of(running.inner_text()) >= first + 2
    page.unroute(re.compile(r"/job-executions\?"))


@pytest.mark.browser
def test_name_search_finds_a_middle_part_of_a_name(page: Page, env: Env) -> None:
    cluster = env.queued_cluster("search")
    api = env.api(cluster)
    for name in ("alpha-nightly-etl", "beta-report", "gamma-ETL-check", "etl_x"):
        api.submit(name)
    sign_in(page, env, cluster)
    expect(rows(page)).to_have_count(4)
    page.fill("#f-search", "ghtly-et")
    page.press("#f-search", "Enter")
    expect(rows(page)).to_have_count(1)
    expect(row(page, "alpha-nightly-etl")).to_have_count(1)
    page.fill("#f-search", "etl")  # any case
    page.press("#f-search", "Enter")
    expect(rows(page)).to_have_count(3)
    expect(row(page, "beta-report")).to_have_count(0)
    page.fill("#f-search", "l_x")  # "_" is itself, not any character
    page.press("#f-search", "Enter")
    expect(rows(page)).to_have_count(1)
    expect(row(page, "etl_x")).to_have_count(1)
    page.fill("#f-search", "epor")
    page.press("#f-search", "Enter")
    expect(rows(page)).to_have_count(1)
    expect(row(page, "beta-report")).to_have_count(1)


@pytest.mark.browser
def test_a_deleted_or_unknown_job_has_a_not_found_page(page: Page, env: Env, tmp_path) -> None:
    cluster = env.queued_cluster("notfound")
    api = env.api(cluster)
    job = api.submit("goes-away")
    sign_in(page, env, cluster)
    row(page, "goes-away").locator("a.job-name").click()
    expect(page.locator("#detail-title")).to_have_text("goes-away")

    # Deleted elsewhere while shown: the next refresh of the live job says it is gone.
    r = api.http.post(f"{api.base}/batch-delete", json={"job_id_list": [job]})
    assert r.status_code == 202, r.text
    gone = page.locator("#notfound-view")
    expect(gone).to_be_visible()
    expect(page.locator("#notfound-view h1")).to_have_text("Job not found")
    expect(page.locator("#notfound-id")).to_have_text(job)
    expect(page.locator("#detail-view")).to_be_hidden()
    expect(page.locator("#banner")).to_be_hidden()  # a page, not an error blob
    assert page.title().startswith("Job not found")
    shot(page, tmp_path, "not-found")

    page.reload()  # and when opened again
    expect(gone).to_be_visible()
    expect(page.locator("#notfound-id")).to_have_text(job)
    page.click("#notfound-back")
    expect(page.locator("#jobs-view")).to_be_visible()
    expect(gone).to_be_hidden()

    unknown = "00000000-0000-4000-8000-000000000000"
    page.goto(f"{env.endpoint}/console/#/jobs/{unknown}")
    expect(gone).to_be_visible()
    expect(page.locator("#notfound-id")).to_have_text(unknown)
    expect(page.locator("#banner")).to_be_hidden()


@pytest.mark.browser
def test_the_actions_column_stays_visible_at_800_px(narrow: Page, env: Env, tmp_path) -> None:
    page = narrow
    cluster = env.queued_cluster("narrow")
    api = env.api(cluster)
    long_name = "a-very-long-job-name-" + "x" * 43
    assert len(long_name) == 64
    api.submit(long_name)
    killed = api.submit("short")
    api.kill(killed)
    api.wait_state(killed, "KILLED")
    sign_in(page, env, cluster)
    expect(rows(page)).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 800, "no page-wide scroll"
    shot(page, tmp_path, "jobs-800px")
    targets = [page.locator("#jobs-table th.col-actions")]
    for name in (long_name, "short"):
        targets += [row(page, name).locator(".row-kill"), row(page, name).locator(".row-delete")]
    for target in targets:
        box = target.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= 800, box
        # Nothing covers it: the point at its middle is the control itself.
        hit = target.evaluate(
            "(el, [x, y]) => el.contains(document.elementFromPoint(x, y))",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert hit, box
    # Usable where it is, without scrolling it into view first.
    box = row(page, "short").locator(".row-delete").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#delete-dialog")).to_be_visible()
    expect(page.locator("#delete-list")).to_contain_text("short")
    page.click("#delete-cancel")


@pytest.mark.browser
def test_times_carry_their_zone(in_kolkata: Page, env: Env) -> None:
    page = in_kolkata
    cluster = env.queued_cluster("zones")
    api = env.api(cluster)
    job = api.submit("zoned")
    submitted = api.show(job).json()["job_detail"]["submitted_time"]
    ist = timezone(timedelta(hours=5, minutes=30))
    local = datetime.fromtimestamp(submitted / 1000, UTC).astimezone(ist)
    want = local.strftime("%Y-%m-%d %H:%M:%S") + " UTC+05:30"
    sign_in(page, env, cluster)
    expect(row(page, "zoned").locator("td").nth(6)).to_have_text(want)
    row(page, "zoned").locator("a.job-name").click()
    submitted_field = page.locator("#detail-fields dt:text-is('Submitted') + dd")
    expect(submitted_field).to_have_text(want)
    instant = datetime.fromtimestamp(submitted / 1000, UTC).isoformat(timespec="milliseconds")
    expect(submitted_field.locator(".time")).to_have_attribute(
        "title", instant.replace("+00:00", "Z")
    )
