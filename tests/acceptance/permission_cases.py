"""The permission matrix's cases (tests/acceptance/test_permission_matrix.py): the policies with
the actions each allows, one way to call every API route, and what the calls act on.

A :class:`Case` says how to call one route: the job or statement it acts on (made by the
bootstrap credential on a cluster without running slots, so nothing reaches an engine), its
body and query for httpx, the official SDK's operation where the SDK has one, and what an
allowed call changes. :func:`call` makes the call with one credential: the SDK with AK/SK where
it can, httpx signed with AK/SK where the SDK has no such operation, httpx with
``X-Auth-Token`` for tokens.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from mrs_acceptance import RunningServer, client_for, under_sdk_home
from sqlalchemy import text
from support import SigV4Auth

from mrs_jobs.api.app import create_app
from mrs_jobs.api.permissions import declared_action
from mrs_jobs.domain.policies import ACTIONS
from mrs_jobs.secretbox import load_secret_box
from mrs_jobs.services.credentials import CredentialService
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store.audit import list_audit

with under_sdk_home():  # the SDK writes ~/.huaweicloud on import
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.exceptions.exceptions import ServiceResponseException
    from huaweicloudsdkmrs import v1 as sdk1
    from huaweicloudsdkmrs import v2 as sdk2

__all__ = [
    "CASES",
    "DENIED",
    "KINDS",
    "POLICIES",
    "Case",
    "Ctx",
    "Outcome",
    "app_route_actions",
    "assert_changed",
    "call",
    "denial_rows",
    "sdk1",
    "sdk2",
    "sdk_outcome",
    "store_of",
    "v1_client",
]

MISSING_APP = "/nonexistent/mrs-jobs-acceptance/app.py"
DENIED = "APIGW.0302"
ALL = frozenset(ACTIONS)


def _doc(*statements: tuple[str, list[str]]) -> str:
    return json.dumps(
        {"Version": "1.1", "Statement": [{"Effect": e, "Action": a} for e, a in statements]}
    )


# -- policies ---------------------------------------------------------------------------------
# Each with the actions it allows, written out by hand (the spec); test_the_expectations_are_
# the_policy_engines checks the domain's Policy.allows agrees before the server is asked.

POLICIES: dict[str, tuple[str, frozenset[str]]] = {
    "full": ("MRS FullAccess", ALL),
    "common": ("MRS CommonOperations", ALL),  # denies only the owner-scope …Any actions
    "readonly": (
        "MRS ReadOnlyAccess",
        frozenset(
            {
                "mrs:job:list",
                "mrs:job:get",
                "mrs:sql:get",
                "mrs:file:list",
                "mrs:cluster:list",
                "mrs:cluster:get",
                "mrs:credential:get",
            }
        ),
    ),
    # A wildcard at the end of a segment: get* matches get itself.
    "job-get-star": (_doc(("Allow", ["mrs:job:get*"])), frozenset({"mrs:job:get"})),
    # A wildcard segment.
    "star-list": (
        _doc(("Allow", ["mrs:*:list"])),
        frozenset({"mrs:job:list", "mrs:file:list", "mrs:cluster:list"}),
    ),
    "sql-star": (
        _doc(("Allow", ["mrs:sql:*"])),
        frozenset({"mrs:sql:execute", "mrs:sql:get", "mrs:sql:cancel"}),
    ),
    # Deny beats Allow, after it and before it.
    "deny-batch-delete": (
        _doc(("Allow", ["mrs:*:*"]), ("Deny", ["mrs:job:batchDelete"])),
        ALL - {"mrs:job:batchDelete"},
    ),
    "deny-first-stop": (
        _doc(("Deny", ["mrs:job:stop"]), ("Allow", ["mrs:*:*"])),
        ALL - {"mrs:job:stop"},
    ),
    # Another service's actions only: nothing here.
    "ecs-only": (_doc(("Allow", ["ecs:*:*"])), frozenset()),
    # Matching ignores case, in Allow and in Deny.
    "mixed-case": (
        _doc(("Allow", ["MRS:JOB:*", "Mrs:Cluster:LIST"]), ("Deny", ["mrs:JOB:BATCHDELETE"])),
        frozenset(
            {
                "mrs:job:submit",
                "mrs:job:list",
                "mrs:job:get",
                "mrs:job:stop",
                "mrs:job:delete",
                "mrs:cluster:list",
            }
        ),
    ),
}
KINDS = ("aksk", "token")
Target = str | None  # the job or statement a call acts on


# -- the server and what the calls act on ----------------------------------------------------


@dataclass
class Outcome:
    status: int
    error_code: str | None = None
    error_msg: str | None = None
    request_id: str | None = None
    body: Any = None


@dataclass
class Ctx:
    server: RunningServer
    store: Store
    credentials: CredentialService
    http: httpx.Client
    admin2: sdk2.MrsClient
    held: str  # a cluster without running slots: its jobs and statements stay queued
    files_dir: Path
    job: str  # a queued job for the read-only calls
    sql: str  # a queued statement
    issued: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def pid(self) -> str:
        return self.server.project_id

    # Targets made by the bootstrap (FullAccess) credential.
    def queued_job(self, name: str = "pm-target") -> str:
        resp = self.admin2.create_execute_job(
            sdk2.CreateExecuteJobRequest(
                cluster_id=self.held,
                body=sdk2.JobExecution(
                    job_type="SparkSubmit", job_name=name, arguments=[MISSING_APP]
                ),
            )
        )
        job_id = resp.job_submit_result.job_id
        self.server.submitted.add(job_id)
        return job_id

    def killed_job(self) -> str:
        job_id = self.queued_job("pm-killed")
        self.admin2.stop_job(sdk2.StopJobRequest(cluster_id=self.held, job_execution_id=job_id))
        assert self.state(job_id) == "KILLED"
        return job_id

    def queued_sql(self) -> str:
        resp = self.admin2.execute_sql(
            sdk2.ExecuteSqlRequest(
                cluster_id=self.held,
                body=sdk2.SqlExecutionReq(sql_type="spark", sql_content="SELECT 1"),
            )
        )
        assert resp.status == "QUEUED"
        return resp.id

    def row(self, job_id: Target) -> tuple[str, bool] | None:
        """(state, deleted) of a job or statement in the store; None once it is gone."""
        with self.store.read() as conn:
            row = conn.execute(
                text("SELECT state, deleted_ms FROM jobs WHERE id = :i"), {"i": job_id}
            ).first()
        return None if row is None else (str(row[0]), bool(row[1]))

    def state(self, job_id: Target) -> str | None:
        found = self.row(job_id)
        return None if found is None else found[0]

    def rows_of(self, user: str) -> int:
        """How many jobs and statements ``user`` has submitted."""
        with self.store.read() as conn:
            q = text("SELECT count(*) FROM jobs WHERE user_name = :u")
            return int(conn.execute(q, {"u": user}).scalar_one())

    def snapshot(self, target: Target, user: str) -> tuple[Any, int]:
        """What a refused call must leave as it was: its target and what its user created."""
        return (None if target is None else self.row(target), self.rows_of(user))

    def credential(self, policy_key: str, kind: str) -> Any:
        """A fresh credential per policy and kind (AK/SK are cached server-side for seconds,
        so a policy is never changed in place here); its user names the pair, for the audit."""
        key = (policy_key, kind)
        if key not in self.issued:
            policy, user = POLICIES[policy_key][0], f"pm-{policy_key}-{kind}"
            if kind == "aksk":
                self.issued[key] = self.credentials.issue_aksk(self.pid, user, policy=policy)
            else:
                self.issued[key] = self.credentials.create_token(
                    self.pid, user, 3600, policy=policy
                )
        return self.issued[key]


def store_of(server: RunningServer) -> tuple[Store, CredentialService]:
    """The running server's own store and key, opened in this process (as the admin CLI does)."""
    settings = Settings(
        data_dir=server.data_dir,
        database_url=None,
        secret_key=None,
        secret_key_file=None,
        old_secret_key_files="",
    )
    store = Store(settings.effective_database_url)
    return store, CredentialService(store, load_secret_box(settings, create=False))


# -- the route table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """How to call one route: the target it acts on, its body and query (for httpx), the SDK
    operation if the SDK has one, and what an allowed call changes."""

    method: str
    path: str
    target: Callable[[Ctx], Target] = lambda c: c.job
    body: Callable[[Ctx, Target], dict[str, Any] | None] = lambda c, t: None
    query: Callable[[Ctx, Target], dict[str, str]] = lambda c, t: {}
    sdk: Callable[[Any, Any, Ctx, Target], Any] | None = None  # (v2, v1, ctx, target)
    #: What an allowed call that succeeded changed: creates (a row of its user), kills
    #: (the target KILLED), deletes (the target deleted or gone); None: nothing.
    change: str | None = None


V2 = "/v2/{project_id}/clusters/{cluster_id}"
JOBS = V2 + "/job-executions"
V11 = "/v1.1/{project_id}"


def _submit_body(c: Ctx, t: Target) -> dict[str, Any]:
    return {"job_type": "SparkSubmit", "job_name": "pm-submit", "arguments": [MISSING_APP]}


def _v11_body(c: Ctx, t: Target) -> dict[str, Any]:
    roots = c.files_dir.parent
    return {
        "job_type": 5,
        "job_name": "pm-v11",
        "cluster_id": c.held,
        "input": str(roots / "in.txt"),
        "output": str(roots / f"out-{uuid.uuid4().hex}.txt"),
        "file_action": "import",
    }


def _sql_body(c: Ctx, t: Target) -> dict[str, Any]:
    return {"sql_type": "spark", "sql_content": "SELECT 1"}


CASES: dict[str, Case] = {
    # -- v2 jobs
    "v2-submit": Case(
        "POST",
        JOBS,
        target=lambda c: None,
        body=_submit_body,
        sdk=lambda v2, v1, c, t: v2.create_execute_job(
            sdk2.CreateExecuteJobRequest(
                cluster_id=c.held, body=sdk2.JobExecution(**_submit_body(c, t))
            )
        ),
        change="creates",
    ),
    "v2-list": Case(
        "GET",
        JOBS,
        sdk=lambda v2, v1, c, t: v2.show_job_exe_list_new(
            sdk2.ShowJobExeListNewRequest(cluster_id=c.held)
        ),
    ),
    "v2-show": Case(
        "GET",
        JOBS + "/{job_execution_id}",
        sdk=lambda v2, v1, c, t: v2.show_single_job_exe(
            sdk2.ShowSingleJobExeRequest(cluster_id=c.held, job_execution_id=t)
        ),
    ),
    "v2-kill": Case(
        "POST",
        JOBS + "/{job_execution_id}/kill",
        target=lambda c: c.queued_job(),
        sdk=lambda v2, v1, c, t: v2.stop_job(
            sdk2.StopJobRequest(cluster_id=c.held, job_execution_id=t)
        ),
        change="kills",
    ),
    "v2-batch-delete": Case(
        "POST",
        JOBS + "/batch-delete",
        target=lambda c: c.killed_job(),
        body=lambda c, t: {"job_id_list": [t]},
        sdk=lambda v2, v1, c, t: v2.batch_delete_jobs(
            sdk2.BatchDeleteJobsRequest(
                cluster_id=c.held, body=sdk2.JobBatchDelete(job_id_list=[t])
            )
        ),
        change="deletes",
    ),
    "v2-sql-result": Case(
        "GET",
        JOBS + "/{job_execution_id}/sql-result",
        sdk=lambda v2, v1, c, t: v2.show_sql_result_with_job(
            sdk2.ShowSqlResultWithJobRequest(cluster_id=c.held, job_execution_id=t)
        ),
    ),
    "v2-log": Case("GET", JOBS + "/{job_execution_id}/log"),
    "v2-job-events": Case("GET", JOBS + "/{job_execution_id}/events"),
    "v2-cluster-events": Case("GET", V2 + "/job-events"),
    "v2-usage": Case("GET", V2 + "/job-usage"),
    "v2-files": Case(
        "GET",
        V2 + "/files",
        query=lambda c, t: {"path": str(c.files_dir)},
        sdk=lambda v2, v1, c, t: v2.show_hdfs_file_list(
            sdk2.ShowHdfsFileListRequest(cluster_id=c.held, path=str(c.files_dir))
        ),
    ),
    # -- SQL execution
    "sql-execute": Case(
        "POST",
        V2 + "/sql-execution",
        target=lambda c: None,
        body=_sql_body,
        sdk=lambda v2, v1, c, t: v2.execute_sql(
            sdk2.ExecuteSqlRequest(cluster_id=c.held, body=sdk2.SqlExecutionReq(**_sql_body(c, t)))
        ),
        change="creates",
    ),
    "sql-show": Case(
        "GET",
        V2 + "/sql-execution/{sql_id}",
        target=lambda c: c.sql,
        sdk=lambda v2, v1, c, t: v2.show_sql_result(
            sdk2.ShowSqlResultRequest(cluster_id=c.held, sql_id=t)
        ),
    ),
    "sql-cancel": Case(
        "POST",
        V2 + "/sql-execution/{sql_id}/cancel",
        target=lambda c: c.queued_sql(),
        sdk=lambda v2, v1, c, t: v2.cancel_sql(sdk2.CancelSqlRequest(cluster_id=c.held, sql_id=t)),
        change="kills",
    ),
    # -- ours
    "permissions": Case("GET", "/v2/{project_id}/permissions", target=lambda c: None),
    # -- v1.1
    "v11-clusters": Case(
        "GET",
        V11 + "/cluster_infos",
        target=lambda c: None,
        sdk=lambda v2, v1, c, t: v1.list_clusters(sdk1.ListClustersRequest()),
    ),
    "v11-cluster": Case(
        "GET",
        V11 + "/cluster_infos/{cluster_id}",
        target=lambda c: None,
        sdk=lambda v2, v1, c, t: v1.show_cluster_details(
            sdk1.ShowClusterDetailsRequest(cluster_id=c.held)
        ),
    ),
    "v11-submit": Case(
        "POST",
        V11 + "/jobs/submit-job",
        target=lambda c: None,
        body=_v11_body,
        sdk=lambda v2, v1, c, t: v1.create_and_execute_job(
            sdk1.CreateAndExecuteJobRequest(body=sdk1.SubmitJobReqV11(**_v11_body(c, t)))
        ),
        change="creates",
    ),
    "v11-list": Case(
        "GET",
        V11 + "/job-exes",
        query=lambda c, t: {"cluster_id": c.held},
        sdk=lambda v2, v1, c, t: v1.list_execute_job(sdk1.ListExecuteJobRequest(cluster_id=c.held)),
    ),
    "v11-show": Case(
        "GET",
        V11 + "/job-exes/{job_exe_id}",
        sdk=lambda v2, v1, c, t: v1.show_job_exes(sdk1.ShowJobExesRequest(job_exe_id=t)),
    ),
    "v11-delete": Case(
        "DELETE",
        V11 + "/job-executions/{job_execution_id}",
        target=lambda c: c.killed_job(),
        sdk=lambda v2, v1, c, t: v1.delete_job_execution(
            sdk1.DeleteJobExecutionRequest(job_execution_id=t)
        ),
        change="deletes",
    ),
}


def app_route_actions(data_dir: Path) -> dict[tuple[str, str], str | None]:
    """(method, path) → declared action of every /v2 and /v1.1 route of the app itself (built
    over a throwaway store: only its routes are read)."""
    settings = Settings(data_dir=data_dir, database_url=None)
    store = Store(settings.effective_database_url)
    store.migrate()
    try:
        app = create_app(settings, store, runnable_types=frozenset({"SparkSubmit"}))
    finally:
        store.dispose()  # building the app reads nothing from it
    found: dict[tuple[str, str], str | None] = {}
    for route in app.routes:
        contexts = (
            [(c.path, c.original_route) for c in route.effective_route_contexts()]
            if hasattr(route, "effective_route_contexts")
            else [(getattr(route, "path", repr(route)), route)]
        )
        for path, original in contexts:
            for method in getattr(original, "methods", None) or ("ANY",):
                if method != "HEAD" and path.startswith(("/v2/", "/v1.1/")):
                    found[(method, path)] = declared_action(original)
    return found


# -- calling ----------------------------------------------------------------------------------


def v1_client(endpoint: str, ak: str, sk: str, project_id: str) -> sdk1.MrsClient:
    """The official SDK's v1 client (MRS v1.1: clusters and v1.1 jobs)."""
    return (
        sdk1.MrsClient.new_builder()
        .with_credentials(BasicCredentials(ak, sk, project_id))
        .with_endpoints([endpoint])
        .build()
    )


def sdk_outcome(call: Callable[[], Any]) -> Outcome:
    try:
        call()
    except ServiceResponseException as exc:
        return Outcome(exc.status_code, exc.error_code, exc.error_msg, exc.request_id)
    return Outcome(200)


def _http_outcome(r: httpx.Response) -> Outcome:
    try:
        body = r.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return Outcome(
        r.status_code,
        body.get("error_code"),
        body.get("error_msg"),
        r.headers.get("x-request-id"),
        body,
    )


def call(c: Ctx, case: Case, kind: str, cred: Any, target: Target) -> Outcome:
    if kind == "aksk" and case.sdk is not None:
        v2 = client_for(c.server.endpoint, cred.ak, cred.sk, c.pid)
        v1 = v1_client(c.server.endpoint, cred.ak, cred.sk, c.pid)
        return sdk_outcome(lambda: case.sdk(v2, v1, c, target))
    url = case.path.format(
        project_id=c.pid,
        cluster_id=c.held,
        job_execution_id=target,
        job_exe_id=target,
        sql_id=target,
    )
    auth: httpx.Auth | None = None
    headers: dict[str, str] = {}
    if kind == "aksk":
        auth = SigV4Auth(cred.ak, cred.sk, c.pid)
    else:
        headers["X-Auth-Token"] = cred
    body = case.body(c, target)
    r = c.http.request(
        case.method,
        url,
        params=case.query(c, target),
        content=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        auth=auth,
    )
    return _http_outcome(r)


def denial_rows(c: Ctx, action: str, request_id: str) -> list[dict[str, Any]]:
    with c.store.read() as conn:
        rows = list_audit(conn, project_id=c.pid, action=action, limit=100_000)
    return [a for a in rows if a["request_id"] == request_id]


def assert_changed(c: Ctx, change: str, target: Target, user: str, before: Any) -> None:
    if change == "creates":
        assert c.rows_of(user) == before[1] + 1
    elif change == "kills":
        assert c.state(target) == "KILLED"
    else:  # deletes: at once, or marked for the purge
        assert c.row(target) in (None, ("KILLED", True)), c.row(target)
