"""Fixtures of the console's browser tests: one server and one browser for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from console_support import CHROMIUM, CHROMIUM_ARGS, Env, need, open_page
from support_server import ServerProcess

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - reported by the browser fixture
    sync_playwright = None


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("console")
    (tmp / "app.py").write_text("print('never runs on a queued cluster')\n")
    server = ServerProcess(tmp / "data").start()
    try:
        boot = server.bootstrap
        e = Env(server, server.endpoint, boot["project_id"], boot["cluster_id"], "", tmp)
        e.token = e.admin("create-token", e.project, "--ttl", "3600", "--user", "alice")
        yield e
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    need(sync_playwright is not None, "the playwright package is not installed")
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser, env: Env) -> Iterator[Page]:
    with open_page(browser, env) as p:
        yield p
