"""MRS v1.1 cluster reads (``GET /v1.1/{project_id}/cluster_infos[/{cluster_id}]``): the shape
the official SDK's v1 model reads, paging and filters, authentication and project scoping."""

from __future__ import annotations

import pytest
from api_helpers import assert_error, client_for, new_cluster, other_project

STRING_FIELDS = (
    "clusterId",
    "clusterName",
    "clusterState",
    "clusterVersion",
    "createAt",
    "updateAt",
    "chargingStartTime",
    "totalNodeNum",
    "masterNodeNum",
    "coreNodeNum",
    "hadoopVersion",
    "tenantId",
)


def infos(api) -> str:  # type: ignore[no-untyped-def]
    return f"/v1.1/{api.project_id}/cluster_infos"


def listing(api, **query):  # type: ignore[no-untyped-def]
    r = api.client.get(infos(api), params=query)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"clusterTotal", "clusters"}
    assert isinstance(body["clusterTotal"], int)
    return body["clusterTotal"], [c["clusterId"] for c in body["clusters"]]


def test_show_has_the_sdk_v1_shape(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.get(f"{infos(api)}/{api.cluster_id}")
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"]
    body = r.json()
    assert set(body) == {"cluster"}
    c = body["cluster"]
    for name in STRING_FIELDS:
        assert isinstance(c[name], str), (name, c[name])
    assert c["clusterId"] == api.cluster_id
    assert (c["clusterName"], c["clusterState"]) == ("local", "running")
    assert c["clusterVersion"].startswith("mrs-jobs ")
    assert c["createAt"].isdigit() and len(c["createAt"]) == 10  # epoch seconds, as MRS
    assert (c["masterNodeNum"], c["coreNodeNum"]) == ("1", "0")
    assert c["tenantId"] == api.project_id
    assert isinstance(c["safeMode"], int) and isinstance(c["clusterType"], int)
    names = [comp["componentName"] for comp in c["componentList"]]
    assert names == ["Spark", "Hive", "Hadoop", "Flink"]  # the bootstrap cluster's
    for comp in c["componentList"]:
        assert set(comp) == {"componentId", "componentName", "componentVersion", "componentDesc"}
        assert all(isinstance(v, str) for v in comp.values())
    assert len({comp["componentId"] for comp in c["componentList"]}) == 4
    spark = c["componentList"][0]
    assert spark["componentVersion"], "the pyspark version is known"


def test_list_shape_paging_and_order(api) -> None:  # type: ignore[no-untyped-def]
    extra = [new_cluster(api) for _ in range(4)]
    total, ids = listing(api)
    assert total == 5
    assert set(ids) == {api.cluster_id, *extra}
    assert ids[-1] == api.cluster_id  # newest first: the bootstrap cluster is the oldest

    total, page1 = listing(api, pageSize="2", currentPage="1")
    _, page2 = listing(api, pageSize="2", currentPage="2")
    _, page3 = listing(api, pageSize="2", currentPage="3")
    assert total == 5
    assert (len(page1), len(page2), len(page3)) == (2, 2, 1)
    assert page1 + page2 + page3 == ids
    assert listing(api, pageSize="2", currentPage="4") == (5, [])
    assert listing(api, pageSize="2", currentPage="0")[1] == page1  # 0 reads as page 1
    assert listing(api, pageSize="10")[1] == ids


def test_list_filters(api) -> None:  # type: ignore[no-untyped-def]
    other = new_cluster(api)  # named "extra"
    assert listing(api, clusterName="extra") == (1, [other])
    assert listing(api, clusterName="nope") == (0, [])
    assert listing(api, clusterState="running")[0] == 2
    assert listing(api, clusterState="existing")[0] == 2
    assert listing(api, clusterState="terminated") == (0, [])
    assert listing(api, tags="env*prod") == (0, [])  # no cluster carries tags
    assert listing(api, enterpriseProjectId="0")[0] == 2


@pytest.mark.parametrize(
    "query",
    [
        {"pageSize": "0"},
        {"pageSize": "ten"},
        {"pageSize": "-1"},
        {"currentPage": "x"},
        {"pageSize": "2147483647"},
        {"clusterState": "sleeping"},
        {"tags": "*v"},
    ],
)
def test_invalid_query(api, query) -> None:  # type: ignore[no-untyped-def]
    assert_error(api.client.get(infos(api), params=query), 400, "12000002")


def test_unknown_cluster(api) -> None:  # type: ignore[no-untyped-def]
    msg = assert_error(api.client.get(f"{infos(api)}/no-such-cluster"), 400, "12000003")
    assert "no-such-cluster" in msg


def test_other_projects_clusters_are_invisible(api) -> None:  # type: ignore[no-untyped-def]
    other = other_project(api)
    # Our credential on their path: 403; their cluster through our project: unknown.
    assert_error(api.client.get(f"/v1.1/{other.project_id}/cluster_infos"), 403, "12000052")
    assert_error(
        api.client.get(f"/v1.1/{other.project_id}/cluster_infos/{other.cluster_id}"),
        403,
        "12000052",
    )
    assert_error(api.client.get(f"{infos(api)}/{other.cluster_id}"), 400, "12000003")
    assert other.cluster_id not in listing(api)[1]
    r = other.client.get(f"/v1.1/{other.project_id}/cluster_infos")
    assert r.status_code == 200
    assert [c["clusterId"] for c in r.json()["clusters"]] == [other.cluster_id]


def test_authentication_required(api) -> None:  # type: ignore[no-untyped-def]
    plain = client_for(api.client.app)
    assert_error(plain.get(infos(api)), 401, "APIGW.0301")
    assert_error(plain.get(f"{infos(api)}/{api.cluster_id}"), 401, "APIGW.0301")
    token = api.credentials.create_token(api.project_id, "scripts", 600)
    r = plain.get(infos(api), headers={"X-Auth-Token": token})
    assert r.status_code == 200 and r.json()["clusterTotal"] == 1
