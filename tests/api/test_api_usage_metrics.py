"""``/metrics``' usage counters: CPU seconds and memory MB-seconds of the jobs that ended, by
cluster and job type, counted once each (SQLite and PostgreSQL)."""

from __future__ import annotations

from api_helpers import client_for
from jobrows import transition_path
from prometheus_client.parser import text_string_to_metric_families


def scrape(api) -> dict[str, list[tuple[dict[str, str], float]]]:  # type: ignore[no-untyped-def]
    r = client_for(api.client.app).get("/metrics")
    assert r.status_code == 200, r.text
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    found = [v for lab, v in samples.get(name, []) if labels.items() <= lab.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


def _end(api, job_id: str, state: str, cpu: float | None, peak: int | None) -> None:  # type: ignore[no-untyped-def]
    path = ("ACCEPTED", "RUNNING", state) if state != "KILLED" else ("KILLED",)
    values = {"started_ms": 1_000, "finished_ms": 5_000, "cpu_seconds": cpu}
    transition_path(api.store, job_id, *path, **values, peak_memory_mb=peak)


def test_usage_counters_grow_by_what_each_ended_job_used_once(api) -> None:  # type: ignore[no-untyped-def]
    scope = {"project_id": api.project_id, "cluster_id": api.cluster_id}
    spark = {**scope, "job_type": "SparkSubmit"}
    assert value(scrape(api), "mrs_jobs_job_cpu_seconds_total", **spark) == 0
    a, b, c, live = (api.submit(f"u{i}") for i in range(4))
    _end(api, a, "FINISHED", 2.5, 100)  # 4 s run: 400 MB-s
    _end(api, b, "FAILED", 1.0, 50)  # 200 MB-s
    _end(api, c, "KILLED", None, None)  # never ran: counted as ended, nothing used
    transition_path(api.store, live, "ACCEPTED", "RUNNING")
    m = scrape(api)
    assert value(m, "mrs_jobs_jobs_ended_total", **spark) == 3
    assert value(m, "mrs_jobs_job_cpu_seconds_total", **spark) == 3.5
    assert value(m, "mrs_jobs_job_memory_mb_seconds_total", **spark) == 600.0
    # A second scrape counts nothing twice; a job that ends later adds to the counters.
    assert value(scrape(api), "mrs_jobs_job_cpu_seconds_total", **spark) == 3.5
    transition_path(api.store, live, "FINISHED", cpu_seconds=10.0, peak_memory_mb=10)
    m = scrape(api)
    assert value(m, "mrs_jobs_jobs_ended_total", **spark) == 4
    assert value(m, "mrs_jobs_job_cpu_seconds_total", **spark) == 13.5
