"""Tenant isolation across every API route (issue 8; contract sections 1, 10).

The route table below is checked against ``app.routes``: a route under ``/v2`` or ``/v1.1``
that is not in it fails the test, so a new route cannot be added without saying what a foreign
caller gets from it. For each tenant route:

(a) a credential of project B on project A's path -> 403 12000052;
(b) project B's own path naming A's job (or cluster) -> exactly the answer for an id that never
    existed (0176 / 12000003: same status, same body once the id is blanked out, and the same
    timing class);
(c) nothing in the store changed (row counts of every table, and A's job row).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_helpers import assert_error, client_for, new_cluster, other_project
from support import SigV4Auth, app_routes

from mrs_jobs.settings import Settings
from mrs_jobs.store import tables

V2 = "/v2/{project_id}/clusters/{cluster_id}/job-executions"
V11 = "/v1.1/{project_id}/cluster_infos"
V11_JOBS = "/v1.1/{project_id}"
SQL = "/v2/{project_id}/clusters/{cluster_id}/sql-execution"


@dataclass(frozen=True)
class Case:
    """How to call one tenant route, and what names a foreign object in it."""

    names: str  # "job" (a job id in the path or body), "cluster" or "list" (nothing to name)
    body: Callable[[str], Any] | None = None  # job id -> JSON body
    query: str = ""  # may name {cluster_id}
    # v1.1 submit: cluster id -> JSON body. Case "project-job": a job id with no cluster in
    # the path (v1.1), answered like "job".
    cluster_body: Callable[[str], Any] | None = None
    missing: str = "0176"  # the error_code of an id that names nothing here


def _sql_body(_job: str) -> dict[str, Any]:
    return {"sql_type": "spark", "sql_content": "SELECT 1"}


def _v1_submit_body(cluster: str) -> dict[str, Any]:
    return {"job_type": 2, "job_name": "probe", "cluster_id": cluster, "jar_path": "/x.py"}


def _submit_body(_job: str) -> dict[str, Any]:
    return {"job_type": "SparkSubmit", "job_name": "probe", "arguments": ["/x.py"]}


TENANT_ROUTES: dict[tuple[str, str], Case] = {
    ("POST", V2): Case("cluster", body=_submit_body),
    ("GET", V2): Case("cluster"),
    ("POST", V2 + "/batch-delete"): Case("job", body=lambda j: {"job_id_list": [j]}),
    ("GET", V2 + "/{job_execution_id}"): Case("job"),
    ("POST", V2 + "/{job_execution_id}/kill"): Case("job"),
    ("GET", V2 + "/{job_execution_id}/sql-result"): Case("job"),
    ("GET", V2 + "/{job_execution_id}/events"): Case("job"),
    ("GET", V2 + "/{job_execution_id}/log"): Case("job", query="?type=stdout"),
    ("GET", "/v2/{project_id}/clusters/{cluster_id}/files"): Case("cluster", query="?path=/tmp"),
    ("GET", "/v2/{project_id}/clusters/{cluster_id}/job-usage"): Case("cluster", query="?since=2w"),
    ("GET", "/v2/{project_id}/clusters/{cluster_id}/job-events"): Case("cluster"),
    ("POST", SQL): Case("cluster", body=_sql_body),
    ("GET", SQL + "/{sql_id}"): Case("job", missing="12000002"),
    ("POST", SQL + "/{sql_id}/cancel"): Case("job", missing="12000002"),
    ("GET", "/v2/{project_id}/permissions"): Case("list"),
    ("GET", V11): Case("list"),
    ("GET", V11 + "/{cluster_id}"): Case("cluster"),
    ("POST", V11_JOBS + "/jobs/submit-job"): Case("cluster", cluster_body=_v1_submit_body),
    ("GET", V11_JOBS + "/job-exes"): Case("cluster", query="?cluster_id={cluster_id}"),
    ("GET", V11_JOBS + "/job-exes/{job_exe_id}"): Case("project-job"),
    ("DELETE", V11_JOBS + "/job-executions/{job_execution_id}"): Case("project-job"),
}

# Not tenant data: liveness, metrics (documented in docs/security.md), the console's static
# files and the OpenAPI document.
PUBLIC_ROUTES = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/"),
    ("GET", "/console"),
    ("GET", "/console/"),
    ("GET", "/console/{name}"),
    ("GET", "/openapi.json"),
    ("GET", "/spark-history/{cluster_id}/{app_id}"),  # a browser follows it (docs/api.md)
}


def _url(template: str, project: str, cluster: str, job: str) -> str:
    return (
        template.replace("{project_id}", project)
        .replace("{cluster_id}", cluster)
        .replace("{job_execution_id}", job)
        .replace("{job_exe_id}", job)
        .replace("{sql_id}", job)
    )


def _call(
    client: Any, method: str, template: str, case: Case, project: str, cluster: str, job: str
):
    url = _url(template + case.query, project, cluster, job)
    if method == "GET":
        return client.get(url)
    if method == "DELETE":
        return client.delete(url)
    body = case.body(job) if case.body else None
    if case.cluster_body is not None:
        body = case.cluster_body(cluster)
    return client.post(url, json=body) if body is not None else client.post(url)


def _snapshot(store: Any, job_id: str) -> dict[str, Any]:
    with store.read() as conn:
        counts = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in tables.metadata.sorted_tables
        }
        row = conn.execute(sa.select(tables.jobs).where(tables.jobs.c.id == job_id)).one()
        events = conn.execute(
            sa.select(tables.job_events).where(tables.job_events.c.job_id == job_id)
        ).all()
    return {"counts": counts, "row": tuple(row), "events": [tuple(e) for e in events]}


def _paired_seconds(a: Callable[[], Any], b: Callable[[], Any], n: int = 30) -> tuple[float, ...]:
    """The fastest of ``n`` runs of each, the two taken in turn: a load that comes and goes on
    this machine slows both alike, and the fastest run is the call's own cost."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(n):
        for fn, out in ((a, times[0]), (b, times[1])):
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return min(times[0]), min(times[1])


def test_every_route_is_in_the_table(api) -> None:
    routes = app_routes(api.client.app)
    missing = routes - set(TENANT_ROUTES) - PUBLIC_ROUTES
    assert not missing, f"routes with no isolation expectation: {sorted(missing)}"
    for method, path in routes:
        if path.startswith(("/v2", "/v1.1")):
            assert (method, path) in TENANT_ROUTES, (method, path)
    stale = set(TENANT_ROUTES) - routes
    assert not stale, f"table names routes the app no longer has: {sorted(stale)}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The API tests' settings without the per-project rate limit: these tests send hundreds
    of requests at once to compare answers, and a 429 would hide the answer compared."""
    return Settings(data_dir=tmp_path / "data", port=0, rate_limit_per_second=0)


@pytest.fixture
def two_projects(api):
    a_job = api.submit("a-secret-name")
    b = other_project(api)
    return a_job, b


def test_foreign_credential_on_my_path_is_403(api, two_projects) -> None:
    a_job, b = two_projects
    token = api.credentials.create_token(b.project_id, "tok", 3600)
    token_client = client_for(api.client.app, headers={"X-Auth-Token": token})
    # B's AK signing with A's project id in X-Project-Id: still B's credential.
    b_claims_a = client_for(api.client.app, SigV4Auth(b.ak, b.sk, api.project_id))
    before = _snapshot(api.store, a_job)
    for (method, template), case in TENANT_ROUTES.items():
        for client in (b.client, token_client, b_claims_a):
            r = _call(client, method, template, case, api.project_id, api.cluster_id, a_job)
            assert_error(r, 403, "12000052")
            assert a_job not in r.text and "a-secret-name" not in r.text
    assert _snapshot(api.store, a_job) == before


def _blank(text: str, *ids: str) -> str:
    for i in ids:
        text = text.replace(i, "<id>")
    return text


def test_foreign_ids_look_exactly_like_missing_ones(api, two_projects) -> None:
    a_job, b = two_projects
    b_job = b.submit("b-own")  # B has jobs of its own: a lookup really has rows to scan
    assert b_job
    before = _snapshot(api.store, a_job)
    checked = 0
    for (method, template), case in TENANT_ROUTES.items():
        if case.names == "list":
            continue
        if case.names in ("job", "project-job"):
            # B's own cluster, A's job id vs a job id that never existed.
            probes = [(b.cluster_id, a_job), (b.cluster_id, str(uuid.uuid4()))]
            code = case.missing
        else:
            # A's cluster id on B's path vs a cluster id that never existed.
            probes = [(api.cluster_id, a_job), (str(uuid.uuid4()), a_job)]
            code = "12000003"
        (fc, fj), (mc, mj) = probes
        foreign = _call(b.client, method, template, case, b.project_id, fc, fj)
        missing = _call(b.client, method, template, case, b.project_id, mc, mj)
        assert_error(foreign, 400, code)
        assert_error(missing, 400, code)
        assert foreign.status_code == missing.status_code
        assert _blank(foreign.text, fc, fj) == _blank(missing.text, mc, mj), (template, method)
        assert set(foreign.headers) == set(missing.headers), (template, method)
        assert "a-secret-name" not in foreign.text

        call = functools.partial(_call, b.client, method, template, case, b.project_id)
        t_foreign, t_missing = _paired_seconds(
            functools.partial(call, fc, fj), functools.partial(call, mc, mj)
        )
        ratio = max(t_foreign, t_missing) / min(t_foreign, t_missing)
        assert ratio < 3, (method, template, t_foreign, t_missing)
        checked += 1
    assert checked == len([c for c in TENANT_ROUTES.values() if c.names != "list"])
    assert _snapshot(api.store, a_job) == before


def test_job_routes_with_a_foreign_cluster_and_job(api, two_projects) -> None:
    """B's path naming A's cluster *and* A's job: the cluster is unknown to B (12000003)."""
    a_job, b = two_projects
    before = _snapshot(api.store, a_job)
    for (method, template), case in TENANT_ROUTES.items():
        if case.names != "job":
            continue
        r = _call(b.client, method, template, case, b.project_id, api.cluster_id, a_job)
        assert_error(r, 400, "12000003")
        assert a_job not in r.text or case.body is None
    assert _snapshot(api.store, a_job) == before


def test_a_jobs_in_one_cluster_are_invisible_from_another_of_the_same_project(api) -> None:
    """Scoped by cluster too: a job of cluster 1 is 0176 through cluster 2."""
    a_job = api.submit("c1")
    c2 = new_cluster(api)
    before = _snapshot(api.store, a_job)
    for (method, template), case in TENANT_ROUTES.items():
        if case.names != "job":
            continue
        r = _call(api.client, method, template, case, api.project_id, c2, a_job)
        assert_error(r, 400, case.missing)
    r = api.client.get(_url(V2, api.project_id, c2, ""))
    assert r.status_code == 202 and r.json()["total_record"] == 0
    assert _snapshot(api.store, a_job) == before


def test_cluster_lists_show_only_my_project(api, two_projects) -> None:
    a_job, b = two_projects
    r = b.client.get(_url(V11, b.project_id, "", ""))
    assert r.status_code == 200, r.text
    ids = {c["clusterId"] for c in r.json()["clusters"]}
    assert ids == {b.cluster_id}
    assert api.cluster_id not in r.text and api.project_id not in r.text
    r = b.client.get(_url(V2, b.project_id, b.cluster_id, ""))
    assert r.status_code == 202
    assert a_job not in r.text
