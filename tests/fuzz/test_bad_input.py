"""Bad input, systematically: every request below gets a clear MRS error and changes nothing.

"Nothing" is checked by a fingerprint of the whole store (row counts of every table, and each
job's state, result and deletion/kill marks) taken before and after each request. Runs on
SQLite and PostgreSQL through the API tests' ``api`` fixture.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api.api_helpers import other_project
from fastapi.testclient import TestClient
from fuzz_support import fingerprint, mrs_error_problems
from jobrows import add_sql_results, insert_job, raw_job
from support import SigV4Auth

MIB = 1024 * 1024
VALID = {"job_type": "SparkSubmit", "job_name": "ok", "arguments": ["/a.py"], "properties": {}}


@pytest.fixture
def client(api: Any) -> Iterator[TestClient]:
    """A signed client that turns an unhandled server error into a 500 instead of raising."""
    c = TestClient(api.client.app, base_url="http://127.0.0.1:8080", raise_server_exceptions=False)
    c.auth = SigV4Auth(api.ak, api.sk, api.project_id)
    yield c
    c.close()


def refused(
    api: Any, response: httpx.Response, status: int, code: str, before: dict[str, Any]
) -> str:
    """The exact MRS error (contract section 10), and an unchanged store; returns error_msg."""
    problems = mrs_error_problems(response.status_code, response.headers, response.content)
    assert not problems, (problems, response.status_code, response.text[:300])
    body = response.json()
    assert (response.status_code, body["error_code"]) == (status, code), body
    assert fingerprint(api.store) == before, "a refused request changed the store"
    return body["error_msg"]


def send(client: TestClient, method: str, url: str, body: bytes | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    return client.request(method, url, content=body, headers=headers)


# ------------------------------------------------------------------------ malformed JSON

MALFORMED: list[tuple[str, bytes]] = [
    ("unterminated", b"{"),
    ("missing value", b'{"job_type": }'),
    ("trailing comma", b'{"job_type": "SparkSubmit", "job_name": "a",}'),
    ("single quotes", b"{'job_type': 'SparkSubmit'}"),
    ("two documents", b'{"a": 1}{"b": 2}'),
    ("array", b"[]"),
    ("null", b"null"),
    ("string", b'"job"'),
    ("number", b"123"),
    ("true", b"true"),
    ("bare NaN", b"NaN"),
    ("whitespace only", b"   \n\t "),
    ("NUL byte", b"\x00"),
    ("NUL inside", b'{"job_type": "SparkSubmit"\x00, "job_name": "a"}'),
    ("invalid UTF-8", b'{"job_name": "\xff\xfe"}'),
    ("truncated UTF-8", b'{"job_name": "\xe2\x82"}'),
    ("lone surrogate escape", b'{"job_type":"SparkSubmit","job_name":"a","arguments":["\\ud800"]}'),
    (
        "lone low surrogate",
        b'{"job_type":"SparkSubmit","job_name":"a","properties":{"\\udfff":"v"}}',
    ),
    ("surrogate id", b'{"job_id_list": ["\\ud800"]}'),
    ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000),
    ("nested objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("5,000-digit number", b'{"job_id_list": [' + b"7" * 5000 + b"]}"),
    (
        "5,000-digit argument",
        b'{"job_type":"SparkSubmit","job_name":"a","arguments":[' + b"9" * 5000 + b"]}",
    ),
    ("comment", b'{"job_type": "SparkSubmit" /* c */, "job_name": "a"}'),
    ("unquoted key", b'{job_type: "SparkSubmit", job_name: "a"}'),
    ("form-encoded", b"job_type=SparkSubmit&job_name=a"),
]


@pytest.mark.parametrize("suffix", ["", "/batch-delete"], ids=["submit", "batch-delete"])
def test_malformed_json(api: Any, client: TestClient, suffix: str, subtests: Any) -> None:
    insert_job(api.store, api.project_id, api.cluster_id)
    for name, body in MALFORMED:
        with subtests.test(body=name):
            before = fingerprint(api.store)
            r = send(client, "POST", api.base + suffix, body)
            msg = refused(api, r, 400, "12000002", before)
            assert "body" in msg or "job_" in msg, msg


# -------------------------------------------------------------------------- wrong types

WRONG: list[Any] = [None, 0, 1.5, True, "text", [], {}, ["x", 1], [None], {"k": 1}, {"k": None}]


def _type_ok(field: str, value: Any) -> bool:
    if field in ("job_type", "job_name"):
        return isinstance(value, str)
    if field == "arguments":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def test_wrong_types_for_every_submit_field(api: Any, client: TestClient, subtests: Any) -> None:
    for field in VALID:
        for value in WRONG:
            if _type_ok(field, value):
                continue
            with subtests.test(field=field, value=value):
                before = fingerprint(api.store)
                body = json.dumps({**VALID, field: value}).encode()
                msg = refused(api, send(client, "POST", api.base, body), 400, "12000002", before)
                assert field in msg, msg
        with subtests.test(field=field, value="missing"):
            if field in ("job_type", "job_name"):
                before = fingerprint(api.store)
                body = json.dumps({k: v for k, v in VALID.items() if k != field}).encode()
                msg = refused(api, send(client, "POST", api.base, body), 400, "12000002", before)
                assert field in msg, msg
    with subtests.test(field="unknown"):
        before = fingerprint(api.store)
        body = json.dumps({**VALID, "jobType": "SparkSubmit"}).encode()
        msg = refused(api, send(client, "POST", api.base, body), 400, "12000002", before)
        assert "jobType" in msg, msg


def test_wrong_types_for_job_id_list(api: Any, client: TestClient, subtests: Any) -> None:
    real = insert_job(api.store, api.project_id, api.cluster_id)
    for value in [None, 0, True, real, {}, {"id": real}, [], [1], [None], [[real]], [{"a": 1}],
                  [real, 5]]:  # fmt: skip
        with subtests.test(value=value):
            before = fingerprint(api.store)
            body = json.dumps({"job_id_list": value}).encode()
            r = send(client, "POST", f"{api.base}/batch-delete", body)
            msg = refused(api, r, 400, "12000002", before)
            assert "job_id_list" in msg, msg
    for extra in ({}, {"job_id_list": [real], "force": True}):
        with subtests.test(body=extra):
            before = fingerprint(api.store)
            r = send(client, "POST", f"{api.base}/batch-delete", json.dumps(extra).encode())
            refused(api, r, 400, "12000002", before)
    assert raw_job(api.store, real)["deleted_ms"] == 0


# ------------------------------------------------------------------------- huge requests


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("POST", ""), ("POST", "/batch-delete"), ("POST", "/{job}/kill"), ("GET", "")],
)
def test_two_mib_body_is_413(api: Any, client: TestClient, method: str, suffix: str) -> None:
    job = insert_job(api.store, api.project_id, api.cluster_id)
    body = json.dumps({**VALID, "arguments": ["x" * (2 * MIB)]}).encode()
    before = fingerprint(api.store)
    r = send(client, method, api.base + suffix.format(job=job), body)
    assert "1048576" in refused(api, r, 413, "12000002", before)

    def chunks() -> Iterator[bytes]:
        for _ in range(32):
            yield b" " * 65536

    plain = TestClient(api.client.app, base_url="http://127.0.0.1:8080")
    r = plain.request(method, api.base + suffix.format(job=job), content=chunks(), headers=_json())
    refused(api, r, 413, "12000002", before)


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


@pytest.mark.parametrize("count", [1001, 10_000])
def test_oversized_batch_delete_deletes_nothing(api: Any, client: TestClient, count: int) -> None:
    real = [insert_job(api.store, api.project_id, api.cluster_id) for _ in range(5)]
    ids = real + [str(uuid.uuid4()) for _ in range(count - len(real))]
    before = fingerprint(api.store)
    r = send(client, "POST", f"{api.base}/batch-delete", json.dumps({"job_id_list": ids}).encode())
    msg = refused(api, r, 400, "12000002", before)
    assert str(count) in msg and "1000" in msg, msg
    for job_id in real:
        assert client.get(f"{api.base}/{job_id}").status_code == 202


def test_huge_arguments_and_properties_are_refused(api: Any, client: TestClient) -> None:
    for body, what in [
        ({**VALID, "arguments": ["a" * 100_000, "b" * 50_001]}, "arguments"),
        ({**VALID, "arguments": ["a"] * 150_001}, "arguments"),
        ({**VALID, "properties": {f"k{i}": "v" * 10 for i in range(200)}}, "properties"),
    ]:
        before = fingerprint(api.store)
        r = send(client, "POST", api.base, json.dumps(body).encode())
        assert what in refused(api, r, 400, "12000002", before)


# ------------------------------------------------------------------------------ NUL bytes


def test_nul_in_every_string_field_is_refused(api: Any, client: TestClient, subtests: Any) -> None:
    cases = {
        "job_type": {**VALID, "job_type": "Spark\x00Submit"},
        "job_name": {**VALID, "job_name": "ok\x00"},
        "arguments": {**VALID, "arguments": ["/a.py", "x\x00y"]},
        "properties key": {**VALID, "properties": {"spark.k\x00": "v"}},
        "properties[": {**VALID, "properties": {"spark.k": "v\x00"}},
    }
    for what, body in cases.items():
        with subtests.test(field=what):
            before = fingerprint(api.store)
            r = send(client, "POST", api.base, json.dumps(body).encode())
            msg = refused(api, r, 400, "12000002", before)
            assert what.split()[0].rstrip("[") in msg, msg
    for control in ("\x01", "\x1b", "\x7f", "\x0b"):
        with subtests.test(control=repr(control)):
            before = fingerprint(api.store)
            body = {**VALID, "arguments": [f"a{control}b"]}
            r = send(client, "POST", api.base, json.dumps(body).encode())
            assert "control" in refused(api, r, 400, "12000002", before)


def test_nul_in_a_batch_delete_id(api: Any, client: TestClient) -> None:
    real = insert_job(api.store, api.project_id, api.cluster_id)
    before = fingerprint(api.store)
    body = json.dumps({"job_id_list": [real, real + "\x00"]}).encode()
    r = send(client, "POST", f"{api.base}/batch-delete", body)
    refused(api, r, 400, "0176", before)
    assert raw_job(api.store, real)["deleted_ms"] == 0


LIST_PARAMS = [
    "job_name", "job_id", "user", "queue", "job_type", "job_state", "job_result",
    "submitted_time_begin", "submitted_time_end", "limit", "offset", "sort_by",
]  # fmt: skip


def test_nul_in_query_parameters(api: Any, client: TestClient, subtests: Any) -> None:
    job = insert_job(api.store, api.project_id, api.cluster_id, workdir="/nonexistent")
    for name in LIST_PARAMS:
        with subtests.test(param=name):
            before = fingerprint(api.store)
            r = client.get(api.base, params={name: "1\x00"})
            assert name in refused(api, r, 400, "12000002", before)
    for name, value in [("type", "std\x00out"), ("offset", "1\x00"), ("limit", "\x0010")]:
        with subtests.test(log_param=name):
            before = fingerprint(api.store)
            r = client.get(f"{api.base}/{job}/log", params={name: value})
            assert name in refused(api, r, 400, "12000002", before)


def test_nul_in_path_ids(api: Any, client: TestClient, subtests: Any) -> None:
    job = insert_job(api.store, api.project_id, api.cluster_id)
    ops = [("GET", ""), ("POST", "/kill"), ("GET", "/sql-result"), ("GET", "/log")]
    for method, suffix in ops:
        with subtests.test(op=suffix, id="job"):
            before = fingerprint(api.store)
            r = send(client, method, f"{api.base}/{job}%00{suffix}")
            refused(api, r, 400, "0176", before)
        for bad_base in (
            f"/v2/{api.project_id}%00/clusters/{api.cluster_id}/job-executions",
            f"/v2/{api.project_id}/clusters/{api.cluster_id}%00/job-executions",
        ):
            with subtests.test(op=suffix, base=bad_base):
                before = fingerprint(api.store)
                r = send(client, method, f"{bad_base}/{job}{suffix}")
                msg = refused(api, r, 400, "12000002", before)
                assert "project_id" in msg or "cluster_id" in msg, msg


# -------------------------------------------------------------------------------- unicode


def test_unicode_job_names_are_refused_by_the_name_rule(
    api: Any, client: TestClient, subtests: Any
) -> None:
    for name in ["caf\u00e9", "\u4f5c\u4e1a", "job\U0001f680", "\u0430bc", "a b", "", "x" * 65,
                 "a\u200bb", "\uff41"]:  # fmt: skip
        with subtests.test(name=name):
            before = fingerprint(api.store)
            r = send(client, "POST", api.base, json.dumps({**VALID, "job_name": name}).encode())
            msg = refused(api, r, 400, "12000002", before)
            assert "job_name" in msg and "[A-Za-z0-9_-]" in msg, msg


def test_unicode_arguments_and_properties_are_accepted_and_echoed(
    api: Any, client: TestClient
) -> None:
    arguments = [
        "/a.py", "caf\u00e9", "\u4f5c\u4e1a", "\U0001f680", "\u0645\u0631\u062d\u0628\u0627",
        "e\u0301", "$(rm -rf /); `x` | y > z",
    ]  # fmt: skip
    properties = {"spark.app.name": "\u00fcnic\u00f8de", "k\u00e9y": "v", "db.p\u00e4ssword": "s"}
    body = json.dumps({**VALID, "arguments": arguments, "properties": properties})
    r = send(client, "POST", api.base, body.encode())
    assert r.status_code == 200, r.text
    job_id = r.json()["job_submit_result"]["job_id"]
    d = client.get(f"{api.base}/{job_id}").json()["job_detail"]
    assert d["arguments"] == "[" + ", ".join(arguments) + "]"
    assert d["properties"] == "{spark.app.name=\u00fcnic\u00f8de, k\u00e9y=v, db.p\u00e4ssword=s}"
    # The secret rule is about the ASCII words; "p\u00e4ssword" is not "password".
    listed = client.get(api.base, params={"job_id": job_id}).json()["job_list"]
    assert [j["arguments"] for j in listed] == [d["arguments"]]
    assert raw_job(api.store, job_id)["arguments"] == json.dumps(arguments)


# ------------------------------------------------------------------ other projects' jobs


def test_other_projects_jobs_are_0176_and_untouched(
    api: Any, client: TestClient, subtests: Any
) -> None:
    other = other_project(api)
    theirs = insert_job(api.store, other.project_id, other.cluster_id, state="RUNNING")
    their_sql = insert_job(
        api.store, other.project_id, other.cluster_id, job_type="SparkSql", state="FINISHED"
    )
    add_sql_results(api.store, their_sql, {0: [{"secret": "theirs"}]})
    mine = insert_job(api.store, api.project_id, api.cluster_id)
    rows = {j: raw_job(api.store, j) for j in (theirs, their_sql, mine)}
    for job in (theirs, their_sql):
        for method, suffix in [("GET", ""), ("POST", "/kill"), ("GET", "/sql-result"),
                               ("GET", "/log")]:  # fmt: skip
            with subtests.test(job=job, op=suffix):
                before = fingerprint(api.store)
                r = send(client, method, f"{api.base}/{job}{suffix}")
                assert job in refused(api, r, 400, "0176", before)
        for ids in ([job], [mine, job]):
            with subtests.test(job=job, batch=len(ids)):
                before = fingerprint(api.store)
                body = json.dumps({"job_id_list": ids}).encode()
                r = send(client, "POST", f"{api.base}/batch-delete", body)
                msg = refused(api, r, 400, "0176", before)
                assert job in msg and mine not in msg, msg
        with subtests.test(job=job, op="their cluster in our path"):
            before = fingerprint(api.store)
            base = f"/v2/{api.project_id}/clusters/{other.cluster_id}/job-executions"
            refused(api, send(client, "GET", f"{base}/{job}"), 400, "12000003", before)
    listed = client.get(api.base).json()
    assert [j["job_id"] for j in listed["job_list"]] == [mine]
    assert {j: raw_job(api.store, j) for j in rows} == rows
