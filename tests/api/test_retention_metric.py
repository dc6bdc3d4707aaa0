"""``/metrics`` exports the jobs retention handed to the purge (a process-wide counter)."""

from __future__ import annotations

from test_ops_metrics import scrape, value

from mrs_jobs.supervisor import retention


def test_the_retention_counter_is_scraped(api) -> None:  # type: ignore[no-untyped-def]
    before = value(scrape(api), "mrs_jobs_retention_purged_jobs_total")
    assert before == retention.COUNTS.jobs
    retention.COUNTS.add(3)
    assert value(scrape(api), "mrs_jobs_retention_purged_jobs_total") == before + 3
