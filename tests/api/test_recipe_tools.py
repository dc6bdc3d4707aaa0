"""The HTTP calls Terraform's Huawei Cloud provider and a Kestra flow make, replayed against the
app: paths, methods, bodies and headers as each tool builds them, the status codes it accepts
and the fields it reads back (docs/recipes/terraform.md, docs/recipes/kestra.md). Neither tool
can be installed here, so each test names where in the tool's source its calls come from.

Terraform: github.com/huaweicloud/terraform-provider-huaweicloud, ``huaweicloud/services/mrs/``
(``resource_huaweicloud_mapreduce_job.go``, ``data_source_huaweicloud_mapreduce_cluster_jobs.go``,
``data_source_huaweicloud_mapreduce_cluster_files.go``) over the vendored golangsdk
(``vendor/github.com/chnsz/golangsdk/openstack/mrs/v2/jobs/{requests,results,urls}.go``; the
status codes it accepts: ``provider_client.go`` ``defaultOkCodes``; the AK/SK signature:
``auth/core/signer/signer.go``). Kestra: github.com/kestra-io/kestra,
``core/src/main/java/io/kestra/plugin/core/http/Request.java`` (a status of 400 or more fails
the task: ``core/http/client/apache/FailedResponseInterceptor.java``) and
``plugin/core/flow/LoopUntil.java``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from mrs_jobs.api.signing import canonical_request, compute_signature, format_sdk_date
from mrs_jobs.domain.states import JobResult, JobState
from mrs_jobs.store import jobs as job_store

REPO = Path(__file__).resolve().parents[2]

# resource_huaweicloud_mapreduce_job.go, resourceMRSJobV2Create: the StateChangeConf.
TF_PENDING = {"NEW", "NEW_SAVING", "ACCEPTED", "SUBMITTED", "RUNNING"}
TF_TARGET = {"FINISHED", "FAILED"}
# v2ClusterJobNotFoundCodes: a 400 with one of these reads as "gone" (CheckDeletedDiag).
TF_NOT_FOUND_CODES = {"12000003", "0176"}
# golangsdk provider_client.go defaultOkCodes; jobs.Get passes OkCodes {200, 202}.
GO_OK = {"GET": {200}, "POST": {200, 201, 202}}


class GolangSdkSigner(httpx.Auth):
    """Signs as golangsdk does (``auth/core/signer/signer.go`` via ``provider_client.go``):
    every header set on the request before signing (Accept, Content-Type, User-Agent and
    X-Sdk-Date), not Host; ``X-Project-Id`` is added after signing, unsigned."""

    requires_request_body = True

    def __init__(self, ak: str, sk: str, project_id: str) -> None:
        self.ak, self.sk, self.project_id = ak, sk, project_id

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        date = format_sdk_date(datetime.now(UTC))
        headers = {
            "accept": "application/json",
            "user-agent": "terraform-provider-huaweicloud golangsdk",
            "x-sdk-date": date,
        }
        if "content-type" in request.headers:
            headers["content-type"] = request.headers["content-type"]
        signed = sorted(headers)
        path = request.url.raw_path.split(b"?")[0].decode()
        canonical = canonical_request(
            request.method, path, request.url.query.decode(), headers, signed, request.content
        )
        signature = compute_signature(self.sk, date, canonical)
        request.headers.update(headers)
        request.headers["Authorization"] = (
            f"SDK-HMAC-SHA256 Access={self.ak}, SignedHeaders={';'.join(signed)}, "
            f"Signature={signature}"
        )
        request.headers["X-Project-Id"] = self.project_id
        yield request


@pytest.fixture
def terraform(api) -> TestClient:  # type: ignore[no-untyped-def]
    """The app, called as the Terraform provider calls it."""
    client = TestClient(api.client.app, base_url="http://127.0.0.1:8080")
    client.auth = GolangSdkSigner(api.ak, api.sk, api.project_id)
    return client


def go_query(**params: Any) -> str:
    """The query as golangsdk sends it: its signer re-encodes and sorts ``URL.RawQuery``."""
    return "&".join(
        f"{quote(k, safe='-_.~')}={quote(str(v), safe='-_.~')}" for k, v in sorted(params.items())
    )


def end_job(api: Any, job_id: str, state: JobState, result: JobResult) -> None:
    """What the supervisor records when a run ends."""
    now = job_store.now_ms()
    with api.store.write() as conn:
        assert job_store.transition(conn, job_id, JobState.ACCEPTED)
        assert job_store.transition(conn, job_id, JobState.RUNNING, values={"started_ms": now})
        ended = {"result": result.value, "finished_ms": now + 1000}
        assert job_store.transition(conn, job_id, state, values=ended)


# -- Terraform: the provider's own parsing, as its source writes it ---------------------------


def tf_spark_submit_arguments(programs: dict[str, str], path: str, parameters: str) -> list[str]:
    """buildMRSSparkSubmitJobRequestArguments: <programs> --master yarn-cluster <path> <params>
    (buildMRSJobParameters splits on single spaces, so an unset parameters gives one "")."""
    pairs = [x for k, v in programs.items() for x in (k, v)]
    return [*pairs, "--master", "yarn-cluster", path, *parameters.split(" ")]


def tf_arguments_of(text: str) -> list[str]:
    """makeMRSArgumentsByString: ``^\\[(.*)\\]$``, then split on ", "."""
    m = re.match(r"^\[(.*)\]$", text)
    return m.group(1).split(", ") if m else []


def tf_read_spark_submit(text: str) -> tuple[str, str, dict[str, str]]:
    """makeMRSSparkSubmitJobParameters: (program_path, parameters, program_parameters)."""
    args, programs = tf_arguments_of(text), {}
    while args[0] != "--master" and len(args) > 1:
        programs[args[0]] = args[1]
        args = args[2:]
    assert len(args) >= 3, "Wrong arguments length of the API response"
    args = args[2:]
    return args[0], " ".join(args[1:]), programs


def tf_read_sql(text: str) -> tuple[str, dict[str, str]]:
    """makeMRSSQLJobParameters: pairs while more than one is left, then the statement."""
    args, programs = tf_arguments_of(text), {}
    while len(args) > 1:
        programs[args[0]] = args[1]
        args = args[2:]
    return args[0], programs


def tf_read_properties(text: str) -> dict[str, str]:
    """setMRSJobProperties: ``^{(.*)}$``, split on ", ", each SplitN on "=" (2)."""
    m = re.match(r"^{(.*)}$", text)
    if not m or m.group(1) == "":
        return {}
    return dict(tuple(e.split("=", 1)) for e in m.group(1).split(", "))  # type: ignore[misc]


def tf_create(client: TestClient, api: Any, body: dict[str, Any]) -> str:
    """jobs.Create: POST rootURL with CreateOpts (``properties`` omitted when empty)."""
    r = client.post(f"{api.base}", json={k: v for k, v in body.items() if v})
    assert r.status_code in GO_OK["POST"], r.text
    return str(r.json()["job_submit_result"]["job_id"])


def tf_get(client: TestClient, api: Any, job_id: str) -> httpx.Response:
    """jobs.Get: GET resourceURL with Content-Type, OkCodes {200, 202}."""
    return client.get(f"{api.base}/{job_id}", headers={"Content-Type": "application/json"})


# -- Terraform: huaweicloud_mapreduce_job -------------------------------------------------------


def test_terraform_job_create_wait_read_delete(api, terraform) -> None:  # type: ignore[no-untyped-def]
    """resourceMRSJobV2Create (jobs.Create, then the StateChangeConf polling jobs.Get until
    FINISHED or FAILED), resourceMRSJobV2Read (the fields set into the state), Delete
    (jobs.Delete: POST .../batch-delete {"job_id_list": [id]}), then Read of a deleted job."""
    programs = {"--class": "com.example.Main"}
    config = {"program_path": "/data/apps/app.jar", "parameters": "in out"}
    service_parameters = {"spark.executor.memory": "1g", "spark.executor.cores": "1"}
    job_id = tf_create(
        terraform,
        api,
        {
            "job_type": "SparkSubmit",
            "job_name": "tf_job-1",
            "arguments": tf_spark_submit_arguments(
                programs, config["program_path"], config["parameters"]
            ),
            "properties": service_parameters,
        },
    )

    r = tf_get(terraform, api, job_id)
    assert r.status_code in {200, 202}, r.text
    assert r.json()["job_detail"]["job_state"] in TF_PENDING

    end_job(api, job_id, JobState.FINISHED, JobResult.SUCCEEDED)
    r = tf_get(terraform, api, job_id)
    assert r.status_code in {200, 202}, r.text
    job = r.json()["job_detail"]
    assert job["job_state"] in TF_TARGET

    # Read: what goes into the state must equal the configuration, or the plan shows a diff
    # (every field is ForceNew: a diff would replace the job).
    assert (job["job_id"], job["job_type"], job["job_name"]) == (job_id, "SparkSubmit", "tf_job-1")
    path, parameters, read_programs = tf_read_spark_submit(job["arguments"])
    assert (path, parameters, read_programs) == (
        config["program_path"],
        config["parameters"],
        programs,
    )
    assert tf_read_properties(job["properties"]) == service_parameters
    for key in ("started_time", "submitted_time", "finished_time"):  # ms, read /1000
        assert isinstance(job[key], int) and job[key] > 1_600_000_000_000, (key, job[key])

    r = terraform.post(f"{api.base}/batch-delete", json={"job_id_list": [job_id]})
    assert r.status_code in GO_OK["POST"], r.text

    gone = tf_get(terraform, api, job_id)
    assert gone.status_code == 400 and gone.json()["error_code"] in TF_NOT_FOUND_CODES
    other_cluster = terraform.get(
        f"/v2/{api.project_id}/clusters/no-such-cluster/job-executions/{job_id}"
    )
    assert other_cluster.status_code == 400
    assert other_cluster.json()["error_code"] in TF_NOT_FOUND_CODES


def test_terraform_job_without_parameters_sends_an_empty_argument(api, terraform) -> None:  # type: ignore[no-untyped-def]
    """buildMRSJobParameters("") is [""]: an unset ``parameters`` sends a trailing empty
    argument, and Read must give "" back (else a diff)."""
    args = tf_spark_submit_arguments({}, "/data/apps/app.py", "")
    assert args[-1] == ""
    job_id = tf_create(
        terraform, api, {"job_type": "SparkSubmit", "job_name": "tf_noparams", "arguments": args}
    )
    job = tf_get(terraform, api, job_id).json()["job_detail"]
    assert tf_read_spark_submit(job["arguments"]) == ("/data/apps/app.py", "", {})
    assert tf_read_properties(job["properties"]) == {}


def test_terraform_secret_properties_read_back_masked_so_the_plan_shows_a_diff(
    api, terraform
) -> None:  # type: ignore[no-untyped-def]
    """setMRSJobProperties stores what show answers; mrs-jobs never shows a secret's value
    (docs/api.md), so ``service_parameters`` holding one differs from the configuration on
    every plan (the recipe's caveat: ``lifecycle { ignore_changes = [service_parameters] }``,
    or keep object-store keys in the cluster's settings)."""
    secret = {"fs.obs.access.key": "AK123", "fs.obs.secret.key": "s3cr3t-value"}
    job_id = tf_create(
        terraform,
        api,
        {
            "job_type": "SparkSubmit",
            "job_name": "tf_secret",
            "arguments": tf_spark_submit_arguments({}, "/data/apps/app.py", "x"),
            "properties": secret,
        },
    )
    read = tf_read_properties(tf_get(terraform, api, job_id).json()["job_detail"]["properties"])
    assert read["fs.obs.secret.key"] == "******"
    assert read != secret


def test_terraform_waits_through_every_state_mrs_jobs_reports(api, terraform) -> None:  # type: ignore[no-untyped-def]
    """Every job state is one the StateChangeConf knows: pending, target (FINISHED and FAILED,
    so a failed job does not fail ``terraform apply``), or KILLED, which it reports as an
    unexpected state (apply fails)."""
    assert {s.value for s in JobState} <= TF_PENDING | TF_TARGET | {"KILLED"}
    job_id = tf_create(
        terraform,
        api,
        {
            "job_type": "SparkSubmit",
            "job_name": "tf_fails",
            "arguments": tf_spark_submit_arguments({}, "/data/apps/app.py", "x"),
        },
    )
    end_job(api, job_id, JobState.FINISHED, JobResult.FAILED)
    job = tf_get(terraform, api, job_id).json()["job_detail"]
    assert (job["job_state"], job["job_result"]) == ("FINISHED", "FAILED")
    assert job["job_state"] in TF_TARGET  # apply succeeds; only `status` shows it


# -- Terraform: data sources -------------------------------------------------------------------


def test_terraform_cluster_jobs_data_source(api, terraform) -> None:  # type: ignore[no-untyped-def]
    """data_source_huaweicloud_mapreduce_cluster_jobs.go listClusterJobs: GET
    job-executions?limit=100<filters>&offset=N (N = 1, 2, ... until a page is short), OkCodes
    {202}; filters job_id, job_name, user, job_type, job_state, job_result, queue,
    submitted_time_begin/_end (ConvertTimeStrToNanoTimestamp: epoch ms)."""
    ids = [api.submit(name="tf_listed") for _ in range(3)]
    begin = 1_600_000_000_000
    query = go_query(
        limit=100,
        job_name="tf_listed",
        user="admin",
        job_type="SparkSubmit",
        job_state="SUBMITTED",
        job_result="UNDEFINED",
        queue="default",
        submitted_time_begin=begin,
        offset=1,
    )
    r = terraform.get(f"{api.base}?{query}", headers={"Content-Type": "application/json"})
    assert r.status_code == 202, r.text
    jobs = r.json()["job_list"]
    assert sorted(j["job_id"] for j in jobs) == sorted(ids)
    read = {
        "job_id", "user", "job_name", "job_result", "job_state", "job_progress", "job_type",
        "started_time", "submitted_time", "finished_time", "elapsed_time", "arguments",
        "launcher_id", "properties", "app_id", "tracking_url", "queue",
    }  # fmt: skip
    assert all(read <= set(j) for j in jobs)
    one = terraform.get(f"{api.base}?{go_query(limit=100, job_id=ids[0], offset=1)}")
    assert one.status_code == 202 and [j["job_id"] for j in one.json()["job_list"]] == ids[:1]


def test_terraform_cluster_files_data_source_pages_by_page_number(
    api, terraform, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """data_source_huaweicloud_mapreduce_cluster_files.go listClusterFiles: GET
    files?limit=100&path=<dir>&offset=N, N = 1, 2, ... until fewer than 100 come back; GET with
    golangsdk's default OkCodes ({200}); reads the FileStatusV2 fields (times in ms)."""
    root = tmp_path / "tf-files"
    root.mkdir()
    for i in range(150):
        (root / f"f{i:03d}.csv").write_text("x")
    api.clusters.update_cluster(api.cluster_id, settings={"input_roots": [str(root)]})
    files_url = f"/v2/{api.project_id}/clusters/{api.cluster_id}/files"
    seen: list[str] = []
    offset = 1
    while True:
        r = terraform.get(
            f"{files_url}?{go_query(limit=100, path=str(root), offset=offset)}",
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code in GO_OK["GET"], r.text
        files = r.json()["files"]
        for f in files:
            assert FILE_FIELDS <= set(f)
            assert f["modification_time"] > 1_600_000_000_000
        seen += [f["path_suffix"] for f in files]
        if len(files) < 100:
            break
        offset += 1
    assert offset == 2 and sorted(seen) == [f"f{i:03d}.csv" for i in range(150)]


def test_terraform_clusters_data_source_pages_until_an_empty_page(api, terraform) -> None:  # type: ignore[no-untyped-def]
    """data_source_huaweicloud_mapreduce_clusters.go listClusters: GET
    v1.1/{project_id}/cluster_infos?pageSize=100[&clusterName=&clusterState=...]&currentPage=N
    for N = 1, 2, ... until a page holds no cluster (default OkCodes {200}); reads clusterId,
    clusterName, clusterState, componentList, ..."""
    url = f"/v1.1/{api.project_id}/cluster_infos"
    names = []
    for page in (1, 2):
        query = go_query(pageSize=100, clusterState="running", currentPage=page)
        r = terraform.get(f"{url}?{query}", headers={"Content-Type": "application/json"})
        assert r.status_code in GO_OK["GET"], r.text
        names.append([c["clusterName"] for c in r.json()["clusters"]])
    assert len(names[0]) >= 1 and names[1] == []
    first = terraform.get(f"{url}?{go_query(pageSize=100, currentPage=1)}").json()["clusters"][0]
    assert first["clusterId"] == api.cluster_id and first["clusterState"] == "running"
    assert {"componentList", "hadoopVersion", "totalNodeNum", "billingType"} <= set(first)


FILE_FIELDS = {
    "path_suffix", "owner", "group", "permission", "replication", "block_size", "length",
    "type", "children_num", "access_time", "modification_time",
}  # fmt: skip


# -- Kestra: the HTTP flow of docs/recipes/kestra.md -------------------------------------------


KESTRA_RECIPE = REPO / "docs" / "recipes" / "kestra.md"


def kestra_ok(r: httpx.Response) -> httpx.Response:
    """Request.java with the default ``options.allowFailed: false``: a status of 400 or more
    fails the task (FailedResponseInterceptor); anything below is the task's output."""
    assert r.status_code < 400, f"the Kestra task would fail: {r.status_code} {r.text}"
    return r


def kestra_flow() -> dict[str, Any]:
    """The flow of docs/recipes/kestra.md, as Kestra reads it."""
    blocks = re.findall(r"```yaml\n(.*?)```", KESTRA_RECIPE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "docs/recipes/kestra.md must hold one yaml block (the flow)"
    flow: dict[str, Any] = yaml.safe_load(blocks[0])
    return flow


def jq_path(template: str) -> list[str]:
    """The ``jq('.a.b')`` path a template reads (the flow uses plain dot paths only)."""
    found = re.findall(r"jq\('\.([\w.]+)'\)", template)
    assert len(found) == 1, template
    return str(found[0]).split(".")


def dig(body: dict[str, Any], path: list[str]) -> Any:
    for key in path:
        body = body[key]
    return body


def test_kestra_flow_submit_poll_check(api) -> None:  # type: ignore[no-untyped-def]
    """The recipe's flow, its calls taken from its YAML: ``submit`` (Request POST of the JSON
    body with the inputs' defaults filled in, X-Auth-Token, X-Idempotency-Key = the execution
    id), ``wait`` (LoopUntil over ``poll``, a GET of the id read from submit's body, until the
    state its condition reads is one of those it lists), ``check`` (Fail unless the result it
    reads is SUCCEEDED)."""
    flow = kestra_flow()
    tasks = {t["id"]: t for t in flow["tasks"]}
    submit, wait, check = tasks["submit"], tasks["wait"], tasks["check"]
    (poll,) = wait["tasks"]
    assert submit["type"] == poll["type"] == "io.kestra.plugin.core.http.Request"
    assert wait["type"] == "io.kestra.plugin.core.flow.LoopUntil"
    assert check["type"] == "io.kestra.plugin.core.execution.Fail"
    assert (submit["method"], submit["contentType"], poll["method"]) == (
        "POST",
        "application/json",
        "GET",
    )
    assert submit["uri"].endswith("/job-executions")
    assert poll["uri"].startswith(submit["uri"] + "/{{ outputs.submit.body")
    assert set(submit["headers"]) == {"X-Auth-Token", "X-Idempotency-Key"}
    assert set(poll["headers"]) == {"X-Auth-Token"}

    defaults = {i["id"]: i["defaults"] for i in flow["inputs"]}
    body = re.sub(r"\{\{\s*inputs\.(\w+)\s*\}\}", lambda m: defaults[m[1]], submit["body"])
    token = api.credentials.create_token(api.project_id, "kestra", 3600)
    execution_id = "6Qx1b2C3d4E5f6G7h8I9j0"  # Kestra's execution ids: 22 base62 characters
    client = TestClient(api.client.app, base_url="http://127.0.0.1:8080")
    post = {
        "headers": {
            "X-Auth-Token": token,
            "X-Idempotency-Key": execution_id,
            "Content-Type": submit["contentType"],
        },
        "content": body,
    }
    submitted = kestra_ok(client.post(api.base, **post))  # type: ignore[arg-type]
    job_id = dig(submitted.json(), jq_path(poll["uri"]))
    # A retried execution (same execution id) gets the same job, not a second one.
    again = kestra_ok(client.post(api.base, **post))  # type: ignore[arg-type]
    assert dig(again.json(), jq_path(poll["uri"])) == job_id

    ended = set(re.findall(r"'([A-Z]+)'", wait["condition"]))
    assert ended == {"FINISHED", "FAILED", "KILLED"}
    state_path, result_path = jq_path(wait["condition"]), jq_path(check["condition"])

    def polled() -> dict[str, Any]:
        r = kestra_ok(client.get(f"{api.base}/{job_id}", headers={"X-Auth-Token": token}))
        return dict(r.json())

    assert dig(polled(), state_path) not in ended  # the loop goes on
    end_job(api, job_id, JobState.FINISHED, JobResult.FAILED)
    answer = polled()
    assert dig(answer, state_path) in ended  # the loop ends
    assert dig(answer, result_path) != "SUCCEEDED"  # so `check` fails the execution
    for template in re.findall(r"jq\('([^']+)'\)", check["errorMessage"]):
        source = submitted.json() if "job_submit_result" in template else answer
        assert dig(source, template[1:].split(".")) is not None, template


def test_kestra_tasks_fail_on_mrs_errors(api) -> None:  # type: ignore[no-untyped-def]
    """MRS errors are 4xx with ``error_code``/``error_msg``: Kestra fails the task and logs the
    body (a wrong token, a job that does not exist, a bad body)."""
    token = api.credentials.create_token(api.project_id, "kestra", 3600)
    client = TestClient(api.client.app, base_url="http://127.0.0.1:8080")
    assert client.get(api.base, headers={"X-Auth-Token": token + "x"}).status_code >= 400
    missing = client.get(f"{api.base}/{'0' * 8}-0000-0000-0000-{'0' * 12}",
                         headers={"X-Auth-Token": token})  # fmt: skip
    assert missing.status_code == 400 and missing.json()["error_code"] == "0176"
    bad = client.post(
        api.base,
        headers={"X-Auth-Token": token, "Content-Type": "application/json"},
        content='{"job_type": "SparkSubmit", "job_name": "has space"}',
    )
    assert bad.status_code == 400 and bad.json()["error_code"]
