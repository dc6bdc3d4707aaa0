"""The real server through the official SDK's **v1** client: ``list_clusters`` and
``show_cluster_details`` (``/v1.1/{project_id}/cluster_infos``), plus ``/ready``, ``/metrics``
and JSON logs of the running process (``MRS_JOBS_LOG_FORMAT=json``, ``MRS_JOBS_ACCESS_LOG``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from mrs_acceptance import RunningServer, expect_error, start_server, stop_server, under_sdk_home
from prometheus_client.parser import text_string_to_metric_families

with under_sdk_home():  # the SDK writes ~/.huaweicloud on import
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkmrs.v1 import ListClustersRequest, MrsClient, ShowClusterDetailsRequest


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(
        tmp_path_factory.mktemp("server"),
        extra_env={"MRS_JOBS_LOG_FORMAT": "json", "MRS_JOBS_ACCESS_LOG": "true"},
    )
    try:
        yield srv
    finally:
        stop_server(srv)


def v1(server: RunningServer, ak: str | None = None, sk: str | None = None, project=None):  # type: ignore[no-untyped-def]
    return (
        MrsClient.new_builder()
        .with_credentials(
            BasicCredentials(
                ak or server.boot["ak"], sk or server.boot["sk"], project or server.project_id
            )
        )
        .with_endpoints([server.endpoint])
        .build()
    )


def test_list_clusters(server: RunningServer) -> None:
    resp = v1(server).list_clusters(ListClustersRequest())
    assert resp.cluster_total == 1
    (c,) = resp.clusters
    assert (c.cluster_id, c.cluster_name, c.cluster_state) == (
        server.cluster_id,
        "local",
        "running",
    )
    assert c.cluster_version.startswith("mrs-jobs ")
    assert (c.master_node_num, c.core_node_num, c.total_node_num) == ("1", "0", "1")
    assert c.create_at.isdigit()
    names = [comp.component_name for comp in c.component_list]
    assert names == ["Spark", "Hive", "Hadoop", "Flink"]
    assert all(comp.component_id for comp in c.component_list)


def test_paging_and_filters_through_the_sdk(server: RunningServer) -> None:
    made = [
        server.admin("create-cluster", server.project_id, "--name", f"extra{i}") for i in range(3)
    ]
    client = v1(server)
    everything = client.list_clusters(ListClustersRequest(page_size="10"))
    assert everything.cluster_total == 4
    ids = [c.cluster_id for c in everything.clusters]
    assert set(ids) == {server.cluster_id, *made}
    pages = [
        client.list_clusters(ListClustersRequest(page_size="3", current_page=str(n)))
        for n in (1, 2)
    ]
    assert [p.cluster_total for p in pages] == [4, 4]
    assert [c.cluster_id for p in pages for c in p.clusters] == ids
    named = client.list_clusters(ListClustersRequest(cluster_name="extra1"))
    assert [c.cluster_id for c in named.clusters] == [made[1]]
    running = client.list_clusters(ListClustersRequest(cluster_state="running"))
    assert running.cluster_total == 4
    gone = client.list_clusters(ListClustersRequest(cluster_state="terminated"))
    assert (gone.cluster_total, gone.clusters) == (0, [])


def test_show_cluster_details(server: RunningServer) -> None:
    client = v1(server)
    c = client.show_cluster_details(ShowClusterDetailsRequest(cluster_id=server.cluster_id)).cluster
    assert (c.cluster_id, c.cluster_state, c.tenant_id) == (
        server.cluster_id,
        "running",
        server.project_id,
    )
    spark = c.component_list[0]
    assert (spark.component_name, bool(spark.component_version)) == ("Spark", True)
    expect_error(
        lambda: client.show_cluster_details(ShowClusterDetailsRequest(cluster_id="nope")),
        400,
        "12000003",
    )


def test_other_projects(server: RunningServer) -> None:
    other = server.admin("create-project", "other")
    creds = json.loads(server.admin("create-aksk", other))
    theirs = v1(server, creds["ak"], creds["sk"], other)
    assert theirs.list_clusters(ListClustersRequest()).cluster_total == 0
    expect_error(
        lambda: theirs.show_cluster_details(
            ShowClusterDetailsRequest(cluster_id=server.cluster_id)
        ),
        400,
        "12000003",
    )
    # Our credential, their project in the path: refused, not answered.
    mixed = v1(server, project=other)
    expect_error(lambda: mixed.list_clusters(ListClustersRequest()), 403, "12000052")
    wrong = v1(server, sk="wrong-secret-key-wrong-secret-key-0000")
    expect_error(lambda: wrong.list_clusters(ListClustersRequest()), 401, "APIGW.0301")


def test_ready_metrics_and_json_logs(server: RunningServer) -> None:
    r = httpx.get(f"{server.endpoint}/ready", timeout=10)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["supervisor"]) == ("ready", "ok")

    v1(server).list_clusters(ListClustersRequest())
    r = httpx.get(f"{server.endpoint}/metrics", timeout=10)
    assert r.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(r.text)
        for s in f.samples
    }
    listed = [
        v
        for (name, labels), v in samples.items()
        if name == "mrs_jobs_http_requests_total"
        and dict(labels).get("route") == "/v1.1/{project_id}/cluster_infos"
        and dict(labels).get("status") == "200"
    ]
    assert listed and listed[0] >= 1
    assert samples[("mrs_jobs_store_up", ())] == 1
    assert samples[("mrs_jobs_supervisor_heartbeat_age_seconds", ())] < 15

    lines = [line for line in server.stderr().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(rec) for rec in records)
    access = [
        rec
        for rec in records
        if rec.get("event") == "http.request" and rec.get("route", "").startswith("/v1.1/")
    ]
    assert access, records[-5:]
    assert all(rec["request_id"] and rec["project_id"] for rec in access)
    assert server.boot["sk"] not in server.stderr()
