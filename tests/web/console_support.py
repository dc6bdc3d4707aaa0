"""What the console's browser tests share: the server under test, its API, a checked page.

``Env`` is one real ``mrs-jobs serve`` (the fixtures in ``conftest.py`` start one for the whole
session); ``open_page`` opens a browser page that fails its test on a script error, a CSP
violation, a console file that did not load, or the token rendered into the page.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support_server import BIN, ServerProcess

try:
    from playwright.sync_api import Browser, Locator, Page, expect
except ImportError:  # pragma: no cover - reported by the browser fixture
    pass

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = Path(os.environ.get("MRS_JOBS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


def need(ok: bool, why: str) -> None:
    if not ok:
        if IN_CI:
            pytest.fail(f"{why} (required in CI)")
        pytest.skip(why)


@dataclass
class Env:
    server: ServerProcess
    endpoint: str
    project: str
    default_cluster: str
    token: str
    tmp: Path

    def admin(self, *args: str) -> str:
        proc = subprocess.run(
            [str(BIN), "admin", *args],
            env=self.server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    def queued_cluster(self, name: str) -> str:
        """A cluster with no running slot: its jobs stay SUBMITTED (live) until killed."""
        return self.admin("create-cluster", self.project, "--name", name, "--max-running", "0")

    def api(self, cluster: str) -> Api:
        return Api(self, cluster)


class Api:
    """The public API over HTTP with the token, as a script would call it."""

    def __init__(self, env: Env, cluster: str) -> None:
        self.env = env
        self.cluster = cluster
        self.base = f"{env.endpoint}/v2/{env.project}/clusters/{cluster}/job-executions"
        self.http = httpx.Client(
            headers={"X-Auth-Token": env.token, "Content-Type": "application/json"},
            timeout=30,
        )

    def submit(
        self,
        name: str,
        *,
        job_type: str = "SparkSubmit",
        arguments: list[str] | None = None,
        properties: dict[str, str] | None = None,
    ) -> str:
        body: dict[str, Any] = {
            "job_type": job_type,
            "job_name": name,
            "arguments": arguments if arguments is not None else [str(self.env.tmp / "app.py")],
        }
        if properties:
            body["properties"] = properties
        r = self.http.post(self.base, json=body)
        assert r.status_code == 200, r.text
        time.sleep(0.003)  # distinct submitted_time values keep the expected order exact
        return r.json()["job_submit_result"]["job_id"]

    def show(self, job_id: str) -> httpx.Response:
        return self.http.get(f"{self.base}/{job_id}")

    def kill(self, job_id: str) -> None:
        assert self.http.post(f"{self.base}/{job_id}/kill").status_code == 202

    def state(self, job_id: str) -> str:
        r = self.show(job_id)
        assert r.status_code == 202, r.text
        return r.json()["job_detail"]["job_state"]

    def wait_state(self, job_id: str, want: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (got := self.state(job_id)) != want:
            assert time.monotonic() < deadline, f"{job_id}: {got}, wanted {want}"
            time.sleep(0.1)


@contextmanager
def open_page(browser: Browser, env: Env, **context_options: Any) -> Iterator[Page]:
    """A page in a context of its own (a 1360x900 viewport unless told otherwise)."""
    context_options.setdefault("viewport", {"width": 1360, "height": 900})
    context = browser.new_context(**context_options)
    p = context.new_page()
    p.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    p.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    p.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}")
        if msg.type == "error" and "Content Security Policy" in msg.text
        else None,
    )
    # A console file (a module the page imports, its style sheet, its icon) that fails to load.
    p.on(
        "response",
        lambda r: problems.append(f"{r.status} for {r.url}")
        if "/console/" in r.url and r.status >= 400
        else None,
    )
    try:
        yield p
        html = p.content()
    finally:
        context.close()
    assert env.token not in html, "the token must never be rendered into the page"
    assert not problems, problems


def sign_in(page: Page, env: Env, cluster: str, token: str | None = None) -> None:
    page.goto(env.endpoint + "/")
    expect(page).to_have_url(re.compile(r"/console/$"))
    page.fill("#signin-project", env.project)
    page.fill("#signin-cluster", cluster)
    page.fill("#signin-token", token or env.token)
    page.click("#signin-submit")
    expect(page.locator("#jobs-view")).to_be_visible()
    expect(page.locator("#where-cluster")).to_have_text(cluster)


def rows(page: Page) -> Locator:
    return page.locator("#jobs-body tr")


def row(page: Page, name: str) -> Locator:
    """The table row of the job with this exact name."""
    link = page.locator("a.job-name", has_text=re.compile(f"^{re.escape(name)}$"))
    return page.locator("#jobs-body tr", has=link)


def shot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
