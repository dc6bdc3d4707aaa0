"""MRS rendering: Java-style strings, the secret rule, integer times, elapsed time."""

from __future__ import annotations

import pytest

from mrs_jobs.domain.job import Job, to_mrs
from mrs_jobs.domain.render import MASK, is_secret_key, java_list, java_map, mask_properties
from mrs_jobs.domain.states import JobState


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("db.PASSWORD", True),
        ("my_secret", True),
        ("SecretName", True),
        ("auth.token", True),
        ("tokenizer", True),
        ("fs.obs.access.key", True),
        ("fs.obs.secret.key", True),
        ("FS.S3A.ACCESS.KEY", True),
        ("spark.hadoop.fs.s3a.access.key", True),
        ("access.key", False),  # must *end in* ".access.key"
        ("fs.obs.access.key.path", False),
        ("fs.obs.endpoint", False),
        ("spark.executor.memory", False),
        ("keytab", False),
        ("passwd", False),
    ],
)
def test_secret_rule(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret
    assert (mask_properties({key: "v"})[key] == MASK) is secret


def test_java_style_strings() -> None:
    assert MASK == "******"
    assert java_list([]) == "[]"
    assert java_list(["a"]) == "[a]"
    assert java_list(["a", "b c", "", "[x]"]) == "[a, b c, , [x]]"
    assert java_map({}) == "{}"
    assert java_map({"k1": "v1", "k2": "v2"}) == "{k1=v1, k2=v2}"
    assert java_map({"a.password": "p", "b": "2"}) == "{a.password=******, b=2}"


def _job(**kw: object) -> Job:
    base: dict[str, object] = dict(
        id="j",
        project_id="p",
        cluster_id="c",
        job_name="n",
        job_type="SparkSubmit",
        user_name="u",
        queue="default",
        state="SUBMITTED",
        result="UNDEFINED",
        progress=0.0,
        submitted_ms=1000,
        started_ms=0,
        finished_ms=0,
        arguments=["a", "b"],
        properties={"x.secret.key": "S", "k": "v"},
    )
    base.update(kw)
    return Job(**base)  # type: ignore[arg-type]


def test_to_mrs_shape_and_types() -> None:
    d = to_mrs(_job(), now_ms=5000)
    assert d == {
        "job_id": "j",
        "user": "u",
        "job_name": "n",
        "job_result": "UNDEFINED",
        "job_state": "SUBMITTED",
        "job_progress": 0.0,
        "job_type": "SparkSubmit",
        "started_time": 0,
        "submitted_time": 1000,
        "finished_time": 0,
        "elapsed_time": 0,
        "queue": "default",
        "arguments": "[a, b]",
        "launcher_id": "",
        "properties": "{x.secret.key=******, k=v}",
        "app_id": "",
        "tracking_url": "",
        "attempt": 1,  # ours
        "diagnostics": "",
        "cpu_seconds": None,  # ours: null until known
        "peak_memory_mb": None,
    }
    for f in ("started_time", "submitted_time", "finished_time", "elapsed_time"):
        assert type(d[f]) is int


def test_elapsed_time() -> None:
    assert to_mrs(_job(state="RUNNING", started_ms=2000), 5000)["elapsed_time"] == 3000
    # A clock step backwards never gives a negative duration.
    assert to_mrs(_job(state="RUNNING", started_ms=6000), 5000)["elapsed_time"] == 0
    # ACCEPTED: the application is not running yet.
    assert to_mrs(_job(state="ACCEPTED", started_ms=2000), 5000)["elapsed_time"] == 0
    ended = _job(state=JobState.FINISHED.value, started_ms=2000, finished_ms=4500)
    assert to_mrs(ended, 99_999)["elapsed_time"] == 2500
    killed_queued = _job(state="KILLED", started_ms=0, finished_ms=4500)
    assert to_mrs(killed_queued, 99_999)["elapsed_time"] == 0


def test_progress_is_a_rounded_number() -> None:
    assert to_mrs(_job(progress=33.33333), 0)["job_progress"] == 33.33
    assert to_mrs(_job(progress=100), 0)["job_progress"] == 100.0
