"""MRS v1.1 job APIs (``/v1.1/{project_id}/jobs/submit-job``, ``job-exes``, ``job-executions``):
the SDK v1 shapes, the v1 -> v2 mapping (the same jobs seen through both), paging and the
state filter, refusals that change nothing, and project isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from api_helpers import assert_error, new_cluster, other_project
from fastapi.testclient import TestClient
from jobrows import insert_job
from support import SigV4Auth

from mrs_jobs.api.app import create_app
from mrs_jobs.domain import render
from mrs_jobs.domain.jobtypes import JobType
from mrs_jobs.store import tables

ALL_TYPES = frozenset(t.value for t in JobType)
INT_FIELDS = ("create_at", "update_at", "job_type", "job_state", "job_final_status", "step_seq")


@pytest.fixture
def v1(api, settings):  # type: ignore[no-untyped-def]
    """The bootstrap project's client over an app that runs every job type."""
    app = create_app(settings, api.store, runnable_types=ALL_TYPES)
    client = TestClient(app, base_url="http://127.0.0.1:8080")
    client.auth = SigV4Auth(api.ak, api.sk, api.project_id)
    yield client
    client.close()


def submit_url(api) -> str:  # type: ignore[no-untyped-def]
    return f"/v1.1/{api.project_id}/jobs/submit-job"


def exes_url(api) -> str:  # type: ignore[no-untyped-def]
    return f"/v1.1/{api.project_id}/job-exes"


def body(api, **fields: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    out: dict[str, Any] = {"job_type": 2, "job_name": "v1job", "cluster_id": api.cluster_id}
    out.update(fields)
    return out


def submit(client, api, **fields: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = client.post(submit_url(api), json=body(api, **fields))
    assert r.status_code == 200, r.text
    return r.json()


def v2_job(api, job_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = api.client.get(f"{api.base}/{job_id}")
    assert r.status_code == 202, r.text
    return r.json()["job_detail"]


def counts(api) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with api.store.read() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in tables.metadata.sorted_tables
        }


# ------------------------------------------------------------------------------------ submit
def test_submit_answers_the_job_execution_both_wrapped_and_flat(api) -> None:  # type: ignore[no-untyped-def]
    out = submit(
        api.client, api, jar_path="/opt/pi.py", arguments="10 20", input="", hql="", job_log=""
    )
    exe = out["job_execution"]
    assert {k: v for k, v in out.items() if k != "job_execution"} == exe  # SDK v1 reads it flat
    assert exe["job_type"] == 2 and exe["job_state"] == 1 and exe["job_final_status"] == 0
    assert exe["tenant_id"] == api.project_id and exe["cluster_id"] == api.cluster_id
    assert (exe["jar_path"], exe["arguments"]) == ("/opt/pi.py", "10 20")
    assert len(str(exe["created_at"])) == 10  # epoch seconds, as the MRS reference shows
    assert exe["templated"] is False and exe["end_time"] is None
    for name in ("job_configs", "extra", "data_source_urls", "info", "return_code"):
        assert exe[name] is None  # the SDK reads dicts there: never a string
    job = v2_job(api, exe["id"])  # the same job through v2
    assert (job["job_type"], job["job_name"], job["job_state"]) == (
        "SparkSubmit",
        "v1job",
        "SUBMITTED",
    )
    assert job["arguments"] == "[/opt/pi.py, 10, 20]"
    assert api.wakes, "the supervisor was woken"


@pytest.mark.parametrize(
    ("fields", "job_type", "arguments", "properties"),
    [
        (
            {
                "job_type": 1,
                "jar_path": "/j/ex.jar",
                "arguments": "wordcount",
                "input": "/in",
                "output": "/out",
                "job_log": "/logs",
            },
            "MapReduce",
            ["/j/ex.jar", "wordcount", "/in", "/out"],
            {"mrs.v1.data": "input output", "mrs.v1.job_log": "/logs"},
        ),
        (
            {"job_type": 2, "jar_path": "/j/spark.jar", "arguments": "org.apache.Pi 10"},
            "SparkSubmit",
            ["--class", "org.apache.Pi", "/j/spark.jar", "10"],
            {},
        ),
        (
            {"job_type": 2, "jar_path": "/j/app.py", "arguments": " a   b ", "output": "/o"},
            "SparkSubmit",
            ["/j/app.py", "a", "b", "/o"],
            {"mrs.v1.data": "output"},
        ),
        ({"job_type": 3, "hive_script_path": "/s/q.SQL"}, "HiveScript", ["/s/q.SQL"], {}),
        (
            {
                "job_type": 6,
                "jar_path": "/s/q.sql",
                "hive_script_path": "/s/q.sql",
                "arguments": "--hivevar x=1",
            },
            "SparkScript",
            ["--hivevar", "x=1", "/s/q.sql"],
            {},
        ),
        (
            {
                "job_type": 5,
                "input": "obs://b/in",
                "output": "/data",
                "file_action": "import",
                "arguments": "-update",
            },
            "DistCp",
            ["-update", "obs://b/in", "/data"],
            {"mrs.v1.file_action": "import"},
        ),
    ],
)
def test_v1_fields_become_the_v2_job(  # type: ignore[no-untyped-def]
    v1, api, fields, job_type, arguments, properties
) -> None:  # type: ignore[no-untyped-def]
    job_id = submit(v1, api, **fields)["id"]
    with api.store.read() as conn:
        row = conn.execute(sa.select(tables.jobs).where(tables.jobs.c.id == job_id)).one()
    assert row.job_type == job_type
    assert json.loads(row.arguments) == arguments
    assert json.loads(row.properties) == properties


def test_show_reads_the_v1_fields_back(v1, api) -> None:  # type: ignore[no-untyped-def]
    spark = submit(v1, api, jar_path="/j/spark.jar", arguments="org.apache.Pi 10")["id"]
    script = submit(v1, api, job_type=3, hive_script_path="/s/q.sql")["id"]
    copy = submit(v1, api, job_type=5, input="/a", output="obs://b/x", file_action="export")["id"]
    mr = submit(
        v1,
        api,
        job_type=1,
        jar_path="/j/e.jar",
        arguments="wc",
        input="/i",
        output="/o",
        job_log="/l",
    )
    local = submit(v1, api, job_type=5, input="/a", output="/b", file_action="import")["id"]
    got = {}
    for job_id in (spark, script, copy, mr["id"], local):
        r = v1.get(f"{exes_url(api)}/{job_id}")
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"job_execution"}
        got[job_id] = r.json()["job_execution"]
    assert (got[spark]["jar_path"], got[spark]["arguments"]) == ("/j/spark.jar", "org.apache.Pi 10")
    assert got[script]["hive_script_path"] == got[script]["jar_path"] == "/s/q.sql"
    assert got[script]["job_type"] == 3
    c = got[copy]
    assert (c["input"], c["output"], c["file_action"], c["job_type"]) == (
        "/a",
        "obs://b/x",
        "export",
        5,
    )
    # MapReduce's input and output were appended to its arguments, and are read back apart.
    m = got[mr["id"]]
    assert (m["jar_path"], m["arguments"], m["input"], m["output"]) == (
        "/j/e.jar",
        "wc",
        "/i",
        "/o",
    )
    for exe in got.values():
        for name in INT_FIELDS:
            assert isinstance(exe[name], int), (name, exe[name])
        assert isinstance(exe["progress"], str)
    assert got[mr["id"]]["job_log"] == "/l" and got[spark]["job_log"] == ""
    assert got[local]["file_action"] == "import"  # as given, though both paths are local
    # The v2 view shows where the v1 fields went.
    assert v2_job(api, mr["id"])["properties"] == "{mrs.v1.data=input output, mrs.v1.job_log=/l}"


def test_arguments_are_echoed_as_v2_echoes_them(v1, api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The v1 arguments go through render.java_list, item by item: what it hides (secret
    arguments) is hidden in v1 too."""
    job_id = submit(v1, api, jar_path="/a.py", arguments="user=admin @password=admin_123")["id"]

    # As shown now: the v1 arguments are the v2 echo's items, whatever it masks.
    exe = v1.get(f"{exes_url(api)}/{job_id}").json()["job_execution"]
    shown = v2_job(api, job_id)["arguments"]
    assert shown == "[/a.py, " + ", ".join(exe["arguments"].split(" ")) + "]"

    def masking(items):  # type: ignore[no-untyped-def]
        return "[" + ", ".join("@password=******" if i.startswith("@") else i for i in items) + "]"

    monkeypatch.setattr(render, "java_list", masking)
    exe = v1.get(f"{exes_url(api)}/{job_id}").json()["job_execution"]
    assert exe["arguments"] == "user=admin @password=******"
    assert "admin_123" not in v1.get(exes_url(api), params={"cluster_id": api.cluster_id}).text


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"job_type": 4, "hql": "gc2hvdyB0YWLsZXM7"}, "job_type 4 (HiveQL) is not supported"),
        ({"job_type": 7}, "job_type 7 (Spark SQL) is not supported"),
        ({"job_type": 9}, "job_type must be one of 1, 2, 3, 5, 6"),
        ({"job_type": "2"}, "job_type"),
        ({"job_type": True}, "job_type"),
        ({"job_type": 1}, "jar_path is required"),
        ({"jar_path": "/a.py", "hql": "show tables"}, "hql is not supported"),
        ({"jar_path": "/a.py", "is_protected": True}, "is_protected=true"),
        ({"jar_path": "/a.py", "file_action": "import"}, "file_action is not used"),
        ({"jar_path": "/a.py", "bogus": 1}, "bogus: unknown field"),
        ({"jar_path": "/a.py", "arguments": ["a"]}, "arguments"),
        ({"jar_path": "/a.py", "arguments": "x" * 2048}, "arguments must be at most 2047"),
        ({"jar_path": "/" + "a" * 1023}, "jar_path must be at most 1023"),
        ({"job_type": 5, "input": "/a", "output": "/b"}, "file_action must be import or export"),
        ({"job_type": 5, "input": "/a", "file_action": "import"}, "input and output are required"),
        (
            {
                "job_type": 5,
                "jar_path": "/x.jar",
                "input": "/a",
                "output": "/b",
                "file_action": "export",
            },
            "jar_path is not used",
        ),
        ({"job_type": 3}, "hive_script_path is required"),
        ({"job_type": 3, "hive_script_path": "/s/q.txt"}, "must end with .sql"),
        ({"job_type": 6, "hive_script_path": "/s/a.sql", "jar_path": "/s/b.sql"}, "different"),
        ({"job_type": 6, "hive_script_path": "/s/a.sql", "input": "/in"}, "not passed"),
        ({"job_name": "bad name", "jar_path": "/a.py"}, "job_name"),
        ({"cluster_id": "a/b\x00", "jar_path": "/a.py"}, "cluster_id must be"),
        ({"jar_path": "/a.py", "arguments": "a\x01b"}, "arguments must not contain control"),
        ({"jar_path": "/a.py", "job_log": "/l\x00"}, "job_log must not contain control"),
    ],
)
def test_refusals_are_400_and_change_nothing(v1, api, fields, says) -> None:  # type: ignore[no-untyped-def]
    before = counts(api)
    r = v1.post(submit_url(api), json=body(api, **fields))
    msg = assert_error(r, 400, "12000002")
    assert says in msg, msg
    assert counts(api) == before


def test_cluster_errors_are_the_v2_ones(v1, api) -> None:  # type: ignore[no-untyped-def]
    bare = new_cluster(api, components=[])
    before = counts(api)
    r = v1.post(submit_url(api), json=body(api, cluster_id="nope", jar_path="/a.py"))
    assert_error(r, 400, "12000003")
    r = v1.post(submit_url(api), json=body(api, cluster_id=bare, jar_path="/a.py"))
    assert_error(r, 400, "0057")  # no Spark on it
    r = v1.post(submit_url(api), json=body(api, cluster_id=bare, job_type=3, jar_path="/q.sql"))
    assert_error(r, 400, "0168")  # no Hive
    assert counts(api) == before


# ------------------------------------------------------------------------------- list, show
def test_list_pages_and_filters_and_sees_v2_jobs(v1, api) -> None:  # type: ignore[no-untyped-def]
    v2_ids = [api.submit(f"v2-{i}") for i in range(3)]
    v1_ids = [submit(v1, api, jar_path="/a.py", job_name=f"v1-{i}")["id"] for i in range(2)]
    newest_first = [*reversed(v1_ids), *reversed(v2_ids)]

    def page(**q: str) -> tuple[int, list[str]]:
        r = v1.get(exes_url(api), params={"cluster_id": api.cluster_id, **q})
        assert r.status_code == 200, r.text
        out = r.json()
        assert set(out) == {"totalRecord", "job_executions"}
        return out["totalRecord"], [j["id"] for j in out["job_executions"]]

    assert page() == (5, newest_first)
    assert page(page_size="2", current_page="1") == (5, newest_first[:2])
    assert page(page_size="2", current_page="2") == (5, newest_first[2:4])
    assert page(page_size="2", current_page="3") == (5, newest_first[4:])
    assert page(page_size="2", current_page="0") == (5, newest_first[:2])
    assert page(job_name="v2-1") == (1, [v2_ids[1]])
    assert page(id=v1_ids[0]) == (1, [v1_ids[0]])
    # The MRS reference's own example spells it clusterId.
    r = v1.get(exes_url(api), params={"clusterId": api.cluster_id, "page_size": "1"})
    assert r.status_code == 200 and r.json()["totalRecord"] == 5
    exe = v1.get(f"{exes_url(api)}/{v2_ids[0]}").json()["job_execution"]
    assert (exe["job_type"], exe["jar_path"], exe["arguments"]) == (2, "/opt/a.py", "1")
    assert new_cluster(api) and page()[0] == 5  # another cluster's jobs are not counted


@pytest.mark.parametrize(
    ("state", "v1_state", "final"),
    [
        ("SUBMITTED", 1, 0),
        ("ACCEPTED", 1, 0),
        ("RUNNING", 2, 0),
        ("FINISHED", 3, 2),
        ("FAILED", 5, 1),
        ("KILLED", -1, 3),
    ],
)
def test_states_map_to_v1_codes(api, state, v1_state, final) -> None:  # type: ignore[no-untyped-def]
    job_id = insert_job(api.store, api.project_id, api.cluster_id, state=state)
    exe = api.client.get(f"{exes_url(api)}/{job_id}").json()["job_execution"]
    assert (exe["job_state"], exe["job_final_status"]) == (v1_state, final)


def test_state_filter(api) -> None:  # type: ignore[no-untyped-def]
    p, c = api.project_id, api.cluster_id
    ids = {
        s: insert_job(api.store, p, c, state=s, **extra)
        for s, extra in (
            ("RUNNING", {}),
            ("FINISHED", {}),
            ("KILLED", {}),
            ("FAILED", {}),
        )
    }
    failed_run = insert_job(api.store, p, c, state="FINISHED", result="FAILED")
    insert_job(api.store, p, c, state="SUBMITTED")

    def listed(state: str) -> set[str]:
        r = api.client.get(exes_url(api), params={"cluster_id": c, "state": state})
        assert r.status_code == 200, r.text
        return {j["id"] for j in r.json()["job_executions"]}

    assert listed("2") == {ids["RUNNING"]}
    assert listed("3") == {ids["FINISHED"]}
    assert listed("4") == {failed_run}
    assert listed("5") == {ids["FAILED"]}
    assert listed("-1") == {ids["KILLED"]}
    exe = api.client.get(f"{exes_url(api)}/{failed_run}").json()["job_execution"]
    assert (exe["job_state"], exe["job_final_status"]) == (4, 1)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"cluster_id": "c", "clusterId": "d"},
        {"cluster_id": "{c}", "state": "1"},
        {"cluster_id": "{c}", "state": "RUNNING"},
        {"cluster_id": "{c}", "page_size": "101"},
        {"cluster_id": "{c}", "page_size": "0"},
        {"cluster_id": "{c}", "current_page": "-1"},
        {"cluster_id": "{c}", "limit": "10"},
        {"cluster_id": "a" * 65},
    ],
)
def test_bad_list_queries_are_400(api, query) -> None:  # type: ignore[no-untyped-def]
    query = {k: v.replace("{c}", api.cluster_id) for k, v in query.items()}
    assert_error(api.client.get(exes_url(api), params=query), 400, "12000002")


def test_list_of_an_unknown_cluster_is_12000003(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.get(exes_url(api), params={"cluster_id": "nope"})
    assert_error(r, 400, "12000003")


# ------------------------------------------------------------------------------------ delete
def test_delete_hides_a_v1_job_everywhere(v1, api) -> None:  # type: ignore[no-untyped-def]
    job_id = submit(v1, api, jar_path="/a.py")["id"]
    keep = api.submit("kept")
    r = v1.delete(f"/v1.1/{api.project_id}/job-executions/{job_id}")
    assert r.status_code == 204 and r.content == b"", r.text
    assert r.headers["x-request-id"]
    assert_error(v1.get(f"{exes_url(api)}/{job_id}"), 400, "0176")
    assert_error(api.client.get(f"{api.base}/{job_id}"), 400, "0176")
    assert_error(v1.delete(f"/v1.1/{api.project_id}/job-executions/{job_id}"), 400, "0176")
    assert v2_job(api, keep)["job_state"] == "SUBMITTED"
    with api.store.read() as conn:
        action = conn.execute(
            sa.select(tables.audit.c.action).order_by(tables.audit.c.id.desc())
        ).first()
    assert action is not None and action[0] == "batch_delete"  # the v2 use case did it


def test_a_v2_job_is_deleted_through_v1(api) -> None:  # type: ignore[no-untyped-def]
    job_id = insert_job(api.store, api.project_id, api.cluster_id, state="RUNNING")
    r = api.client.delete(f"/v1.1/{api.project_id}/job-executions/{job_id}")
    assert r.status_code == 204
    with api.store.read() as conn:
        row = conn.execute(sa.select(tables.jobs).where(tables.jobs.c.id == job_id)).one()
    assert row.deleted_ms > 0  # hidden; the supervisor kills it, then purges it
    assert api.wakes


# --------------------------------------------------------------------------------- isolation
def test_another_projects_job_is_a_missing_one(api) -> None:  # type: ignore[no-untyped-def]
    b = other_project(api)
    a_job = api.submit("a-secret-name")
    before = counts(api)
    for method, url in (
        ("GET", f"/v1.1/{b.project_id}/job-exes/{a_job}"),
        ("DELETE", f"/v1.1/{b.project_id}/job-executions/{a_job}"),
    ):
        r = b.client.request(method, url)
        msg = assert_error(r, 400, "0176")
        missing = b.client.request(method, url.replace(a_job, "0" * 36))
        assert msg.replace(a_job, "x") == assert_error(missing, 400, "0176").replace("0" * 36, "x")
        assert "a-secret-name" not in r.text
    r = b.client.get(f"/v1.1/{b.project_id}/job-exes", params={"cluster_id": api.cluster_id})
    assert_error(r, 400, "12000003")
    r = b.client.post(
        f"/v1.1/{b.project_id}/jobs/submit-job",
        json={"job_type": 2, "job_name": "x", "cluster_id": api.cluster_id, "jar_path": "/a.py"},
    )
    assert_error(r, 400, "12000003")
    # B's credential on A's path: 403, whatever the route.
    for method, url in (
        ("GET", f"{exes_url(api)}/{a_job}"),
        ("GET", f"{exes_url(api)}?cluster_id={api.cluster_id}"),
        ("DELETE", f"/v1.1/{api.project_id}/job-executions/{a_job}"),
        ("POST", submit_url(api)),
    ):
        assert_error(b.client.request(method, url, json=body(api)), 403, "12000052")
    assert counts(api) == before


def test_unsigned_calls_are_401_and_long_ids_missing(api) -> None:  # type: ignore[no-untyped-def]
    anon = TestClient(api.client.app, base_url="http://127.0.0.1:8080")
    assert_error(anon.get(f"{exes_url(api)}/x"), 401, "APIGW.0301")
    assert_error(anon.post(submit_url(api), json=body(api)), 401, "APIGW.0301")
    assert_error(api.client.get(f"{exes_url(api)}/{'a' * 65}"), 400, "0176")
    assert_error(api.client.delete(f"/v1.1/{api.project_id}/job-executions/%00"), 400, "0176")


def test_types_v1_cannot_submit_are_still_shown(api) -> None:  # type: ignore[no-untyped-def]
    p, c = api.project_id, api.cluster_id
    sql = insert_job(api.store, p, c, job_type="HiveSql", arguments=["--database", "d", "SHOW 1"])
    flink = insert_job(api.store, p, c, job_type="Flink", arguments=["run", "/f.jar"])
    opts = insert_job(api.store, p, c, arguments=["--conf", "k=v", "/a.py", "1"])
    shown = {
        j: api.client.get(f"{exes_url(api)}/{j}").json()["job_execution"]
        for j in (sql, flink, opts)
    }
    assert (shown[sql]["job_type"], shown[sql]["hql"], shown[sql]["arguments"]) == (
        4,
        "SHOW 1",
        "--database d",
    )
    assert (shown[flink]["job_type"], shown[flink]["jar_path"]) == (0, "")
    assert shown[flink]["arguments"] == "run /f.jar"
    assert (shown[opts]["jar_path"], shown[opts]["arguments"]) == ("", "--conf k=v /a.py 1")
