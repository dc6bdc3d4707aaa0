"""The console's job page shows what an ended job used (CPU time, peak memory), and a dash
where that is not known. The same server and browser as ``test_console.py``: a real DistCp
job (a Python process of ours) that ends at once, measured by its shim."""

from __future__ import annotations

import time

import pytest
from console_support import Env, row, sign_in

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - reported by the browser fixture
    pass


@pytest.mark.browser
def test_an_ended_job_shows_its_cpu_time_and_peak_memory(page: Page, env: Env) -> None:
    api = env.api(env.default_cluster)
    job_id = api.submit(
        "copy-used", job_type="DistCp", arguments=[str(env.tmp / "nothing"), str(env.tmp / "o")]
    )
    deadline = time.monotonic() + 120
    while (state := api.state(job_id)) not in ("FINISHED", "FAILED", "KILLED"):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    job = api.show(job_id).json()["job_detail"]
    assert job["cpu_seconds"] is not None and job["peak_memory_mb"] > 0, job
    sign_in(page, env, env.default_cluster)
    row(page, "copy-used").locator("a.job-name").click()
    cpu = page.locator("#detail-fields dt:text-is('CPU time') + dd")
    expect(cpu).to_have_text(f"{job['cpu_seconds']:.1f} s")
    memory = page.locator("#detail-fields dt:text-is('Peak memory') + dd")
    expect(memory).to_have_text(f"{job['peak_memory_mb']} MB")
    expect(page.locator("#detail-fields dt:text-is('Attempt') + dd")).to_have_text("1")


@pytest.mark.browser
def test_a_queued_job_shows_dashes(page: Page, env: Env) -> None:
    cluster = env.queued_cluster("usage-queued")
    env.api(cluster).submit("waiting")
    sign_in(page, env, cluster)
    row(page, "waiting").locator("a.job-name").click()
    expect(page.locator("#detail-fields dt:text-is('CPU time') + dd")).to_have_text("—")
    expect(page.locator("#detail-fields dt:text-is('Peak memory') + dd")).to_have_text("—")
