"""Errors and HTTP plumbing (contract §2, §10, §12): shapes, request ids, 404/405/413, OpenAPI."""

from __future__ import annotations

import re
import uuid

from api_helpers import assert_error, client_for, new_cluster
from jobrows import count_jobs
from sqlalchemy.exc import OperationalError
from support import SigV4Auth

from mrs_jobs.services import jobs as jobs_service_module
from mrs_jobs.store import jobs as job_store

MIB = 1024 * 1024


def test_every_error_has_the_mrs_shape_and_a_request_id(api) -> None:
    job_id = api.submit()
    small = new_cluster(api, max_queued=0)
    base_small = f"/v2/{api.project_id}/clusters/{small}/job-executions"
    plain = client_for(api.client.app)
    other_pid = api.projects.create_project("x")
    cases = [
        (api.client.post(api.base, json={"job_type": "Nope", "job_name": "x"}), 400),
        (api.client.get(f"/v2/{api.project_id}/clusters/ghost/job-executions"), 400),
        (api.client.get(f"{api.base}/{uuid.uuid4()}"), 400),
        (api.client.post(api.base, json={"job_type": "HiveSql", "job_name": "x"}), 400),
        (api.client.get(f"{api.base}/{job_id}/sql-result"), 400),
        (api.client.post(base_small, json={"job_type": "SparkSubmit", "job_name": "x"}), 429),
        (plain.get(api.base), 401),
        (
            api.signed_as(api.ak, api.sk, other_pid).get(
                api.base.replace(api.project_id, other_pid)
            ),
            403,
        ),
        (api.client.get("/no/such/route"), 404),
        (api.client.delete(api.base), 405),
        (api.client.post(api.base, content=b"x" * (MIB + 1)), 413),
    ]
    seen = set()
    for r, status in cases:
        assert 400 <= r.status_code < 600
        assert r.status_code == status, (r.request.url, r.status_code, r.text)
        body = r.json()
        assert set(body) == {"error_code", "error_msg"}, body
        assert isinstance(body["error_code"], str) and body["error_code"]
        assert isinstance(body["error_msg"], str) and body["error_msg"]
        rid = r.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", rid)
        seen.add(rid)
    assert len(seen) == len(cases)


def test_request_ids_are_unique_and_on_successes(api) -> None:
    job_id = api.submit()
    responses = [api.client.get(api.base) for _ in range(10)]
    responses += [api.client.get(f"{api.base}/{job_id}") for _ in range(5)]
    responses += [api.client.post(api.base, json={"job_type": "SparkSubmit", "job_name": "r"})]
    responses += [api.client.post(f"{api.base}/{job_id}/kill")]
    responses += [api.client.post(f"{api.base}/batch-delete", json={"job_id_list": [job_id]})]
    responses += [api.client.get("/openapi.json"), api.client.get("/health")]
    assert all(r.status_code < 300 for r in responses), [r.status_code for r in responses]
    ids = [r.headers["x-request-id"] for r in responses]
    assert len(set(ids)) == len(ids)


def test_unknown_routes_are_json_404(api, subtests) -> None:
    for method, path in [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", f"/v2/{api.project_id}/clusters/{api.cluster_id}/unknown"),
        ("GET", f"/v2/{api.project_id}/clusters"),
        ("GET", f"{api.base}/a/b/c"),
        ("POST", f"{api.base}/{uuid.uuid4()}/restart"),
        ("GET", f"/v3/{api.project_id}/clusters/{api.cluster_id}/job-executions"),
    ]:
        with subtests.test(method=method, path=path):
            assert_error(api.client.request(method, path), 404, "12000002")


def test_wrong_method_is_json_405_with_allow(api, subtests) -> None:
    job_id = api.submit()
    for method, path, allowed in [
        ("DELETE", api.base, {"GET", "POST"}),
        ("PUT", api.base, {"GET", "POST"}),
        ("DELETE", f"{api.base}/{job_id}", {"GET"}),
        ("GET", f"{api.base}/{job_id}/kill", {"POST"}),
        ("POST", f"{api.base}/{job_id}/sql-result", {"GET"}),
        ("PUT", f"{api.base}/batch-delete", {"GET", "POST"}),
    ]:
        with subtests.test(method=method, path=path):
            r = api.client.request(method, path)
            assert_error(r, 405, "12000002")
            # Starlette names the methods of the first route on the path only (see report).
            listed = {m.strip() for m in r.headers["allow"].split(",")}
            assert listed and method not in listed
            assert listed <= allowed | {"HEAD"}, listed
    assert count_jobs(api.store, deleted_ms=0) == 1


def test_body_over_one_mib_is_413(api) -> None:
    padding = " " * MIB
    for path in (api.base, f"{api.base}/batch-delete"):
        r = api.client.post(path, content=b"{" + padding.encode() + b"}")
        assert "1048576" in assert_error(r, 413, "12000002")
    assert count_jobs(api.store) == 0


def test_chunked_body_over_one_mib_is_413(api) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(17):
            yield b" " * 65536

    plain = client_for(api.client.app)
    r = plain.post(api.base, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "12000002")


def test_body_of_exactly_one_mib_is_accepted(api) -> None:
    core = b'{"job_type": "SparkSubmit", "job_name": "big"}'
    body = core + b" " * (MIB - len(core))
    assert len(body) == MIB
    r = api.client.post(api.base, content=body)
    assert r.status_code == 200, r.text


def test_get_with_json_content_type_and_no_body(api) -> None:
    job_id = api.submit()
    headers = {"Content-Type": "application/json"}
    assert api.client.get(api.base, headers=headers).status_code == 202
    r = api.client.get(api.base, headers={**headers, "Content-Length": "0"})
    assert r.status_code == 202, r.text
    r = api.client.get(f"{api.base}/{job_id}", headers=headers)
    assert r.status_code == 202 and r.json()["job_detail"]["job_id"] == job_id
    r = api.client.get(f"{api.base}/{job_id}/sql-result", headers=headers)
    assert_error(r, 400, "0179")  # reached the handler, not a parse error


def test_bad_path_ids_are_12000002(api, subtests) -> None:
    for project, cluster in [
        ("abc-def", api.cluster_id),
        ("a" * 65, api.cluster_id),
        ("ab_cd", api.cluster_id),
        ("ab%20cd", api.cluster_id),
        ("ab.cd", api.cluster_id),
        (api.project_id, "a" * 65),
        (api.project_id, "bad.cluster"),
        (api.project_id, "bad%20cluster"),
        (api.project_id, "caf%C3%A9"),
    ]:
        with subtests.test(project=project, cluster=cluster):
            plain = client_for(api.client.app, SigV4Auth(api.ak, api.sk, api.project_id))
            r = plain.get(f"/v2/{project}/clusters/{cluster}/job-executions")
            msg = assert_error(r, 400, "12000002")
            assert ("project_id" in msg) or ("cluster_id" in msg), msg


def test_over_long_job_ids_are_0176(api, subtests) -> None:
    for length in (37, 64, 65, 500):
        job_id = "a" * length
        for method, suffix in [("GET", ""), ("POST", "/kill"), ("GET", "/sql-result")]:
            with subtests.test(length=length, op=suffix):
                r = api.client.request(method, f"{api.base}/{job_id}{suffix}")
                assert "does not exist" in assert_error(r, 400, "0176")


def test_nul_in_a_job_id_is_0176(api) -> None:
    for method, suffix in [("GET", ""), ("POST", "/kill"), ("GET", "/sql-result")]:
        r = api.client.request(method, f"{api.base}/a%00b{suffix}")
        assert_error(r, 400, "0176")


def test_unexpected_error_is_json_500_with_request_id(api, monkeypatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(job_store, "list_visible", boom)
    client = client_for(
        api.client.app,
        SigV4Auth(api.ak, api.sk, api.project_id),
        raise_server_exceptions=False,
    )
    r = client.get(api.base)
    msg = assert_error(r, 500, "0193")
    assert "bug" not in msg  # no internals leak


def test_store_errors_map_to_0193_and_503(api, monkeypatch) -> None:
    def failing(*_a: object, **_k: object) -> None:
        raise OperationalError("SELECT", {}, Exception("disk I/O error"))

    def locked(*_a: object, **_k: object) -> None:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(job_store, "list_visible", failing)
    assert_error(api.client.get(api.base), 500, "0193")
    monkeypatch.setattr(job_store, "list_visible", locked)
    r = api.client.get(api.base)
    assert_error(r, 503, "0202")
    assert int(r.headers["retry-after"]) > 0
    monkeypatch.setattr(jobs_service_module.job_store, "insert_job", failing)
    r = api.client.post(api.base, json={"job_type": "SparkSubmit", "job_name": "x"})
    assert_error(r, 500, "0193")
    monkeypatch.undo()
    assert count_jobs(api.store) == 0


def test_openapi_lists_the_six_operations(api) -> None:
    r = api.client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    prefix = "/v2/{project_id}/clusters/{cluster_id}/job-executions"
    ops = {
        ("post", prefix),
        ("get", prefix),
        ("get", prefix + "/{job_execution_id}"),
        ("post", prefix + "/{job_execution_id}/kill"),
        ("post", prefix + "/batch-delete"),
        ("get", prefix + "/{job_execution_id}/sql-result"),
    }
    found = {(m, p) for p, item in spec["paths"].items() for m in item if m != "parameters"}
    assert ops <= found, ops - found

    def body_props(path: str) -> dict[str, object]:
        rb = spec["paths"][path]["post"]["requestBody"]
        schema = rb["content"]["application/json"]["schema"]
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return schema

    submit = body_props(prefix)
    assert {"job_type", "job_name", "arguments", "properties"} <= set(submit["properties"])
    assert set(submit["required"]) == {"job_type", "job_name"}
    assert submit.get("additionalProperties") is False
    delete = body_props(prefix + "/batch-delete")
    assert set(delete["properties"]) == {"job_id_list"}
    assert delete["required"] == ["job_id_list"]
    # Path parameters are documented for every operation.
    for method, path in ops:
        names = {p["name"] for p in spec["paths"][path][method].get("parameters", [])}
        assert {"project_id", "cluster_id"} <= names, (method, path, names)
