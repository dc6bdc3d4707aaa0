"""MRS v1.1 jobs (``/v1.1/{project_id}/jobs/submit-job``, ``job-exes``): the field mapping.

v1 names a job type by number and gives the program as fields (``jar_path``, ``arguments`` as
one string, ``input``, ``output``, ``hive_script_path``, ``file_action``); our jobs are the v2
ones (a type name and an argument list). This module turns a v1 submission into a v2 one and
any job (however submitted) into the v1 ``JobExecution`` shape the official SDK v1 reads.
Pure: no HTTP, no store. Choices where v1 has no equivalent are in docs/api.md ("v1.1 jobs").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mrs_jobs.domain import render
from mrs_jobs.domain.job import Job, to_mrs
from mrs_jobs.domain.states import JobResult, JobState
from mrs_jobs.domain.validation import ListQuery, check_query, query_int
from mrs_jobs.errors import InvalidParameter

__all__ = [
    "DATA_PROPERTY",
    "FILE_ACTION_PROPERTY",
    "JOB_LOG_PROPERTY",
    "V1_STATE_FILTERS",
    "V1_TYPES",
    "V1Submission",
    "final_status",
    "parse_list_query",
    "to_job_execution",
    "to_submit_result",
    "v1_state",
    "v1_type",
]

#: v1 job type code -> our job type (v2 name). 4 (HiveQL) and 7 (Spark SQL) are documented by
#: MRS as "not supported in this API"; they are refused here too (v2 runs them).
V1_TYPES: dict[int, str] = {
    1: "MapReduce",
    2: "SparkSubmit",
    3: "HiveScript",
    5: "DistCp",
    6: "SparkScript",
}
_UNSUPPORTED_TYPES = {4: "HiveQL", 7: "Spark SQL"}
#: our job type -> v1 code (every type a v1 list can show; 0: no v1 equivalent, e.g. Flink).
_V1_CODES: dict[str, int] = {
    "MapReduce": 1,
    "SparkSubmit": 2,
    "SparkPython": 2,  # MRS shows SparkPython jobs as SparkSubmit (Spark)
    "HiveScript": 3,
    "HiveSql": 4,
    "DistCp": 5,
    "SparkScript": 6,
    "SparkSql": 7,
}
_MAX_PATH = 1023  # MRS: jar_path, input, output, job_log, hive_script_path
_MAX_ARGUMENTS = 2047
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CLASS_NAME = re.compile(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+")
_OBJECT_STORE = ("obs://", "s3a://", "s3://")
_FILE_ACTIONS = ("import", "export")
#: Properties (the service's own ``mrs.`` namespace, which no engine acts on) that keep what
#: v1 gave and the argument list cannot tell: which trailing arguments were ``input``/``output``,
#: ``job_log``, ``file_action``. Shown in the v2 ``properties`` like any other.
DATA_PROPERTY = "mrs.v1.data"
JOB_LOG_PROPERTY = "mrs.v1.job_log"
FILE_ACTION_PROPERTY = "mrs.v1.file_action"
_CLUSTER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # as in the v2 paths


def _check_cluster_id(value: str) -> str:
    if not _CLUSTER_ID.fullmatch(value):
        raise InvalidParameter("cluster_id must be 1-64 characters of [A-Za-z0-9_-].")
    return value


def v1_type(job_type: str) -> int:
    return _V1_CODES.get(str(job_type), 0)


# -- states ----------------------------------------------------------------------------------
# v1 job_state: -1 Terminated, 1 Starting, 2 Running, 3 Completed, 4 Abnormal, 5 Error.
# job_final_status: 0 unfinished, 1 ended by an execution error, 2 succeeded, 3 cancelled.


def v1_state(state: str, result: str) -> int:
    if state == JobState.KILLED:
        return -1
    if state == JobState.RUNNING:
        return 2
    if state == JobState.FINISHED:
        return 3 if result == JobResult.SUCCEEDED else 4
    if state == JobState.FAILED:
        return 5  # never ran to its end: could not launch, engine lost, timed out
    return 1  # NEW .. ACCEPTED: queued or starting


def final_status(state: str, result: str) -> int:
    if state == JobState.KILLED:
        return 3
    if result == JobResult.SUCCEEDED:
        return 2
    if state in (JobState.FINISHED, JobState.FAILED):
        return 1
    return 0


#: the list's ``state`` filter -> (job_state, job_result) of our list query.
V1_STATE_FILTERS: dict[str, tuple[str, str | None]] = {
    "-1": (JobState.KILLED.value, None),
    "2": (JobState.RUNNING.value, None),
    "3": (JobState.FINISHED.value, JobResult.SUCCEEDED.value),
    "4": (JobState.FINISHED.value, JobResult.FAILED.value),
    "5": (JobState.FAILED.value, None),
}


# -- submit ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class V1Submission:
    """A v1 ``submit-job`` body as given (empty strings for fields left out)."""

    job_type: int
    job_name: str
    cluster_id: str
    jar_path: str = ""
    arguments: str = ""
    input: str = ""
    output: str = ""
    job_log: str = ""
    file_action: str = ""
    hql: str = ""
    hive_script_path: str = ""
    is_protected: bool = False
    is_public: bool = False

    def to_v2(self) -> tuple[str, list[str], dict[str, str]]:
        """(our job type, our argument list, our properties), or InvalidParameter naming what
        v1 asked for that has no equivalent here. Nothing is looked up: the job service checks
        the rest."""
        self._check_common()
        job_type, arguments = self._arguments(self.arguments.split())
        props: dict[str, str] = {}
        if self.job_type == 5:
            props[FILE_ACTION_PROPERTY] = self.file_action
        elif self.job_type in (1, 2) and (self.input or self.output):
            names = [n for n in ("input", "output") if getattr(self, n)]
            props[DATA_PROPERTY] = " ".join(names)
        if self.job_log:
            props[JOB_LOG_PROPERTY] = self.job_log
        return job_type, arguments, props

    def _arguments(self, tokens: list[str]) -> tuple[str, list[str]]:
        if self.job_type == 5:
            return "DistCp", self._distcp(tokens)
        if self.job_type in (3, 6):
            return V1_TYPES[self.job_type], [*tokens, self._script()]
        if not self.jar_path:
            raise InvalidParameter(f"jar_path is required for job_type {self.job_type}.")
        self._refuse("hive_script_path", "file_action")
        data = [p for p in (self.input, self.output) if p]
        if self.job_type == 1:
            return "MapReduce", [self.jar_path, *tokens, *data]
        # Spark: MRS's own example gives the main class as the first argument of a .jar.
        if self.jar_path.lower().endswith(".jar") and tokens and _CLASS_NAME.fullmatch(tokens[0]):
            return "SparkSubmit", ["--class", tokens[0], self.jar_path, *tokens[1:], *data]
        return "SparkSubmit", [self.jar_path, *tokens, *data]

    def _check_common(self) -> None:
        _check_cluster_id(self.cluster_id)
        if self.job_type in _UNSUPPORTED_TYPES:
            raise InvalidParameter(
                f"job_type {self.job_type} ({_UNSUPPORTED_TYPES[self.job_type]}) is not supported "
                "by the v1.1 API (as in MRS); submit it through POST "
                "/v2/{project_id}/clusters/{cluster_id}/job-executions."
            )
        if self.job_type not in V1_TYPES:
            raise InvalidParameter(
                f"job_type must be one of {', '.join(map(str, sorted(V1_TYPES)))}; "
                f"got {self.job_type}."
            )
        if self.hql:
            raise InvalidParameter("hql is not supported by the v1.1 API (as in MRS).")
        for name in ("is_protected", "is_public"):
            if getattr(self, name):
                raise InvalidParameter(f"{name}=true is not supported (as in MRS).")
        for name in ("jar_path", "input", "output", "job_log", "hive_script_path"):
            if len(getattr(self, name)) > _MAX_PATH:
                raise InvalidParameter(f"{name} must be at most {_MAX_PATH} characters.")
        for name in ("jar_path", "arguments", "input", "output", "job_log", "hive_script_path"):
            if _CONTROL.search(getattr(self, name)):
                raise InvalidParameter(f"{name} must not contain control characters.")
        if len(self.arguments) > _MAX_ARGUMENTS:
            raise InvalidParameter(f"arguments must be at most {_MAX_ARGUMENTS} characters.")

    def _refuse(self, *names: str) -> None:
        for name in names:
            if getattr(self, name):
                raise InvalidParameter(
                    f"{name} is not used by job_type {self.job_type}; leave it empty."
                )

    def _distcp(self, tokens: list[str]) -> list[str]:
        self._refuse("jar_path", "hive_script_path")
        if self.file_action not in _FILE_ACTIONS:
            raise InvalidParameter("file_action must be import or export for job_type 5.")
        if not self.input or not self.output:
            raise InvalidParameter("input and output are required for job_type 5 (DistCp).")
        return [*tokens, self.input, self.output]

    def _script(self) -> str:
        self._refuse("file_action")
        if self.input or self.output:
            raise InvalidParameter(
                f"input and output are not passed to job_type {self.job_type} scripts here; "
                "name the paths in the script and leave them empty."
            )
        script = self.hive_script_path or self.jar_path
        if not script:
            raise InvalidParameter(f"hive_script_path is required for job_type {self.job_type}.")
        if self.jar_path and self.hive_script_path and self.jar_path != self.hive_script_path:
            raise InvalidParameter("jar_path and hive_script_path name different scripts.")
        if not script.lower().endswith(".sql"):
            raise InvalidParameter("hive_script_path must end with .sql.")
        return script


# -- list ------------------------------------------------------------------------------------
_LIST_PARAMS = {"cluster_id", "clusterId", "page_size", "current_page", "job_name", "state", "id"}


def parse_list_query(params: Mapping[str, str]) -> tuple[str, ListQuery]:
    """(cluster id, our list query) of a ``job-exes`` query, as the SDK v1 sends it: newest
    first, ``current_page`` 1-based (0 reads as 1), ``page_size`` 1-100 (default 10)."""
    check_query(params, _LIST_PARAMS)
    given = {params.get("cluster_id") or "", params.get("clusterId") or ""} - {""}
    if len(given) != 1:
        raise InvalidParameter(
            "cluster_id is required (once) to list job executions."
            if not given
            else "cluster_id and clusterId name different clusters."
        )
    size = query_int(params, "page_size", 1, 100)
    page = query_int(params, "current_page", 0, 2**63 // 1000)
    state = params.get("state") or None
    job_state = job_result = None
    if state is not None:
        if state not in V1_STATE_FILTERS:
            raise InvalidParameter(
                f"state must be one of {', '.join(V1_STATE_FILTERS)}; got {state!r}."
            )
        job_state, job_result = V1_STATE_FILTERS[state]
    query = ListQuery(
        job_name=params.get("job_name") or None,
        job_id=params.get("id") or None,
        job_state=job_state,
        job_result=job_result,
        limit=10 if size is None else size,
        page=max(1, page or 1),
    )
    return _check_cluster_id(given.pop()), query


# -- our job -> v1 ---------------------------------------------------------------------------
def _echo(items: Sequence[str]) -> list[str]:
    """Each argument as the v2 echo (``render.java_list``) shows it, so whatever it hides in
    an argument is hidden here too."""
    return [render.java_list([item])[1:-1] for item in items]


def _data(job: Job, args: list[str], out: dict[str, str]) -> list[str]:
    """The arguments without the trailing ``input``/``output`` a v1 submit appended (its
    ``mrs.v1.data`` property names them), which go back to ``out``."""
    names = job.properties.get(DATA_PROPERTY, "").split()
    if not names or len(names) > 2 or not set(names) <= {"input", "output"}:
        return args
    if len(args) < len(names) + 1:
        return args
    out.update(zip(names, args[-len(names) :], strict=True))
    return args[: -len(names)]


def _program(job: Job) -> dict[str, str]:
    """jar_path, arguments, input, output, file_action, hive_script_path, hql of any job, read
    back from its argument list (the inverse of ``to_v2``: exact for a v1 submit, whose
    ``mrs.v1.*`` properties say what the list cannot)."""
    args = _echo(job.arguments)
    out = dict.fromkeys(
        ("jar_path", "arguments", "input", "output", "file_action", "hive_script_path", "hql"),
        "",
    )
    kind = str(job.job_type)
    if kind in ("MapReduce", "SparkSubmit", "SparkPython"):
        args = _data(job, args, out)
    if kind == "MapReduce" and args:
        out.update(jar_path=args[0], arguments=" ".join(args[1:]))
    elif kind in ("SparkSubmit", "SparkPython") and args:
        if args[0] == "--class" and len(args) >= 3:
            out.update(jar_path=args[2], arguments=" ".join([args[1], *args[3:]]))
        elif not args[0].startswith("-"):
            out.update(jar_path=args[0], arguments=" ".join(args[1:]))
        else:
            out["arguments"] = " ".join(args)
    elif kind in ("HiveScript", "SparkScript") and args:
        out.update(jar_path=args[-1], hive_script_path=args[-1], arguments=" ".join(args[:-1]))
    elif kind in ("HiveSql", "SparkSql") and args:
        out.update(hql=args[-1], arguments=" ".join(args[:-1]))
    elif kind == "DistCp" and len(args) >= 2:
        src, dst = args[-2], args[-1]
        action = job.properties.get(FILE_ACTION_PROPERTY) or (
            "export"
            if dst.startswith(_OBJECT_STORE)
            else "import"
            if src.startswith(_OBJECT_STORE)
            else ""
        )
        out.update(input=src, output=dst, file_action=action, arguments=" ".join(args[:-2]))
    else:
        out["arguments"] = " ".join(args)
    return out


def to_job_execution(job: Job, now_ms: int) -> dict[str, object]:
    """The SDK v1 ``JobExeResult`` of a job (``job-exes``): times in epoch milliseconds, null
    until known; integer codes for type and state."""
    v2 = to_mrs(job, now_ms)
    updated = max(job.submitted_ms, job.started_ms, job.finished_ms)
    elapsed = int(v2["elapsed_time"])  # type: ignore[call-overload]
    progress = float(v2["job_progress"])  # type: ignore[arg-type]
    return {
        "id": job.id,
        "create_at": job.submitted_ms,
        "update_at": updated,
        "tenant_id": job.project_id,
        "job_id": job.app_id,  # "the job id of YARN": the engine's application id
        "job_name": job.job_name,
        "start_time": job.started_ms or None,
        "end_time": job.finished_ms or None,
        "cluster_id": job.cluster_id,
        "group_id": job.id,
        **_program(job),
        "job_log": job.properties.get(JOB_LOG_PROPERTY, ""),
        "job_type": v1_type(job.job_type),
        "job_state": v1_state(job.state, job.result),
        "job_final_status": final_status(job.state, job.result),
        "create_by": job.user_name,
        "finished_step": 0,
        "job_main_id": "",
        "job_step_id": "",
        "postpone_at": job.submitted_ms,
        "step_name": "",
        "step_num": 0,
        "task_num": 0,
        "update_by": job.user_name,
        "spend_time": elapsed / 1000 if elapsed else None,
        "step_seq": 0,
        "progress": f"{progress:g}%",
    }


def to_submit_result(job: Job, now_ms: int) -> dict[str, object]:
    """What ``submit-job`` answers: the ``job_execution`` object of the MRS reference (times in
    epoch seconds there), with its fields also at the top level, where the SDK v1's
    ``CreateAndExecuteJobResponse`` reads them."""
    exe = to_job_execution(job, now_ms)
    seconds = job.submitted_ms // 1000
    record: dict[str, object] = {
        "templated": False,
        "created_at": seconds,
        "updated_at": seconds,
        "id": job.id,
        "tenant_id": job.project_id,
        "job_id": job.app_id,
        "job_name": job.job_name,
        "input_id": None,
        "output_id": None,
        "start_time": seconds,
        "end_time": None,
        "cluster_id": job.cluster_id,
        "engine_job_id": job.launcher_id or None,
        "return_code": None,
        "is_public": False,
        "is_protected": False,
        "group_id": job.id,
        **{k: exe[k] for k in ("jar_path", "input", "output", "job_log", "job_type")},
        **{k: exe[k] for k in ("file_action", "arguments", "hql", "job_state")},
        "job_final_status": exe["job_final_status"],
        "hive_script_path": exe["hive_script_path"],
        "create_by": job.user_name,
        "finished_step": 0,
        "job_main_id": "",
        "job_step_id": "",
        "postpone_at": seconds,
        "step_name": "",
        "step_num": 0,
        "task_num": 0,
        "update_by": job.user_name,
        "credentials": "",
        "user_id": job.user_name,
        "job_configs": None,
        "extra": None,
        "data_source_urls": None,
        "info": None,
    }
    return {"job_execution": record, **record}
