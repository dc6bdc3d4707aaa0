"""Apache Airflow's Huawei provider drives a real mrs-jobs server, its code unchanged.

The DAG is docs/recipes/airflow.md's, read from the page: DistCp (submit operator, then the
provider's ``MRSShowJobResultSensor``), then SparkSubmit (the operator with ``deferrable=True``,
so ``MRSCreateExecuteJobTrigger`` runs, inline with asyncio under ``dag.test()``). Airflow
2.10.5 and the provider run in their own venv (tests/support_airflow.py, installed once per
machine) from tests/support_airflow_run.py; the SDK finds the server through its region
override ``HUAWEICLOUD_SDK_REGION_MRS_LOCAL`` and the AK/SK and project id through the
connection ``AIRFLOW_CONN_HUAWEICLOUD_DEFAULT``.

What a failed job does to the tasks depends on the cluster's ``failed_job_state``: by default
(MRS's FINISHED with job_result FAILED) the provider, which reads job_state only, takes it for
success; with ``failed_job_state=FAILED`` the sensor and the trigger fail the task.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mrs_acceptance import TIMINGS, RunningServer
from support_airflow import install_airflow

from mrs_jobs.domain.clusterconfig import ClusterSettings
from mrs_jobs.engines.install import EngineInstallError

# The first test also installs Airflow on a fresh machine (about two minutes).
pytestmark = [pytest.mark.airflow, pytest.mark.spark, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "docs" / "recipes" / "airflow.md"
RUNNER = REPO / "tests" / "support_airflow_run.py"
DAG_MARKER = "# dags/mrs_jobs_pipeline.py"
REGION = "local"
RUN_TIMEOUT_S = 240

COUNT_EVENTS = """\
import sys

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("count_events").getOrCreate()
lines = spark.read.text(sys.argv[1]).count()
print("lines =", lines, flush=True)
spark.stop()
if lines == 0:
    raise SystemExit(f"no events in {sys.argv[1]}")
"""


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    try:
        return install_airflow()
    except EngineInstallError as exc:
        if exc.network and os.environ.get("CI") != "true":
            pytest.skip(f"Airflow could not be downloaded: {exc}")
        raise


def recipe_dag() -> str:
    """The DAG of docs/recipes/airflow.md, as a reader copies it."""
    blocks = re.findall(r"```python\n(.*?)```", RECIPE.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if b.startswith(DAG_MARKER)]
    assert len(found) == 1, f"{RECIPE} must hold one python block starting {DAG_MARKER!r}"
    return found[0]


@dataclasses.dataclass
class Airflow:
    """Airflow, configured as the recipe says, against one server."""

    python: Path
    home: Path
    dag_file: Path
    server: RunningServer

    def env(self, cluster_id: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MRS_JOBS_", "AIRFLOW", "HUAWEICLOUD_"))
            and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        }
        boot = self.server.boot
        connection = {
            "conn_type": "huaweicloud",
            "login": boot["ak"],
            "password": boot["sk"],
            "extra": {"region": REGION, "project_id": boot["project_id"]},
        }
        env.update(
            HOME=str(self.home),  # the SDK writes ~/.huaweicloud/application_id on import
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dag_file.parent),
            AIRFLOW_CONN_HUAWEICLOUD_DEFAULT=json.dumps(connection),
            AIRFLOW_VAR_MRS_CLUSTER_ID=cluster_id,
            MRS_POLL_SECONDS="1",
            **{f"HUAWEICLOUD_SDK_REGION_MRS_{REGION.upper()}": self.server.endpoint},
        )
        return env

    def run(self, cluster_id: str, conf: dict[str, str]) -> dict[str, Any]:
        """One DAG run under ``dag.test()``: its state and each task's state and XCom."""
        log = self.home / f"run-{len(list(self.home.glob('run-*.log')))}.log"
        started = time.monotonic()
        with open(log, "wb") as out:
            done = subprocess.run(
                [str(self.python), str(RUNNER), str(self.dag_file), json.dumps(conf)],
                env=self.env(cluster_id),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=RUN_TIMEOUT_S,
            )
        TIMINGS[f"airflow DAG run {log.stem} ({conf['source'].rsplit('/', 1)[-1]})"] = (
            time.monotonic() - started
        )
        text = log.read_text(errors="replace")
        lines = [ln for ln in text.splitlines() if ln.startswith("AIRFLOW-RESULT ")]
        assert done.returncode == 0 and lines, f"the DAG run failed:\n{text[-6000:]}"
        result: dict[str, Any] = json.loads(lines[-1].removeprefix("AIRFLOW-RESULT "))
        result["log"] = text
        return result


@pytest.fixture(scope="module")
def airflow(
    airflow_python: Path, server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Airflow]:
    home = tmp_path_factory.mktemp("airflow-home")
    dags = home / "dags"
    dags.mkdir()
    dag_file = dags / "mrs_jobs_pipeline.py"
    dag_file.write_text(recipe_dag(), encoding="utf-8")
    af = Airflow(airflow_python, home, dag_file, server)
    started = time.monotonic()
    migrated = subprocess.run(
        [str(airflow_python), "-m", "airflow", "db", "migrate"],
        env=af.env(server.cluster_id),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    TIMINGS["airflow db migrate"] = time.monotonic() - started
    yield af


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inputs under the tests' temp root (every cluster here has it as its output root)."""
    base = tmp_path_factory.mktemp("airflow-files")
    (base / "events.csv").write_text("a\nb\nc\n")
    (base / "empty.csv").write_text("")
    (base / "count_events.py").write_text(COUNT_EVENTS)
    (base / "staged").mkdir()
    return base


def conf(files: Path, source: str, staged: str) -> dict[str, str]:
    return {
        "source": str(files / source),
        "staged": str(files / "staged" / staged),
        "app": str(files / "count_events.py"),
    }


def job_of(server: RunningServer, run: dict[str, Any], task: str, cluster_id: str) -> Any:
    """The job a submit task started, as the server shows it (job_state, job_result)."""
    job_id = run["tasks"][task]["xcom"]["job_id"]
    server.submitted.add(job_id)
    return server.show(job_id, cluster_id)


def states(run: dict[str, Any]) -> dict[str, str | None]:
    return {task: info["state"] for task, info in run["tasks"].items()}


def test_a_pipeline_that_succeeds_succeeds_every_task(airflow, server, files) -> None:
    run = airflow.run(server.cluster_id, conf(files, "events.csv", "ok.csv"))
    assert states(run) == {"stage": "success", "staged": "success", "count": "success"}, run["log"]
    assert run["state"] == "success"
    assert (files / "staged" / "ok.csv").read_text() == "a\nb\nc\n"
    for task in ("stage", "count"):
        assert run["tasks"][task]["xcom"]["state"] == "COMPLETE"
        detail = job_of(server, run, task, server.cluster_id)
        assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED")
    count_id = run["tasks"]["count"]["xcom"]["job_id"]
    assert "lines = 3" in (server.job_dir(count_id) / "stdout.log").read_text()
    # The sensor asked until FINISHED; the trigger logged each answer it got.
    assert "Now job status: FINISHED" in run["log"]
    assert "The current job status is FINISHED" in run["log"]


def test_by_default_a_failed_job_ends_finished_and_the_provider_takes_it_for_success(
    airflow, server, files
) -> None:
    """MRS's own behaviour, shown as it is: job_state FINISHED, job_result FAILED, and the
    provider (which reads job_state only) lets the DAG go on as if nothing failed."""
    run = airflow.run(server.cluster_id, conf(files, "missing.csv", "never.csv"))
    stage = job_of(server, run, "stage", server.cluster_id)
    count = job_of(server, run, "count", server.cluster_id)
    assert (stage.job_state, stage.job_result) == ("FINISHED", "FAILED")
    assert (count.job_state, count.job_result) == ("FINISHED", "FAILED")
    assert states(run) == {"stage": "success", "staged": "success", "count": "success"}, run["log"]
    assert run["state"] == "success"
    assert not (files / "staged" / "never.csv").exists()


@pytest.fixture(scope="module")
def failing_cluster(server: RunningServer, files: Path) -> str:
    """A second cluster of the server with ``failed_job_state=FAILED`` and the same roots."""
    if "failed_job_state" not in {f.name for f in dataclasses.fields(ClusterSettings)}:
        pytest.skip("the cluster setting failed_job_state does not exist yet")
    root = str(files.parent)  # the tests' temp root, as the first cluster's output root
    out = server.admin(
        "create-cluster",
        server.project_id,
        "--name",
        "airflow-failed",
        "--components",
        "Spark,Hadoop",
        "--output-root",
        root,
        "--set",
        "failed_job_state=FAILED",
    )
    return out.split()[-1]


def test_with_failed_job_state_failed_the_sensor_fails_the_task(
    airflow, server, files, failing_cluster
) -> None:
    run = airflow.run(failing_cluster, conf(files, "missing.csv", "never2.csv"))
    stage = job_of(server, run, "stage", failing_cluster)
    assert (stage.job_state, stage.job_result) == ("FAILED", "FAILED")
    assert states(run) == {"stage": "success", "staged": "failed", "count": "upstream_failed"}
    assert run["state"] == "failed"
    assert "MRS sensor failed, state: FAILED" in run["log"]


def test_with_failed_job_state_failed_the_trigger_fails_the_deferred_task(
    airflow, server, files, failing_cluster
) -> None:
    run = airflow.run(failing_cluster, conf(files, "empty.csv", "empty.csv"))
    count = job_of(server, run, "count", failing_cluster)
    assert (count.job_state, count.job_result) == ("FAILED", "FAILED")
    # It ran and then failed (the setting's case), not refused before it ran.
    logs = [server.job_dir(count.job_id) / name for name in ("stdout.log", "stderr.log")]
    assert any("no events in" in log.read_text(errors="replace") for log in logs)
    assert states(run) == {"stage": "success", "staged": "success", "count": "failed"}
    assert run["state"] == "failed"
    assert f"Job {count.job_id} failed" in run["log"]


HOOK_CALLS = """\
import json, sys
from airflow.providers.huawei.cloud.hooks.mrs import MRSHook
from airflow.providers.huawei.cloud.sensors.mrs import MRSShowClusterStateSensor

cluster_id, app = sys.argv[1], sys.argv[2]
sensor = MRSShowClusterStateSensor(task_id="cluster", cluster_id=cluster_id)
hook = MRSHook()
job = hook.create_execute_job("SparkSubmit", "to_kill", cluster_id, [app, "/none"])
job_id = job.job_submit_result.job_id
hook.stop_job(cluster_id, job_id)  # what MRSCreateExecuteJobOperator.on_kill calls
print("HOOK-RESULT " + json.dumps({"cluster_running": sensor.poke({}), "job_id": job_id}))
"""


def test_the_cluster_sensor_and_the_kill_the_operator_uses_on_kill(airflow, server, files) -> None:
    """``MRSShowClusterStateSensor`` (v1.1 show_cluster_details through the same region
    override) sees the cluster running; ``MRSHook.stop_job``, which the operator's ``on_kill``
    calls for the job it submitted, kills the job."""
    done = subprocess.run(
        [str(airflow.python), "-c", HOOK_CALLS, server.cluster_id, str(files / "count_events.py")],
        env=airflow.env(server.cluster_id),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("HOOK-RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("HOOK-RESULT "))
    assert result["cluster_running"] is True
    server.submitted.add(result["job_id"])
    detail = server.wait_state(result["job_id"], {"KILLED"}, 60)
    assert detail.job_result == "KILLED"


def test_airflow_never_enters_the_project_venv(airflow_python: Path) -> None:
    """Its pins (SQLAlchemy 1.4, Flask 2.2) would clash with the service's."""
    assert Path(sys.prefix).resolve() not in airflow_python.resolve().parents
    with pytest.raises(ImportError):
        __import__("airflow")
