"""``/metrics`` exports webhook attempts by outcome (a process-wide counter) and the age of the
oldest delivery still pending (from the store)."""

from __future__ import annotations

import time

from test_ops_metrics import scrape, value

from mrs_jobs.secretbox import load_secret_box
from mrs_jobs.services.webhooks import WebhookAdmin
from mrs_jobs.supervisor import webhooks


def test_webhook_outcomes_and_oldest_pending_age_are_scraped(api, settings) -> None:  # type: ignore[no-untyped-def]
    samples = scrape(api)
    before = {
        o: value(samples, "mrs_jobs_webhook_deliveries_total", outcome=o) for o in webhooks.OUTCOMES
    }
    assert before == {o: float(n) for o, n in webhooks.COUNTS.by_outcome.items()}
    assert value(samples, "mrs_jobs_webhook_oldest_undelivered_seconds") == 0.0
    webhooks.COUNTS.add("dead")
    webhooks.COUNTS.add("retried")
    admin = WebhookAdmin(api.store, load_secret_box(settings), allow_private=True)
    admin.create(api.project_id, "http://127.0.0.1:9/never", ["job.submitted"])
    api.submit("pending-delivery")  # its job.submitted is queued, and never sent here
    time.sleep(1.1)
    samples = scrape(api)
    assert value(samples, "mrs_jobs_webhook_deliveries_total", outcome="dead") == before["dead"] + 1
    assert (
        value(samples, "mrs_jobs_webhook_deliveries_total", outcome="retried")
        == before["retried"] + 1
    )
    assert value(samples, "mrs_jobs_webhook_oldest_undelivered_seconds") >= 1.0
