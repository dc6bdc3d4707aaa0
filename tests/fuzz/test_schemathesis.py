"""Schemathesis against the service's own OpenAPI document, in process (no network).

Every operation is fuzzed in positive and negative mode. Cases are signed with an
``X-Auth-Token`` and mostly aimed at the bootstrapped project/cluster and at seeded jobs (so
they reach the handlers), with a share of arbitrary path values, unknown/foreign credentials,
a cluster without engines and a cluster whose queue is full. Checked on every response:

- no 5xx (``not_a_server_error``), status, content type and body match the OpenAPI document;
- negative (schema-invalid) data is refused;
- every error is exactly ``{"error_code": str, "error_msg": str}`` with a code the contract
  allows for its status, and every response has ``X-Request-Id`` (429/503: ``Retry-After``);
- no secret property value ever comes back;
- a refused request (4xx) changed nothing in the store.

The run is deterministic (``derandomize``, no example database, fixed seeded ids), bounded by
``max_examples`` per operation and mode, and prints the cases run at the end of the session.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fuzz_support import (
    FUZZ_CODES,
    FUZZ_STATS,
    SECRET_MARK,
    fingerprint,
    make_store,
    mrs_error_problems,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobrows import add_sql_results, insert_job
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.feedback import NO_FEEDBACK
from schemathesis.specs.openapi._caches import clear_all as clear_schemathesis_caches
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from mrs_jobs.api.app import create_app
from mrs_jobs.domain.jobtypes import JobType
from mrs_jobs.secretbox import load_secret_box
from mrs_jobs.services.bootstrap import bootstrap
from mrs_jobs.services.cluster_admin import ClusterAdmin
from mrs_jobs.services.credentials import CredentialService
from mrs_jobs.services.projects import ProjectService
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store

PREFIX = "/v2/{project_id}/clusters/{cluster_id}/job-executions"
V11 = "/v1.1/{project_id}/cluster_infos"
FILES = "/v2/{project_id}/clusters/{cluster_id}/files"
USAGE = "/v2/{project_id}/clusters/{cluster_id}/job-usage"
EVENTS = "/v2/{project_id}/clusters/{cluster_id}/job-events"
V11_JOBS = "/v1.1/{project_id}"
SQL = "/v2/{project_id}/clusters/{cluster_id}/sql-execution"
OPERATIONS = [
    ("POST", PREFIX),
    ("GET", PREFIX),
    ("GET", PREFIX + "/{job_execution_id}"),
    ("GET", PREFIX + "/{job_execution_id}/sql-result"),
    ("GET", PREFIX + "/{job_execution_id}/log"),
    ("GET", PREFIX + "/{job_execution_id}/events"),
    ("POST", PREFIX + "/{job_execution_id}/kill"),
    ("GET", "/v2/{project_id}/permissions"),
    ("GET", V11),
    ("GET", V11 + "/{cluster_id}"),
    ("GET", FILES),
    ("GET", USAGE),
    ("GET", EVENTS),
    ("POST", SQL),
    ("GET", SQL + "/{sql_id}"),
    ("POST", SQL + "/{sql_id}/cancel"),
    ("POST", V11_JOBS + "/jobs/submit-job"),
    ("GET", V11_JOBS + "/job-exes"),
    ("GET", V11_JOBS + "/job-exes/{job_exe_id}"),
    ("DELETE", V11_JOBS + "/job-executions/{job_execution_id}"),  # deletes seeded jobs too
    ("POST", PREFIX + "/batch-delete"),  # last: it deletes seeded jobs the others aim at
]
#: Operations whose OpenAPI entry does not declare the error statuses yet (so the status code
#: check is skipped for their errors; the MRS error-body check still applies). See
#: test_every_operation_declares_its_errors.
UNDECLARED_ERRORS: set[tuple[str, str]] = set()


def _negated(case: Any, location: ParameterLocation) -> bool:
    meta = case.meta
    info = meta.components.get(location) if meta is not None else None
    return info is not None and info.mode.is_negative


def _short(path: str) -> str:
    return (
        path.replace(PREFIX, "job-executions")
        .replace(V11, "v1.1/cluster_infos")
        .replace(V11_JOBS, "v1.1")
        .replace(SQL, "sql-execution")
    )


EMPTY_202 = {("POST", PREFIX + "/batch-delete"), ("POST", PREFIX + "/{job_execution_id}/kill")}
MAX_EXAMPLES = {"positive": 100, "negative": 50}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EMPTY_202_SKIPS = (content_type_conformance, response_schema_conformance)
ALL_TYPES = frozenset(t.value for t in JobType)
# SparkSubmit first: hypothesis leans towards the first element, and every cluster has Spark.
TYPES_SPARK_FIRST = sorted(ALL_TYPES, key=lambda t: (t != "SparkSubmit", t))
_NS = uuid.UUID("5d1f8a43-3a5b-4c43-9d0e-6f00f1d2a001")


def seeded_id(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


@dataclass
class World:
    db: str
    store: Store
    app: FastAPI
    schema: Any
    project_id: str
    cluster_id: str
    bare_cluster: str  # no engines: 0057/0168/0169
    full_cluster: str  # max_queued=0: 429 0202
    token: str
    other_token: str  # another project's: 403
    job_ids: list[str]
    files_root: str = ""  # the bootstrap cluster's input root (the files API)


def _seed(store: Store, p: str, c: str, other_p: str, other_c: str, logs: Path) -> list[str]:
    ids = []
    for state in (
        "NEW",
        "NEW_SAVING",
        "SUBMITTED",
        "ACCEPTED",
        "RUNNING",
        "FINISHED",
        "FAILED",
        "KILLED",
    ):
        ids.append(insert_job(store, p, c, id=seeded_id(state), state=state))
    sql_done = insert_job(store, p, c, id=seeded_id("sql"), job_type="SparkSql", state="FINISHED")
    add_sql_results(store, sql_done, {0: [{"a": "1"}], 1: [{"result": "succeed"}]})
    ids.append(sql_done)
    ids.append(
        insert_job(store, p, c, id=seeded_id("sql-running"), job_type="HiveSql", state="RUNNING")
    )
    secret_props = {
        "fs.obs.secret.key": SECRET_MARK + "seeded-sk",
        "fs.obs.access.key": SECRET_MARK + "seeded-ak",
        "db.password": SECRET_MARK + "pw",
        "spark.executor.memory": "1g",
    }
    ids.append(insert_job(store, p, c, id=seeded_id("secrets"), properties=secret_props))
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "stdout.log").write_bytes(b"line 1\nline 2\n" * 100)
    (logs / "stderr.log").write_bytes("\u00e9rr\u00f6r \xff\n".encode("utf-8", "replace") * 10)
    ids.append(insert_job(store, p, c, id=seeded_id("logs"), state="RUNNING", workdir=str(logs)))
    ids.append(insert_job(store, p, c, id=seeded_id("deleted"), state="KILLED", deleted_ms=1))
    # SQL executions (deleted_ms -1, store/sql_executions.py): the sql-execution routes' ids,
    # and ids every job route must answer as missing.
    for state in ("SUBMITTED", "RUNNING", "FINISHED"):
        sql_id = seeded_id(f"sql-execution-{state}")
        ids.append(
            insert_job(
                store,
                p,
                c,
                id=sql_id,
                job_type="SparkSql",
                state=state,
                deleted_ms=-1,
                arguments=["--database", "default", "-e", "SELECT 1"],
            )
        )
    add_sql_results(store, seeded_id("sql-execution-FINISHED"), {0: [{"a": "1", "b": "NULL"}]})
    ids.append(insert_job(store, other_p, other_c, id=seeded_id("foreign"), state="RUNNING"))
    return ids


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    for store in make_store(request.config, request.param, tmp):
        # Rate limits are time-based: off, so that every run answers the same cases alike.
        settings_ = Settings(
            data_dir=tmp / "data", port=0, rate_limit_per_second=0, auth_failure_per_second=0
        )
        box = load_secret_box(settings_)
        boot = bootstrap(store, box, max_running=10, max_queued=100_000, parallelism=2)
        assert boot is not None
        clusters, credentials = ClusterAdmin(store), CredentialService(store, box)
        bare = clusters.create_cluster(
            boot.project_id, "bare", components=[], config={}, max_running=1, max_queued=10
        )
        full = clusters.create_cluster(
            boot.project_id, "full", components=["Spark"], config={}, max_running=1, max_queued=0
        )
        other_p = ProjectService(store).create_project("other")
        other_c = clusters.create_cluster(
            other_p, "o", components=["Spark"], config={}, max_running=1, max_queued=10
        )
        token = credentials.create_token(boot.project_id, "fuzz", 3600)
        other_token = credentials.create_token(other_p, "intruder", 3600)
        ids = _seed(store, boot.project_id, boot.cluster_id, other_p, other_c, tmp / "logs")
        clusters.update_cluster(boot.cluster_id, settings={"input_roots": [str(tmp / "logs")]})
        app = create_app(settings_, store, runnable_types=ALL_TYPES)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield World(
            request.param,
            store,
            app,
            schema,
            boot.project_id,
            boot.cluster_id,
            bare,
            full,
            token,
            other_token,
            ids,
            str(tmp / "logs"),
        )


# --------------------------------------------------------------------- our own strategies
# The OpenAPI document cannot say which values the service accepts (job types, the name rule,
# the list query, which ids exist), so half of the positive cases use these instead.

_SECRET_KEYS = ["fs.obs.secret.key", "fs.obs.access.key", "db.password", "auth.token", "MySecret"]
_PLAIN_KEYS = ["spark.executor.memory", "fs.obs.endpoint", "mrs.job.timeout", "k"]
# Any text but control characters (refused), unicode and shell metacharacters included.
_PRINTABLE = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=30)
# Lone surrogates travel as JSON escapes ("\\ud800") and are not text: always refused.
_SURROGATES = st.sampled_from(["\ud800", "a\udfffb"])


def submit_bodies() -> st.SearchStrategy[dict[str, Any]]:
    secret_values = st.text(alphabet="abcdef0123456789", min_size=1, max_size=8).map(
        lambda s: SECRET_MARK + s
    )
    props = st.builds(
        lambda plain, secret: {**plain, **secret},
        st.dictionaries(
            st.one_of(st.sampled_from(_PLAIN_KEYS), _PRINTABLE), _PRINTABLE, max_size=3
        ),
        st.dictionaries(st.sampled_from(_SECRET_KEYS), secret_values, max_size=2),
    )
    return st.fixed_dictionaries(
        {
            "job_type": st.one_of(
                st.sampled_from(TYPES_SPARK_FIRST), st.sampled_from(["sparksubmit", "", "Hive"])
            ),
            "job_name": st.one_of(
                st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True), st.text(max_size=70)
            ),
        },
        optional={
            "arguments": st.lists(
                st.one_of(_PRINTABLE, st.text(max_size=30), _SURROGATES), max_size=5
            ),
            "properties": props,
        },
    )


def sql_bodies() -> st.SearchStrategy[dict[str, Any]]:
    statements = ["SELECT 1", "SELECT 1; SELECT 2", "SELECT ';'", "", "-- c", "SHOW TABLES;"]
    return st.fixed_dictionaries(
        {
            "sql_type": st.one_of(
                st.sampled_from(["spark", "hive", "presto", "Spark"]), st.text(max_size=8)
            ),
            "sql_content": st.one_of(st.sampled_from(statements), _PRINTABLE, _SURROGATES),
        },
        optional={
            "database": st.one_of(st.sampled_from(["default", "a-b", ""]), _PRINTABLE),
            "archive_path": st.one_of(
                st.sampled_from(["obs://b/x", "s3a://b/../x", "/tmp", "hdfs://n/x", "rel"]),
                _PRINTABLE,
            ),
        },
    )


def batch_bodies(known: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    few = st.lists(
        st.one_of(
            st.sampled_from(known),
            st.uuids().map(str),
            st.text(max_size=40),
            st.integers(),
            st.none(),
        ),
        max_size=8,
    )
    # Around the 1,000-id limit, built rather than drawn element by element.
    many = st.integers(995, 1005).map(lambda n: [str(uuid.UUID(int=i + 1)) for i in range(n)])
    return st.fixed_dictionaries({"job_id_list": st.one_of(few, few, many)})


_INTS = st.one_of(
    st.integers(-5, 1100).map(str), st.sampled_from(["", "1_0", " 5", "\u0663", "9" * 25])
)
_LIST_PARAMS: dict[str, st.SearchStrategy[str]] = {
    "job_name": st.text(max_size=12),
    "job_id": st.one_of(st.just(seeded_id("RUNNING")), st.text(max_size=12)),
    "user": st.text(max_size=8),
    "queue": st.sampled_from(["default", "x"]),
    "job_type": st.one_of(st.sampled_from(sorted(ALL_TYPES)), st.text(max_size=8)),
    "job_state": st.one_of(st.sampled_from(["RUNNING", "KILLED", "running"]), st.text(max_size=8)),
    "job_result": st.sampled_from(["UNDEFINED", "SUCCEEDED", "FAILED", "KILLED", "nope"]),
    "submitted_time_begin": _INTS,
    "submitted_time_end": _INTS,
    "limit": _INTS,
    "offset": _INTS,
    "sort_by": st.sampled_from(["asc", "desc", "ASC", "up", ""]),
    "bogus": st.text(max_size=5),
}


def usage_queries() -> st.SearchStrategy[dict[str, str]]:
    """The job-usage roll-up: epoch ms, ages, and what is neither."""
    moment = st.one_of(
        _INTS,
        st.sampled_from(["7d", "12h", "30m", "2w", "0d", "999999w", "7x", "d7", "-1d", "1e3"]),
        st.text(max_size=6),
    )
    optional = {
        "since": moment,
        "until": moment,
        "group_by": st.sampled_from(["user", "job_type", "day", "queue", ""]),
        "bogus": st.text(max_size=5),
    }
    return st.fixed_dictionaries({}, optional=optional)


def event_queries() -> st.SearchStrategy[dict[str, str]]:
    """The job event stream: cursors, limits, and waits that are refused or do not wait (a
    valid wait would hold each case for seconds)."""
    optional = {
        "after": st.one_of(_INTS, st.sampled_from(["now", "0", "-1", "1e3"]), st.text(max_size=6)),
        "limit": _INTS,
        "wait": st.sampled_from(["0", "", "61", "-1", "x", "1.5", "99999999999999999999999"]),
        "job_id": st.one_of(st.just(seeded_id("RUNNING")), st.text(max_size=70)),
        "bogus": st.text(max_size=5),
    }
    return st.fixed_dictionaries({}, optional=optional)


def list_queries() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional=_LIST_PARAMS)


_CLUSTER_PARAMS: dict[str, st.SearchStrategy[str]] = {
    "pageSize": _INTS,
    "currentPage": _INTS,
    "clusterName": st.one_of(st.sampled_from(["local", "bare"]), st.text(max_size=8)),
    "clusterState": st.one_of(st.sampled_from(["running", "existed", "RUNNING"]), st.text()),
    "tags": st.one_of(st.sampled_from(["k1*v1,k2", "*v", ",,"]), st.text(max_size=10)),
    "enterpriseProjectId": st.text(max_size=8),
}


def cluster_queries() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional=_CLUSTER_PARAMS)


def file_queries(root: str) -> st.SearchStrategy[dict[str, str]]:
    """The files API: mostly the bootstrap cluster's root (the seeded logs directory)."""
    paths = [root, f"{root}/stdout.log", f"file://{root}", "/", "/etc", f"{root}/..", "rel"]
    optional = {
        "offset": _INTS,
        "limit": _INTS,
        "sort_key": st.sampled_from(["path_suffix", "length", "modification_time", "owner"]),
        "order": st.sampled_from(["asc", "desc", "up", ""]),
        "bogus": st.text(max_size=5),
    }
    path = st.one_of(st.sampled_from(paths), st.text(max_size=12))
    return st.fixed_dictionaries({"path": path}, optional=optional)


def v1_submit_bodies(cluster: str) -> st.SearchStrategy[dict[str, Any]]:
    """MRS v1.1 submit-job: numeric types (4 and 7 refused), v1 fields, Terraform's flags."""
    paths = st.one_of(
        st.sampled_from(["/opt/a.py", "/j/x.jar", "/s/q.sql", "obs://b/in", "s3a://b/o/", ""]),
        _PRINTABLE,
    )
    # Half of them well formed (the MRS reference's examples), so that submits get through.
    formed = st.sampled_from(
        [
            {"job_type": 2, "jar_path": "/opt/a.py", "arguments": "10 org.x.Y"},
            {"job_type": 1, "jar_path": "/j/x.jar", "arguments": "wordcount", "input": "/i"},
            {"job_type": 3, "hive_script_path": "/s/q.sql", "job_log": "obs://b/log"},
            {"job_type": 6, "jar_path": "/s/q.sql", "arguments": "--hivevar x=1"},
            {"job_type": 5, "input": "obs://b/in", "output": "/o", "file_action": "import"},
        ]
    ).map(lambda b: {"job_name": "fuzz-v1", "cluster_id": cluster, **b})
    return formed | st.fixed_dictionaries(
        {
            "job_type": st.one_of(st.integers(-1, 8), st.sampled_from(["2", True, None])),
            "job_name": st.one_of(
                st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True), st.text(max_size=70)
            ),
            "cluster_id": st.one_of(st.just(cluster), st.text(max_size=8)),
        },
        optional={
            "jar_path": paths,
            "arguments": st.one_of(
                st.sampled_from(["", "org.apache.Pi 10", "--hivevar x=1", "-update"]), _PRINTABLE
            ),
            "input": paths,
            "output": paths,
            "job_log": paths,
            "hive_script_path": paths,
            "file_action": st.sampled_from(["import", "export", "", "copy"]),
            "hql": st.sampled_from(["", "gc2hvdyB0YWLsZXM7"]),
            "is_protected": st.sampled_from([False, True, None]),
            "is_public": st.sampled_from([False, True, None]),
        },
    )


def v1_list_queries(cluster: str) -> st.SearchStrategy[dict[str, str]]:
    optional = {
        "page_size": _INTS,
        "current_page": _INTS,
        "job_name": st.text(max_size=8),
        "id": st.one_of(st.just(seeded_id("RUNNING")), st.text(max_size=12)),
        "state": st.one_of(st.sampled_from(["-1", "1", "2", "3", "4", "5"]), st.text(max_size=3)),
        "clusterId": st.sampled_from([cluster, "x"]),
        "bogus": st.text(max_size=5),
    }
    return st.fixed_dictionaries(
        {"cluster_id": st.one_of(st.just(cluster), st.text(max_size=8))}, optional=optional
    )


IDEMPOTENCY_KEYS = st.one_of(
    st.none(),
    st.sampled_from(["k-1", "k-2", "", "x" * 129, "caf\u00e9"]),
    # header values travel as latin-1; control characters cannot be sent at all
    st.text(st.characters(max_codepoint=255, exclude_categories=("Cc",)), max_size=8),
)


# ----------------------------------------------------------------------------- the test


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize(
    ("method", "path"), OPERATIONS, ids=[f"{m} {_short(p)}" for m, p in OPERATIONS]
)
def test_operation(world: World, method: str, path: str, mode: str) -> None:
    # Schemathesis keeps process-wide generation caches that make a run depend on the tests
    # before it; cleared, every test draws the same cases whatever ran first.
    clear_schemathesis_caches()
    operation = world.schema[path][method]
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    stats = FUZZ_STATS.setdefault((world.db, f"{method} {_short(path)}", mode), Counter())
    # Where a case is aimed (weights in %). Drawn with a Random seeded by hypothesis rather than
    # with sampled_from/randoms(), which lean hard towards "simple" choices and starve the rest.
    routes = {"ours": 80, "any-project": 10, "anything": 10}
    clusters = {world.cluster_id: 70, world.bare_cluster: 10, world.full_cluster: 10, "no": 10}
    tokens = {world.token: 85, "": 5, "mrsj_not-a-token": 5, world.other_token: 5}
    # The seeded jobs this operation is most about weigh more; 20%: no seeded job at all.
    first = {"/sql-result": ["sql", "sql-running"], "/log": ["logs"], "/kill": ["SUBMITTED"]}
    executions = [f"sql-execution-{s}" for s in ("SUBMITTED", "RUNNING", "FINISHED")]
    first |= {"/{sql_id}": executions, "/cancel": executions}
    wanted = {seeded_id(n) for k, v in first.items() if path.endswith(k) for n in v}
    jobs = {j: 5 if j in wanted else 1 for j in world.job_ids}
    jobs[""] = sum(jobs.values()) // 4
    empty_202 = (method, path) in EMPTY_202
    skipped = [status_code_conformance] if (method, path) in UNDECLARED_ERRORS else []

    @settings(
        max_examples=MAX_EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(
        # No run-time feedback: constants scraped from the app (paths, random ids) and values
        # learnt from responses would make the run differ from one process to the next.
        case=operation.as_strategy(generation_mode=generation, feedback=NO_FEEDBACK),
        seed=st.integers(0, 2**32 - 1),
        data=st.data(),
    )
    def run(case: Any, seed: int, data: st.DataObject) -> None:
        # Hypothesis repeats "simple" seeds (0, 1, ...); mixed with the case, every example gets
        # its own stream, still the same from one run to the next.
        digest = hashlib.sha256(f"{seed}|{case!r}".encode("utf-8", "surrogatepass")).digest()
        rnd = random.Random(int.from_bytes(digest[:8], "big"))

        def pick(weights: dict[str, int]) -> str:
            return rnd.choices(list(weights), weights=list(weights.values()))[0]

        route, cluster, job, token = pick(routes), pick(clusters), pick(jobs), pick(tokens)
        ours = rnd.random() < 0.85  # our own body/query rather than schemathesis'
        params = dict(case.path_parameters)
        if _negated(case, ParameterLocation.PATH):
            # A negative case aimed at the path keeps its path: schemathesis would otherwise
            # still blame the (now valid) path for what the server accepts.
            route = "anything"
        if route == "ours":  # our project, a real (or deliberately wrong) cluster
            params["project_id"] = world.project_id
            if "cluster_id" in params:
                params["cluster_id"] = cluster
            if "job_execution_id" in params and job:
                params["job_execution_id"] = job
            if "job_exe_id" in params and job:
                params["job_exe_id"] = job
            if "sql_id" in params and job:
                params["sql_id"] = job
        elif route == "any-project" and "cluster_id" in params:
            params["cluster_id"] = world.cluster_id
        case.path_parameters = params
        # Sent alongside the case (not written into it), so that schemathesis does not
        # re-classify the case: neither list query is in the document, nor X-Idempotency-Key.
        headers = {"X-Auth-Token": token} if token else {}
        query: dict[str, str] = {}
        if (method, path) == ("GET", PREFIX):
            query = data.draw(list_queries())
        elif (method, path) == ("GET", V11):
            query = data.draw(cluster_queries())
        elif (method, path) == ("GET", FILES):
            query = data.draw(file_queries(world.files_root))
        elif (method, path) == ("GET", USAGE):
            query = data.draw(usage_queries())
        elif (method, path) == ("GET", EVENTS):
            query = data.draw(event_queries())
        elif (method, path) == ("GET", V11_JOBS + "/job-exes"):
            query = data.draw(v1_list_queries(cluster))
        elif (method, path) == ("POST", V11_JOBS + "/jobs/submit-job"):
            if mode == "positive" and ours:
                case.body = data.draw(v1_submit_bodies(cluster))
        elif (method, path) == ("POST", PREFIX):
            if mode == "positive" and ours:
                case.body = data.draw(submit_bodies())
            key = data.draw(IDEMPOTENCY_KEYS) if rnd.random() < 0.3 else None
            if key is not None:
                headers["X-Idempotency-Key"] = key
        elif (method, path) == ("POST", SQL) and mode == "positive" and ours:
            case.body = data.draw(sql_bodies())
        elif (method, path) == ("POST", PREFIX + "/batch-delete") and mode == "positive" and ours:
            case.body = data.draw(batch_bodies(world.job_ids))

        before = fingerprint(world.store)
        response = case.call(headers=headers, params=query)
        stats[response.status_code] += 1
        if response.status_code >= 400 and response.content.startswith(b"{"):
            code = json.loads(response.content).get("error_code")
            FUZZ_CODES.setdefault(world.db, Counter())[f"{response.status_code}/{code}"] += 1
        if os.environ.get("MRS_FUZZ_TRACE"):
            print(
                "TRACE",
                world.db,
                response.status_code,
                response.request.url,
                response.content[:120],
                (response.request.body or b"")[:300],
                file=sys.stderr,
            )
        problems = mrs_error_problems(response.status_code, response.headers, response.content)
        assert not problems, (problems, response.status_code, response.content[:500])
        if 400 <= response.status_code < 500:
            assert fingerprint(world.store) == before, "a refused request changed the store"
        checks = CHECKS
        if empty_202 and response.status_code == 202:
            # Contract: 202 with an empty body. The OpenAPI document declares the 202 as
            # application/json (see test_empty_202_is_documented_without_content).
            assert response.content == b"", response.content[:200]
            checks = [c for c in checks if c not in EMPTY_202_SKIPS]
        if response.status_code >= 400 and skipped:
            checks = [c for c in checks if c not in skipped]
        case.validate_response(response, checks=checks, headers=headers)

    run()


def test_empty_202_is_documented_without_content(world: World) -> None:
    doc = world.app.openapi()
    for method, path in EMPTY_202:
        accepted = doc["paths"][path][method.lower()]["responses"]["202"]
        assert not accepted.get("content"), (path, accepted)


def _documented(world: World) -> set[tuple[str, str]]:
    doc = world.app.openapi()
    return {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}


def test_every_documented_operation_is_fuzzed(world: World) -> None:
    assert _documented(world) == set(OPERATIONS)


def test_every_operation_declares_its_errors(world: World) -> None:
    doc = world.app.openapi()
    declared = {
        (method, path)
        for method, path in OPERATIONS
        if {"400", "401", "403"} <= set(doc["paths"][path][method.lower()]["responses"])
    }
    assert declared == set(OPERATIONS) - UNDECLARED_ERRORS, (
        "update UNDECLARED_ERRORS: these operations declare (or no longer declare) the errors",
        declared ^ (set(OPERATIONS) - UNDECLARED_ERRORS),
    )
