"""MRS parity items seen through the API: the ``New`` state filter, SparkPython jobs, the
queue a job ran in, and arguments starting with ``@`` (sensitive) masked in every echo."""

from __future__ import annotations

import pytest
from api_helpers import assert_error
from fastapi.testclient import TestClient
from jobrows import insert_jobs, job_row

from mrs_jobs.api.app import create_app


def _ids(r) -> list[str]:  # type: ignore[no-untyped-def]
    assert r.status_code == 202, r.text
    return [j["job_id"] for j in r.json()["job_list"]]


def test_job_state_new_as_mrs_spells_it(api) -> None:
    """OTC's docs and Airflow's sensor spell the first state ``New``; it filters NEW jobs."""
    new, queued = insert_jobs(
        api.store,
        [
            job_row(api.project_id, api.cluster_id, state="NEW"),
            job_row(api.project_id, api.cluster_id, state="SUBMITTED"),
        ],
    )
    r = api.client.get(api.base, params={"job_state": "New"})
    assert _ids(r) == [new]
    assert r.json()["total_record"] == 1
    assert _ids(api.client.get(api.base, params={"job_state": "NEW"})) == [new]
    assert queued not in _ids(api.client.get(api.base, params={"job_state": "New"}))
    # Other states keep MRS's upper case: a different spelling is still refused.
    for bad in ("new", "NEw", "Running"):
        assert "job_state" in assert_error(
            api.client.get(api.base, params={"job_state": bad}), 400, "12000002"
        )


@pytest.fixture
def spark_api(api, settings):  # type: ignore[no-untyped-def]
    """The API of a service whose Spark engine runs SparkPython jobs too (as the registry's
    Spark engine declares)."""
    app = create_app(
        settings,
        api.store,
        runnable_types=frozenset({"SparkSubmit", "SparkPython"}),
        wake=lambda: None,
    )
    client = TestClient(app, base_url="http://127.0.0.1:8080")
    client.auth = api.client.auth
    yield client
    client.close()


def test_spark_python_submitted_and_echoed_as_submitted(api, spark_api) -> None:
    body = {"job_type": "SparkPython", "job_name": "py", "arguments": ["/opt/a.py", "1"]}
    r = spark_api.post(api.base, json=body)
    assert r.status_code == 200, r.text
    job_id = r.json()["job_submit_result"]["job_id"]
    other = api.submit("sub")
    shown = spark_api.get(f"{api.base}/{job_id}")
    assert shown.status_code == 202
    assert shown.json()["job_detail"]["job_type"] == "SparkPython"
    listed = spark_api.get(api.base, params={"job_type": "SparkPython"})
    assert _ids(listed) == [job_id]
    assert listed.json()["job_list"][0]["job_type"] == "SparkPython"
    assert other in _ids(spark_api.get(api.base, params={"job_type": "SparkSubmit"}))


def test_spark_python_refused_without_spark(api, spark_api) -> None:
    """Like every Spark type: a cluster without Spark answers 0057."""
    from api_helpers import new_cluster

    bare = new_cluster(api, components=["Flink"])
    r = spark_api.post(
        f"/v2/{api.project_id}/clusters/{bare}/job-executions",
        json={"job_type": "SparkPython", "job_name": "py", "arguments": ["/opt/a.py"]},
    )
    assert_error(r, 400, "0057")


def test_queue_echoes_the_queue_the_job_runs_in(api, spark_api) -> None:
    def submit(job_type: str, arguments: list[str], **props: str) -> str:
        body = {"job_type": job_type, "job_name": "q", "arguments": arguments}
        if props:
            body["properties"] = props
        r = spark_api.post(api.base, json=body)
        assert r.status_code == 200, r.text
        return r.json()["job_submit_result"]["job_id"]

    plain = submit("SparkSubmit", ["/opt/a.py"])
    by_option = submit("SparkSubmit", ["--queue", "etl", "/opt/a.py", "1"])
    by_conf = submit("SparkPython", ["--conf", "spark.yarn.queue=adhoc", "/opt/a.py"])
    by_prop = submit("SparkSubmit", ["/opt/a.py"], **{"spark.yarn.queue": "props"})
    expected = {plain: "default", by_option: "etl", by_conf: "adhoc", by_prop: "props"}
    for job_id, queue in expected.items():
        shown = spark_api.get(f"{api.base}/{job_id}").json()["job_detail"]
        assert shown["queue"] == queue
    listed = spark_api.get(api.base, params={"limit": 100}).json()["job_list"]
    assert {j["job_id"]: j["queue"] for j in listed} == expected
    # The list's queue filter finds them by the queue they run in.
    assert _ids(spark_api.get(api.base, params={"queue": "etl"})) == [by_option]


def test_queue_of_a_yarn_cluster_with_a_queue(api, spark_api) -> None:
    yarn = api.clusters.create_cluster(
        api.project_id,
        "yarn",
        kind="yarn",
        components=["Spark"],
        config={"hadoop_conf_dir": "/etc/hadoop/conf", "yarn_queue": "etl"},
        max_running=10,
        max_queued=100,
    )
    base = f"/v2/{api.project_id}/clusters/{yarn}/job-executions"
    queues = []
    for arguments in (["/opt/a.py"], ["--queue", "mine", "/opt/a.py"]):
        body = {"job_type": "SparkSubmit", "job_name": "y", "arguments": arguments}
        job_id = spark_api.post(base, json=body).json()["job_submit_result"]["job_id"]
        queues.append(spark_api.get(f"{base}/{job_id}").json()["job_detail"]["queue"])
    assert queues == ["etl", "mine"]
