"""The console hides what the signed-in token's policy denies (issue 20).

After sign-in the console reads ``GET /v2/{project_id}/permissions``: a denied action's
controls are not on the page at all (not merely disabled), and the top bar names the user and
the policy. When that call fails (a policy without ``mrs:credential:get``: 403; an older server:
404) everything is shown, and a refused action's ``error_msg`` is what the console shows. The
same server and browser as ``test_console.py``; tokens are issued with a policy by
``mrs-jobs admin create-token --policy``.
"""

from __future__ import annotations

import json

import pytest
from console_support import Env, row, sign_in

try:
    from playwright.sync_api import Page, Route, expect
except ImportError:  # pragma: no cover - reported by the browser fixture
    pass

JOB = "held"


def token_with(env: Env, user: str, policy: str) -> str:
    """A token of ``user`` carrying ``policy`` (a system policy's name or a JSON document)."""
    return env.admin(
        "create-token", env.project, "--ttl", "3600", "--user", user, "--policy", policy
    )


def custom(*statements: tuple[str, list[str]]) -> str:
    return json.dumps(
        {"Version": "1.1", "Statement": [{"Effect": e, "Action": a} for e, a in statements]}
    )


@pytest.fixture(scope="module")
def held(env: Env) -> dict[str, str]:
    """A cluster whose one job stays SUBMITTED: live, so its Kill is offered where allowed."""
    cluster = env.queued_cluster("permissions")
    return {"cluster": cluster, "job_id": env.api(cluster).submit(JOB)}


@pytest.fixture
def cluster(held: dict[str, str]) -> str:
    return held["cluster"]


def open_job(page: Page) -> None:
    row(page, JOB).locator("a.job-name").click()
    # The job was read and drawn: its state and the History button come with it.
    expect(page.locator("#detail-state")).to_have_text("SUBMITTED")
    expect(page.locator("#detail-history")).to_be_visible()


def expect_every_control(page: Page) -> None:
    held = row(page, JOB)
    expect(held.locator(".row-kill")).to_be_visible()
    expect(held.locator(".row-kill")).to_be_enabled()
    expect(held.locator(".row-delete")).to_be_visible()
    expect(held.locator("input.row-check")).to_be_visible()
    expect(page.locator("#select-all")).to_be_visible()
    expect(page.locator("#delete-selected")).to_be_visible()
    expect(page.locator("th.col-actions")).to_be_visible()


@pytest.mark.browser
def test_read_only_sees_the_jobs_but_nothing_that_changes_them(
    page: Page, env: Env, cluster: str
) -> None:
    token = token_with(env, "dash", "MRS ReadOnlyAccess")
    sign_in(page, env, cluster, token)
    expect(page.locator("#who")).to_have_text("signed in as dash — MRS ReadOnlyAccess")
    held = row(page, JOB)
    expect(held).to_be_visible()
    expect(held.locator("td.col-state")).to_contain_text("SUBMITTED")
    # Not disabled: absent. No Kill, no Delete, no selection to delete, no Actions column.
    expect(page.locator("#jobs-body .row-kill")).to_have_count(0)
    expect(page.locator("#jobs-body .row-delete")).to_have_count(0)
    expect(held.locator("input.row-check")).to_be_hidden()
    expect(page.locator("#select-all")).to_be_hidden()
    expect(page.locator("#delete-selected")).to_be_hidden()
    expect(page.locator("th.col-actions")).to_be_hidden()
    open_job(page)
    expect(page.locator("#detail-kill")).to_be_hidden()
    # A reload reads the permissions again before drawing.
    page.reload()
    expect(page.locator("#detail-state")).to_have_text("SUBMITTED")
    expect(page.locator("#who")).to_have_text("signed in as dash — MRS ReadOnlyAccess")
    expect(page.locator("#detail-kill")).to_be_hidden()
    assert token not in page.content()
    # Signing out forgets them: the next token's page is its own.
    page.click("#sign-out")
    expect(page.locator("#signin-view")).to_be_visible()
    expect(page.locator("#who")).to_be_hidden()


@pytest.mark.browser
def test_full_access_sees_every_control(page: Page, env: Env, cluster: str) -> None:
    sign_in(page, env, cluster, token_with(env, "ops", "MRS FullAccess"))
    expect(page.locator("#who")).to_have_text("signed in as ops — MRS FullAccess")
    expect_every_control(page)
    open_job(page)
    expect(page.locator("#detail-kill")).to_be_visible()


@pytest.mark.browser
def test_a_policy_denying_only_stop_hides_only_kill(page: Page, env: Env, cluster: str) -> None:
    policy = custom(("Allow", ["mrs:*:*"]), ("Deny", ["mrs:job:stop"]))
    sign_in(page, env, cluster, token_with(env, "nokill", policy))
    expect(page.locator("#who")).to_have_text("signed in as nokill — custom policy")
    held = row(page, JOB)
    expect(held.locator(".row-delete")).to_be_visible()
    expect(page.locator("#jobs-body .row-kill")).to_have_count(0)
    expect(held.locator("input.row-check")).to_be_visible()
    expect(page.locator("#delete-selected")).to_be_visible()
    expect(page.locator("th.col-actions")).to_be_visible()
    open_job(page)
    expect(page.locator("#detail-kill")).to_be_hidden()


@pytest.mark.browser
def test_unreadable_permissions_show_everything_and_a_refusal_says_why(
    page: Page, env: Env, cluster: str, held: dict[str, str]
) -> None:
    """A policy that may not read itself (403): every control; the server refuses the kill."""
    policy = custom(("Allow", ["mrs:job:*"]), ("Deny", ["mrs:job:stop"]))
    sign_in(page, env, cluster, token_with(env, "blind", policy))
    expect(page.locator("#who")).to_be_hidden()
    expect_every_control(page)
    row(page, JOB).locator(".row-kill").click()
    page.click("#kill-confirm")
    expect(page.locator("#kill-error")).to_have_text(
        "APIGW.0302: Policy doesn't allow mrs:job:stop to be performed."
    )
    assert env.api(cluster).state(held["job_id"]) == "SUBMITTED"


@pytest.mark.browser
def test_an_older_server_without_permissions_shows_everything(
    page: Page, env: Env, cluster: str
) -> None:
    """No such route (404): a read-only token is offered Kill; the API's refusal is shown."""

    def older(route: Route) -> None:
        route.fulfill(
            status=404,
            content_type="application/json",
            body=json.dumps({"error_code": "12000002", "error_msg": "Not found."}),
        )

    page.route("**/v2/*/permissions", older)
    sign_in(page, env, cluster, token_with(env, "dash", "MRS ReadOnlyAccess"))
    expect(page.locator("#who")).to_be_hidden()
    expect_every_control(page)
    open_job(page)
    page.click("#detail-kill")
    page.click("#kill-confirm")
    expect(page.locator("#kill-error")).to_have_text(
        "APIGW.0302: Policy doesn't allow mrs:job:stop to be performed."
    )
