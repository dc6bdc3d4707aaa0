"""The web console end to end: real ``mrs-jobs serve``, real headless Chromium (Playwright).

Debian's ``chromium`` is driven by Playwright's Python package with ``executable_path``; no
browser is downloaded. Without it the browser tests skip on a laptop and fail in CI. Jobs stay
queued (SUBMITTED) on clusters made with ``--max-running 0``; one test runs a real PySpark job to
read its log live. Screenshots go under pytest's ``tmp_path`` and their paths are printed.
"""

from __future__ import annotations

import json
import re
import textwrap
from importlib import resources
from pathlib import Path

import httpx
import pytest
from console_support import Env, row, rows, shot, sign_in

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - reported by the browser fixture
    pass


def test_console_is_served_with_strict_headers(env: Env) -> None:
    r = httpx.get(env.endpoint + "/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert r.status_code == 302 and r.headers["location"] == "/console/"
    r = httpx.get(env.endpoint + "/")  # an API client: the JSON 404 of an unknown route
    assert r.status_code == 404 and r.json()["error_code"] == "12000002"
    r = httpx.get(env.endpoint + "/console")
    assert r.status_code == 302 and r.headers["location"] == "/console/"
    r = httpx.get(env.endpoint + "/console/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    html = r.text
    # No inline script or style, no resource from another origin.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "style=" not in html and "<style" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    for name, kind in [("console.js", "text/javascript"), ("console.css", "text/css")]:
        r = httpx.get(f"{env.endpoint}/console/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
        assert r.headers["x-content-type-options"] == "nosniff"
    r = httpx.get(env.endpoint + "/console/routes.py")
    assert r.status_code == 404 and r.json()["error_code"] == "12000002"
    assert "innerHTML" not in httpx.get(f"{env.endpoint}/console/console.js").text


MODULE_IMPORT = re.compile(
    r"""^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']""", re.M | re.S
)
BARE_IMPORT = re.compile(r"""^\s*import\s*["']([^"']+)["']""", re.M)


def test_every_console_script_is_served_as_javascript(env: Env) -> None:
    """Each script the page loads, and each module those import, is served as JavaScript.

    A browser refuses to run a module served with another content type (nosniff makes that true
    for classic scripts too), and a file missing from the served list is a 404: either way the
    console would stay blank, so every reachable file is fetched here the way the browser would.
    """
    page_url = f"{env.endpoint}/console/"
    html = httpx.get(page_url).text
    entries = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", html)
    assert entries == ["console.js"]
    assert re.search(r'<script type="module" src="console.js"></script>', html)
    seen: dict[str, str] = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        r = httpx.get(page_url + name)
        assert r.status_code == 200, f"{name}: {r.status_code}"
        assert r.headers["content-type"].startswith("text/javascript"), (name, r.headers)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'self'" in r.headers["content-security-policy"]
        seen[name] = r.text
        for spec in MODULE_IMPORT.findall(r.text) + BARE_IMPORT.findall(r.text):
            # Same-origin files beside the page only: no other host, no path outside /console/.
            assert re.fullmatch(r"\./[a-z][a-z-]*\.js", spec), f"{name} imports {spec!r}"
            todo.append(spec[2:])
    shipped = {
        f.name
        for f in (resources.files("mrs_jobs.web") / "static").iterdir()
        if f.name.endswith(".js")
    }
    assert set(seen) == shipped, "every shipped script is reachable from the page, and only those"
    assert len(seen) > 1  # console.js imports the other modules
    for name, text in seen.items():
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, name
        assert "eval(" not in text and "new Function" not in text, name


@pytest.mark.browser
def test_sign_in_list_filter_and_page(page: Page, env: Env, tmp_path: Path) -> None:
    cluster = env.queued_cluster("list")
    api = env.api(cluster)
    ids = {f"page-{i:02d}": api.submit(f"page-{i:02d}") for i in range(11)}
    ids["find-me"] = api.submit("find-me")
    ids["killed-one"] = api.submit("killed-one")
    api.kill(ids["killed-one"])
    api.wait_state(ids["killed-one"], "KILLED")

    # A wrong token: the API's error in the banner, still on the sign-in form.
    page.goto(env.endpoint + "/console/")
    page.fill("#signin-project", env.project)
    page.fill("#signin-cluster", cluster)
    page.fill("#signin-token", "mrsj_not-a-token")
    page.click("#signin-submit")
    expect(page.locator("#banner")).to_contain_text("APIGW.0301")
    expect(page.locator("#signin-view")).to_be_visible()

    sign_in(page, env, cluster)
    expect(rows(page)).to_have_count(10)
    expect(page.locator("#pager-total")).to_have_text("1–10 of 13 jobs")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 2")
    first = row(page, "killed-one")  # newest first
    expect(first.locator("td").nth(2)).to_have_text("alice")
    expect(first.locator("td").nth(3)).to_have_text("SparkSubmit")
    expect(first.locator(".badge")).to_have_text("KILLED")
    expect(first.locator(".result")).to_have_text("KILLED")
    expect(first.locator("td").nth(6)).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (UTC|UTC[+-]\d\d:\d\d)$")
    )
    expect(row(page, "page-10").locator("td").nth(7)).to_have_text("—")  # not ended
    expect(page.locator("#live-indicator")).to_be_visible()  # SUBMITTED jobs are live
    assert page.evaluate("sessionStorage.length") == 1
    assert env.token not in page.url
    shot(page, tmp_path, "jobs")

    page.click("#page-next")
    expect(rows(page)).to_have_count(3)
    expect(page.locator("#page-info")).to_have_text("Page 2 of 2")
    expect(page.locator("#pager-total")).to_have_text("11–13 of 13 jobs")
    expect(page.locator("#page-next")).to_be_disabled()
    expect(row(page, "page-00")).to_have_count(1)  # the oldest is last
    page.click("#page-prev")
    expect(rows(page)).to_have_count(10)

    # Name, then ID, in the one search box.
    page.fill("#f-search", "find-me")
    page.press("#f-search", "Enter")
    expect(rows(page)).to_have_count(1)
    expect(row(page, "find-me")).to_have_count(1)
    page.fill("#f-search", ids["page-03"])
    page.press("#f-search", "Enter")
    expect(rows(page)).to_have_count(1)
    expect(row(page, "page-03").locator(".job-id")).to_have_text(ids["page-03"])
    page.click("#f-reset")
    expect(rows(page)).to_have_count(10)

    page.select_option("#f-state", "KILLED")
    expect(rows(page)).to_have_count(1)
    expect(row(page, "killed-one")).to_have_count(1)
    page.select_option("#f-state", "SUBMITTED")
    expect(page.locator("#pager-total")).to_have_text("1–10 of 12 jobs")
    page.select_option("#f-state", "")
    page.select_option("#f-result", "KILLED")
    expect(rows(page)).to_have_count(1)
    page.select_option("#f-result", "")
    page.select_option("#f-type", "SparkSql")
    expect(rows(page)).to_have_count(0)
    expect(page.locator("#jobs-empty")).to_be_visible()
    page.select_option("#f-type", "SparkSubmit")
    expect(rows(page)).to_have_count(10)

    # Time range: all were submitted in the last hour; none in a range years ahead.
    page.select_option("#f-time", "3600000")
    expect(page.locator("#pager-total")).to_have_text("1–10 of 13 jobs")
    page.select_option("#f-time", "custom")
    page.fill("#f-from", "2099-01-01T00:00:00")
    page.fill("#f-to", "2099-12-31T23:59:59")
    expect(rows(page)).to_have_count(0)
    page.click("#f-reset")
    expect(rows(page)).to_have_count(10)

    # Page size and sort order.
    page.select_option("#page-size", "20")
    expect(rows(page)).to_have_count(13)
    page.click("#sort-submitted")
    expect(rows(page).first.locator("a.job-name")).to_have_text("page-00")

    page.click("#sign-out")
    expect(page.locator("#signin-view")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


@pytest.mark.browser
def test_batch_delete_requires_typed_confirmation(page: Page, env: Env, tmp_path: Path) -> None:
    cluster = env.queued_cluster("delete")
    api = env.api(cluster)
    ids = {f"del-{i}": api.submit(f"del-{i}") for i in range(5)}
    sign_in(page, env, cluster)
    expect(rows(page)).to_have_count(5)
    expect(page.locator("#delete-selected")).to_be_disabled()

    # Cancel leaves everything in place.
    row(page, "del-4").locator(".row-check").check()
    page.click("#delete-selected")
    expect(page.locator("#delete-dialog")).to_be_visible()
    page.click("#delete-cancel")
    expect(page.locator("#delete-dialog")).to_be_hidden()
    row(page, "del-4").locator(".row-check").uncheck()

    for name in ("del-0", "del-1", "del-2"):
        row(page, name).locator(".row-check").check()
    expect(page.locator("#delete-selected")).to_have_text("Delete (3)")
    page.click("#delete-selected")
    dialog = page.locator("#delete-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#delete-summary")).to_have_text("Delete 3 jobs?")
    expect(page.locator("#delete-list li")).to_have_count(3)
    confirm = page.locator("#delete-confirm")
    expect(confirm).to_be_disabled()
    for wrong in ("delete", "DELET", "DELETE ", " DELETE", "Delete"):
        page.fill("#delete-confirm-input", wrong)
        expect(confirm).to_be_disabled()
    page.press("#delete-confirm-input", "Enter")  # submitting with a wrong text does nothing
    expect(dialog).to_be_visible()
    page.fill("#delete-confirm-input", "DELETE")
    expect(confirm).to_be_enabled()
    shot(page, tmp_path, "delete-dialog")
    confirm.click()

    expect(dialog).to_be_hidden()
    expect(page.locator("#banner")).to_contain_text("Deleted 3 jobs.")
    expect(rows(page)).to_have_count(2)
    for name in ("del-0", "del-1", "del-2"):
        expect(row(page, name)).to_have_count(0)
        r = api.show(ids[name])
        assert r.status_code == 400 and r.json()["error_code"] == "0176", r.text
    for name in ("del-3", "del-4"):
        assert api.show(ids[name]).status_code == 202
    expect(page.locator("#delete-selected")).to_be_disabled()


@pytest.mark.browser
def test_kill_a_queued_job_from_its_row(page: Page, env: Env) -> None:
    cluster = env.queued_cluster("kill")
    api = env.api(cluster)
    victim = api.submit("kill-me")
    keeper = api.submit("keep-me")
    sign_in(page, env, cluster)
    target = row(page, "kill-me")
    expect(target.locator(".badge")).to_have_text("SUBMITTED")
    target.locator(".row-kill").click()
    expect(page.locator("#kill-dialog")).to_be_visible()
    expect(page.locator("#kill-summary")).to_contain_text(victim)
    page.click("#kill-confirm")
    expect(page.locator("#kill-dialog")).to_be_hidden()
    # The live refresh brings the end state in without a reload.
    expect(row(page, "kill-me").locator(".badge")).to_have_text("KILLED")
    expect(row(page, "kill-me").locator(".result")).to_have_text("KILLED")
    expect(row(page, "kill-me").locator(".row-kill")).to_be_disabled()
    expect(row(page, "kill-me").locator("td").nth(7)).not_to_have_text("—")
    assert api.state(victim) == "KILLED"
    assert api.state(keeper) == "SUBMITTED"
    expect(row(page, "keep-me").locator(".badge")).to_have_text("SUBMITTED")


@pytest.mark.browser
def test_detail_shows_fields_as_text_and_sql_results(page: Page, env: Env) -> None:
    cluster = env.queued_cluster("detail")
    api = env.api(cluster)
    hostile = '<img src=x onerror="window.__xss=1">'
    job = api.submit(
        "shown",
        arguments=[str(env.tmp / "app.py"), hostile],
        properties={"db.password": "hunter2-secret", "spark.executor.cores": "1"},
    )
    sign_in(page, env, cluster)
    row(page, "shown").locator("a.job-name").click()
    expect(page.locator("#detail-view")).to_be_visible()
    expect(page).to_have_url(re.compile(f"#/jobs/{job}$"))
    expect(page.locator("#detail-title")).to_have_text("shown")
    fields = page.locator("#detail-fields")
    expect(fields).to_contain_text(job)
    expect(fields).to_contain_text(hostile)  # shown as text, never parsed
    expect(fields).to_contain_text("db.password=******")
    assert "hunter2" not in page.content()
    assert page.evaluate("window.__xss") is None
    assert page.locator("img").count() == 0
    expect(page.locator("#log-status")).to_have_text("no output yet")

    # Kill from the detail view; polling shows the end state.
    page.click("#detail-kill")
    page.click("#kill-confirm")
    expect(page.locator("#detail-state")).to_have_text("KILLED")
    expect(page.locator("#detail-kill")).to_be_hidden()
    page.click("#detail-back")
    expect(page.locator("#jobs-view")).to_be_visible()

    # SQL results: a queued SQL job never runs here, so the page's sql-result call is answered
    # by the test (rows holding markup must come out as text).
    sql_job = api.submit("q", job_type="SparkSql", arguments=["SELECT 1 AS one"])
    api.kill(sql_job)
    api.wait_state(sql_job, "KILLED")
    results = {"0": [{"result": "succeed"}], "1": [{"s": "3", "h": "<b>bold</b>"}, {"s": "4"}]}
    results["2"] = [{"result": "failed", "message": "Syntax error at or near 'SELEC' <b>x</b>"}]
    page.route(
        "**/sql-result",
        lambda route: route.fulfill(
            status=202, content_type="application/json", body=json.dumps({"sql_results": results})
        ),
    )
    page.goto(f"{env.endpoint}/console/#/jobs/{sql_job}")
    expect(page.locator("#sql-card")).to_be_visible()
    expect(page.locator(".sql-statement h3")).to_have_text(
        ["Statement 1 · 1 row", "Statement 2 · 2 rows", "Statement 3 · failed"]
    )
    expect(page.locator(".sql-error")).to_have_text(results["2"][0]["message"])
    expect(page.locator(".sql-statement").nth(1).locator("th")).to_have_text(["s", "h"])
    expect(page.locator(".sql-statement").nth(1).locator("td").nth(1)).to_have_text("<b>bold</b>")
    assert page.locator("#sql-results b").count() == 0
    page.unroute("**/sql-result")

    # A job deleted elsewhere: its page says it is not there (tests/web/test_console_job.py).
    r = api.http.post(f"{api.base}/batch-delete", json={"job_id_list": [sql_job]})
    assert r.status_code == 202, r.text
    page.reload()
    expect(page.locator("#notfound-view")).to_be_visible()
    expect(page.locator("#notfound-id")).to_have_text(sql_job)


@pytest.mark.browser
def test_an_expired_token_signs_out_on_the_next_refresh(page: Page, env: Env) -> None:
    cluster = env.queued_cluster("expiry")
    env.api(cluster).submit("waits")  # a live job keeps the list refreshing
    short = env.admin("create-token", env.project, "--ttl", "6")
    sign_in(page, env, cluster, short)
    expect(row(page, "waits")).to_have_count(1)
    expect(page.locator("#signin-view")).to_be_visible(timeout=20_000)
    expect(page.locator("#banner")).to_contain_text("APIGW.0301")
    assert page.evaluate("sessionStorage.length") == 0
    assert short not in page.content()


PYSPARK_APP = textwrap.dedent(
    """
    import time
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.appName("console-log").getOrCreate()
    total = spark.sparkContext.parallelize(range(1, 11), 2).sum()
    print("CONSOLE-MARKER-1 sum=%d" % total, flush=True)
    time.sleep(8)
    print("CONSOLE-MARKER-2 done", flush=True)
    spark.stop()
    """
)


@pytest.mark.browser
@pytest.mark.spark
def test_log_of_a_real_pyspark_job_follows_while_running(
    page: Page, env: Env, tmp_path: Path
) -> None:
    app = env.tmp / "console_log.py"
    app.write_text(PYSPARK_APP)
    api = env.api(env.default_cluster)
    job = api.submit("log-demo", arguments=[str(app)])
    sign_in(page, env, env.default_cluster)
    row(page, "log-demo").locator("a.job-name").click()
    expect(page.locator("#detail-view")).to_be_visible()
    log = page.locator("#log")

    # The first marker arrives while the job still runs (the second is 8 s behind it).
    expect(log).to_contain_text("CONSOLE-MARKER-1 sum=55", timeout=120_000)
    expect(page.locator("#detail-state")).to_have_text("RUNNING")
    assert "CONSOLE-MARKER-2" not in log.inner_text()
    expect(page.locator("#detail-fields")).to_contain_text(re.compile(r"local-\d+"))
    shot(page, tmp_path, "detail-running")

    expect(log).to_contain_text("CONSOLE-MARKER-2 done", timeout=60_000)
    expect(page.locator("#detail-state")).to_have_text("FINISHED", timeout=60_000)
    expect(page.locator("#detail-fields")).to_contain_text("SUCCEEDED")
    assert api.state(job) == "FINISHED"

    # Switching streams re-reads from the tail.
    page.click("#log-stderr")
    expect(page.locator("#log-stderr")).to_have_attribute("aria-pressed", "true")
    page.click("#log-stdout")
    expect(log).to_contain_text("CONSOLE-MARKER-1")
    shot(page, tmp_path, "detail-finished")
