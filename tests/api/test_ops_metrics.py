"""``/metrics``: a small workload through the API, then the scrape must agree with it and with
the store (request counts by route template, auth failures, job gauges, start latencies)."""

from __future__ import annotations

from collections import Counter

from api_helpers import client_for, new_cluster, other_project
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from mrs_jobs.domain.states import JobState
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import jobs

JOBS = "/v2/{project_id}/clusters/{cluster_id}/job-executions"


def scrape(api) -> dict[str, list[tuple[dict[str, str], float]]]:  # type: ignore[no-untyped-def]
    r = client_for(api.client.app).get("/metrics")  # unauthenticated on purpose
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    """The one sample of ``name`` whose labels include ``labels`` (0 if there is none)."""
    found = [v for lab, v in samples.get(name, []) if labels.items() <= lab.items()]
    assert len(found) <= 1, (name, labels, found)
    return found[0] if found else 0.0


def test_workload_is_counted_and_gauges_match_the_store(api) -> None:  # type: ignore[no-untyped-def]
    ids = [api.submit(f"m{i}") for i in range(3)]
    assert api.client.post(f"{api.base}/{ids[0]}/kill").status_code == 202
    r = api.client.post(f"{api.base}/batch-delete", json={"job_id_list": [ids[1]]})
    assert r.status_code == 202, r.text
    assert client_for(api.client.app).get(api.base).status_code == 401  # unsigned
    other = other_project(api)
    assert other.client.get(api.base).status_code == 403  # another project's credential

    m = scrape(api)
    scope = {"project_id": api.project_id, "cluster_id": api.cluster_id}

    # Requests by route template, method and status; latency histogram alongside.
    assert value(m, "mrs_jobs_http_requests_total", method="POST", route=JOBS, status="200") == 3
    kill = JOBS + "/{job_execution_id}/kill"
    assert value(m, "mrs_jobs_http_requests_total", method="POST", route=kill, status="202") == 1
    delete = JOBS + "/batch-delete"
    assert value(m, "mrs_jobs_http_requests_total", method="POST", route=delete, status="202") == 1
    assert value(m, "mrs_jobs_http_requests_total", method="GET", route=JOBS, status="401") == 1
    assert value(m, "mrs_jobs_http_requests_total", method="GET", route=JOBS, status="403") == 1
    assert value(m, "mrs_jobs_http_request_duration_seconds_count", method="POST", route=JOBS) == 3
    assert value(m, "mrs_jobs_http_request_duration_seconds_sum", method="POST", route=JOBS) > 0
    assert value(m, "mrs_jobs_auth_failures_total", reason="unauthenticated") == 1
    assert value(m, "mrs_jobs_auth_failures_total", reason="forbidden") == 1

    # Job gauges: visible jobs by state equal the store's own count.
    with api.store.read() as conn:
        rows = conn.execute(
            select(jobs.c.state, func.count())
            .where(jobs.c.cluster_id == api.cluster_id, jobs.c.deleted_ms == 0)
            .group_by(jobs.c.state)
        ).all()
    expected = {state: n for state, n in rows}
    assert expected == {"SUBMITTED": 1, "KILLED": 1}
    got = {
        lab["state"]: v
        for lab, v in m["mrs_jobs_jobs"]
        if lab["cluster_id"] == api.cluster_id and lab["job_type"] == "SparkSubmit"
    }
    assert got == expected
    assert value(m, "mrs_jobs_queue_depth", **scope) == 1
    assert value(m, "mrs_jobs_jobs_deleting", **scope) == 1  # deleted, not purged yet
    assert value(m, "mrs_jobs_running_slots_used", **scope) == 0
    assert value(m, "mrs_jobs_running_slots_max", **scope) == 10
    assert value(m, "mrs_jobs_queue_max", **scope) == 50
    assert value(m, "mrs_jobs_store_up") == 1
    # Every cluster is reported, even one without jobs.
    assert value(m, "mrs_jobs_queue_depth", cluster_id=other.cluster_id) == 0


def test_slots_and_start_latencies_follow_transitions(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_cluster(api, max_running=4)
    base = f"/v2/{api.project_id}/clusters/{cid}/job-executions"
    ids = []
    for i in range(3):
        r = api.client.post(base, json={"job_type": "SparkSubmit", "job_name": f"s{i}"})
        assert r.status_code == 200, r.text
        ids.append(r.json()["job_submit_result"]["job_id"])
    # What the supervisor does: claim two (ACCEPTED), one of them starts RUNNING.
    with api.store.write() as conn:
        for job_id in ids[:2]:
            at = job_store.now_ms()
            assert job_store.transition(
                conn, job_id, JobState.ACCEPTED, values={"started_ms": at, "owner": "t"}
            )
        assert job_store.transition(conn, ids[0], JobState.RUNNING)

    m = scrape(api)
    scope = {"project_id": api.project_id, "cluster_id": cid}
    assert value(m, "mrs_jobs_running_slots_used", **scope) == 2
    assert value(m, "mrs_jobs_running_slots_max", **scope) == 4
    assert value(m, "mrs_jobs_queue_depth", **scope) == 1
    states = Counter({lab["state"]: v for lab, v in m["mrs_jobs_jobs"] if lab["cluster_id"] == cid})
    assert states == Counter({"ACCEPTED": 1, "RUNNING": 1, "SUBMITTED": 1})
    launch = "mrs_jobs_engine_launch_latency_seconds"
    assert value(m, f"{launch}_count", job_type="SparkSubmit") == 2
    assert value(m, f"{launch}_bucket", job_type="SparkSubmit", le="+Inf") == 2
    assert value(m, "mrs_jobs_engine_startup_seconds_count", job_type="SparkSubmit") == 1

    # A second scrape counts only what happened since the first.
    with api.store.write() as conn:
        assert job_store.transition(conn, ids[1], JobState.RUNNING)
    m = scrape(api)
    assert value(m, f"{launch}_count", job_type="SparkSubmit") == 2
    assert value(m, "mrs_jobs_engine_startup_seconds_count", job_type="SparkSubmit") == 2


def test_metrics_are_per_app_and_not_in_openapi(api, settings) -> None:  # type: ignore[no-untyped-def]
    from mrs_jobs.api.app import create_app

    api.submit()
    second = create_app(settings, api.store, runnable_types=frozenset({"SparkSubmit"}))
    r = client_for(second).get("/metrics")
    assert r.status_code == 200
    m = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(r.text)
        for s in f.samples
    }
    # The new app saw no submit of its own (no shared default registry) ...
    assert not any(
        name == "mrs_jobs_http_requests_total" and dict(labels).get("method") == "POST"
        for name, labels in m
    )
    # ... but reads the same store.
    assert any(name == "mrs_jobs_jobs" for name, _ in m)
    paths = client_for(second).get("/openapi.json").json()["paths"]
    assert not {"/metrics", "/health", "/ready"} & set(paths)
    assert "/v1.1/{project_id}/cluster_infos" in paths


def test_unmatched_routes_share_one_label(api) -> None:  # type: ignore[no-untyped-def]
    plain = client_for(api.client.app)
    for path in ("/nope/1", "/nope/2", "/v2/x"):
        assert plain.get(path).status_code == 404
    m = scrape(api)
    assert value(m, "mrs_jobs_http_requests_total", route="<unmatched>", status="404") == 3
