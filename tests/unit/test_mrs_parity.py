"""MRS parity in the domain and the Spark engine: SparkPython jobs, the queue a job runs in,
sensitive (``@``) arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrs_jobs.domain.jobtypes import JobType, component_of
from mrs_jobs.domain.validation import validate_submission
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec
from mrs_jobs.engines.spark import SparkSubmitEngine

CLUSTER = ClusterSpec(cluster_id="c1")


def _spec(job_type: str, arguments: list[str]) -> JobSpec:
    return JobSpec(job_id="j1", job_type=job_type, job_name="t", arguments=arguments, properties={})


@pytest.fixture
def app(tmp_path: Path) -> Path:
    p = tmp_path / "in" / "app.py"
    p.parent.mkdir()
    p.write_text("print('hi')\n")
    return p


# ---------------------------------------------------------------------------- SparkPython


def test_spark_python_is_a_spark_job_type() -> None:
    assert validate_submission("SparkPython", "n", ["/opt/a.py"], {}) is JobType.SPARK_PYTHON
    assert component_of(JobType.SPARK_PYTHON) == "Spark"
    # Its arguments are paths like SparkSubmit's: the same checks at submit.
    with pytest.raises(Exception, match="path component"):
        validate_submission("SparkPython", "n", ["/" + "a" * 300 + ".py"], {})


def test_spark_python_runs_like_spark_submit_of_a_py_app(app: Path, tmp_path: Path) -> None:
    engine = SparkSubmitEngine()
    assert "SparkPython" in engine.job_types
    args = ["--conf", "spark.x=1", str(app), "10"]
    as_python = engine.build(_spec("SparkPython", args), CLUSTER, tmp_path / "w1").argv
    as_submit = engine.build(_spec("SparkSubmit", args), CLUSTER, tmp_path / "w2").argv

    def same(argv: list[str]) -> list[str]:  # the job directory and UI port differ per build
        return [a for a in argv if "/w1" not in a and "/w2" not in a and "ui.port" not in a]

    assert same(as_python) == same(as_submit)
    assert as_python[-2:] == [str(app.resolve()), "10"]


def test_spark_python_needs_a_python_application(tmp_path: Path) -> None:
    jar = tmp_path / "a.jar"
    jar.write_bytes(b"PK")
    with pytest.raises(EngineRefused, match=r"SparkPython needs a Python application"):
        SparkSubmitEngine().build(
            _spec("SparkPython", ["--class", "x.Main", str(jar)]), CLUSTER, tmp_path / "w"
        )


# ---------------------------------------------------------------------- failed_job_state


def test_failed_job_state_setting() -> None:
    from mrs_jobs.domain.clusterconfig import settings_of, validate_cluster_config
    from mrs_jobs.errors import InvalidParameter

    assert settings_of("local", {}).failed_job_state == "FINISHED"  # MRS's behaviour
    for kind in ("local", "yarn"):
        config = {"failed_job_state": "FAILED"}
        if kind == "yarn":
            config["hadoop_conf_dir"] = "/etc/hadoop/conf"
        assert validate_cluster_config(kind, config)["failed_job_state"] == "FAILED"
        assert settings_of(kind, config).failed_job_state == "FAILED"
    for bad in ("KILLED", "RUNNING", "yes"):
        with pytest.raises(InvalidParameter, match="failed_job_state"):
            validate_cluster_config("local", {"failed_job_state": bad})


def test_decide_with_failed_job_state() -> None:
    from mrs_jobs.domain.outcome import Outcome, decide
    from mrs_jobs.domain.states import TRANSITIONS, JobResult, JobState

    failing = Outcome(returncode=3)
    assert decide(JobState.RUNNING, failing).state is JobState.FINISHED  # MRS's default
    ending = decide(JobState.RUNNING, failing, failed_job_state=JobState.FAILED)
    assert (ending.state, ending.result) == (JobState.FAILED, JobResult.FAILED)
    assert JobState.RUNNING in TRANSITIONS[JobState.FAILED]  # the table allows that edge
    # Nothing else changes: success, kills and never-ran endings are the same.
    for state in (JobState.ACCEPTED, JobState.RUNNING):
        for outcome in (Outcome(returncode=0), Outcome(kill_asked=True), Outcome.lost()):
            assert decide(state, outcome, failed_job_state=JobState.FAILED) == decide(
                state, outcome
            )


# --------------------------------------------------------------------------------- queue

YQ = "spark.yarn.queue"


@pytest.mark.parametrize(
    ("job_type", "arguments", "properties", "cluster_queue", "queue"),
    [
        ("SparkSubmit", ["/a.py", "1"], {}, "", "default"),
        ("SparkSubmit", ["--queue", "etl", "/a.py"], {}, "", "etl"),
        ("SparkSubmit", ["--queue=etl", "/a.py"], {}, "", "etl"),
        ("SparkPython", ["--conf", "spark.yarn.queue=q1", "/a.py"], {}, "", "q1"),
        ("SparkSubmit", ["--conf=spark.yarn.queue=q1", "/a.py"], {}, "", "q1"),
        ("SparkSubmit", ["-c", "spark.yarn.queue=q1", "/a.py"], {}, "", "q1"),
        # spark-submit's --queue wins over a --conf, wherever it stands
        ("SparkSubmit", ["--queue", "q2", "--conf", "spark.yarn.queue=q1", "/a.py"], {}, "", "q2"),
        # the last --conf of a key wins; a job property comes before the arguments' confs
        ("SparkSubmit", ["-c", f"{YQ}=a", "-c", f"{YQ}=b", "/a.py"], {}, "", "b"),
        ("SparkSubmit", ["/a.py"], {"spark.yarn.queue": "p"}, "", "p"),
        ("SparkSubmit", ["-c", "spark.yarn.queue=a", "/a.py"], {"spark.yarn.queue": "p"}, "", "a"),
        # the cluster's yarn_queue when the job names none; the job's own choice wins
        ("SparkSubmit", ["/a.py"], {}, "yq", "yq"),
        ("SparkSubmit", ["--queue", "etl", "/a.py"], {}, "yq", "etl"),
        # after the application, arguments are the application's own
        ("SparkSubmit", ["/a.py", "--queue", "nope"], {}, "", "default"),
        ("SparkSubmit", ["-v", "--class", "a.B", "/a.jar", "--queue", "x"], {}, "", "default"),
        ("MapReduce", ["/a.jar", "wordcount", "-Dmapreduce.job.queuename=mq", "/in"], {}, "", "mq"),
        ("MapReduce", ["/a.jar", "wc", "-D", "mapreduce.job.queuename=mq", "/in"], {}, "", "mq"),
        ("MapReduce", ["/a.jar", "x"], {"mapreduce.job.queuename": "pq"}, "", "pq"),
        ("MapReduce", ["/a.jar", "x"], {"mapreduce.job.queuename": "pq"}, "yq", "yq"),
        ("MapReduce", ["/a.jar", "x", "-Dmapreduce.job.queuename=mq"], {}, "yq", "mq"),
        # SQL jobs run on the cluster's SQL server: its queue, not one a statement names
        ("SparkSql", ["--conf", "spark.yarn.queue=q", "select 1"], {}, "", "default"),
        ("SparkSubmit", ["--queue", "", "/a.py"], {}, "", "default"),
    ],
)
def test_queue_the_job_runs_in(job_type, arguments, properties, cluster_queue, queue) -> None:
    from mrs_jobs.domain.queues import queue_of

    assert queue_of(JobType(job_type), arguments, properties, cluster_queue) == queue


# ------------------------------------------------------------------ sensitive arguments


def test_sensitive_argument_rule() -> None:
    from mrs_jobs.domain.render import (
        ARGUMENT_MASK,
        engine_arguments,
        is_sensitive_argument,
        java_list,
        mask_arguments,
        mask_text,
    )

    assert ARGUMENT_MASK == "@******"
    args = ["a", "@pw=abc123", "@", "b@c", "@@x"]
    assert [is_sensitive_argument(a) for a in args] == [False, True, True, False, True]
    assert mask_arguments(args) == ["a", ARGUMENT_MASK, ARGUMENT_MASK, "b@c", ARGUMENT_MASK]
    assert java_list(args) == f"[a, {ARGUMENT_MASK}, {ARGUMENT_MASK}, b@c, {ARGUMENT_MASK}]"
    assert engine_arguments(args) == ["a", "pw=abc123", "", "b@c", "@x"]
    # Free text (a reason, a note) is masked where it quotes a sensitive value, with or
    # without its @; values under 4 characters are not searched for (they would mangle text).
    text = "bad value pw=abc123 in @pw=abc123; see b@c and x"
    assert mask_text(text, args) == "bad value ****** in @******; see b@c and x"
    assert mask_text("x y", ["@x"]) == "x y"
