"""The pure v1.1 job mapping (domain/v1jobs.py): every state and type has its v1 code, the
state filter agrees with the codes shown, and v1.1 job paths name the project and job in logs."""

from __future__ import annotations

import pytest

from mrs_jobs.api.instrument import path_context
from mrs_jobs.domain.jobtypes import JobType
from mrs_jobs.domain.states import JobResult, JobState
from mrs_jobs.domain.v1jobs import (
    V1_STATE_FILTERS,
    V1_TYPES,
    V1Submission,
    final_status,
    v1_state,
    v1_type,
)
from mrs_jobs.errors import InvalidParameter

_RESULT = {"FINISHED": "SUCCEEDED", "FAILED": "FAILED", "KILLED": "KILLED"}


@pytest.mark.parametrize("state", list(JobState))
def test_every_state_has_a_v1_code(state: JobState) -> None:
    result = _RESULT.get(state.value, JobResult.UNDEFINED.value)
    code, final = v1_state(state, result), final_status(state, result)
    assert code in (-1, 1, 2, 3, 4, 5)
    assert (final == 0) == (state not in ("FINISHED", "FAILED", "KILLED"))


def test_the_state_filter_lists_what_shows_that_code() -> None:
    for code, (state, result) in V1_STATE_FILTERS.items():
        shown = v1_state(state, result or _RESULT.get(state, "UNDEFINED"))
        assert shown == int(code), code
    assert v1_state("FINISHED", "FAILED") == 4 and final_status("FINISHED", "FAILED") == 1


def test_type_codes_round_trip() -> None:
    for code, name in V1_TYPES.items():
        assert v1_type(name) == code
    assert {v1_type(t) for t in JobType} <= {0, *range(1, 8)}
    assert v1_type(JobType.FLINK) == 0 and v1_type(JobType.HIVE_SQL) == 4


def test_a_submission_names_what_it_refuses() -> None:
    sub = V1Submission(job_type=1, job_name="n", cluster_id="c", jar_path="/x.jar", hql="q")
    with pytest.raises(InvalidParameter, match="hql"):
        sub.to_v2()
    ok = V1Submission(job_type=2, job_name="n", cluster_id="c", jar_path="/x.JAR", arguments="a.B")
    assert ok.to_v2() == ("SparkSubmit", ["--class", "a.B", "/x.JAR"], {})


def test_v11_job_paths_bind_the_log_context() -> None:
    assert path_context("/v1.1/p1/job-exes/0b5e-1") == {"project_id": "p1", "job_id": "0b5e-1"}
    assert path_context("/v1.1/p1/job-executions/j-2")["job_id"] == "j-2"
    assert path_context("/v1.1/p1/jobs/submit-job") == {"project_id": "p1", "job_id": None}
