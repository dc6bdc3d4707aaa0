"""SparkSubmitEngine on a local master: real spark-submit runs (PySpark with progress, a
failing script, a Java jar), observed as the supervisor observes them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mrs_jobs.engines.base import ClusterSpec, JobSpec, LaunchSpec, Observation
from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.spark import SparkSubmitEngine, find_event_log_app

CLUSTER = ClusterSpec(cluster_id="c1")


def job(arguments: list[str]) -> JobSpec:
    return JobSpec(
        job_id="j1", job_type="SparkSubmit", job_name="t", arguments=arguments, properties={}
    )


@pytest.fixture
def engine() -> SparkSubmitEngine:
    return SparkSubmitEngine()


APP_ID_RE = re.compile(r"local-\d+")
needs_spark = pytest.mark.skipif(
    find_java_home() is None or find_spark_home() is None, reason="Java or Spark not found"
)


def _run(
    engine: SparkSubmitEngine, spec: JobSpec, wd: Path, *, poll: bool = False
) -> tuple[int, str, str, list[Observation], LaunchSpec]:
    launch = engine.build(spec, CLUSTER, wd)
    out_path, err_path = wd / "stdout.txt", wd / "stderr.txt"
    seen: list[Observation] = []
    t0 = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            launch.argv,
            env=launch.env,
            cwd=launch.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            deadline = t0 + 120
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    os.killpg(proc.pid, 9)
                    proc.wait()
                    pytest.fail(f"spark-submit did not finish in 120 s: {err_path.read_text()}")
                if poll:
                    seen.append(engine.observe(spec, wd, launch))
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
    elapsed = time.monotonic() - t0
    print(f"spark-submit run took {elapsed:.1f} s")
    return proc.returncode, out_path.read_text(), err_path.read_text(), seen, launch


SUM_APP = """
import sys, time
from pyspark import SparkContext

sc = SparkContext()
def slow(x):
    time.sleep(0.5)
    return x
total = sc.parallelize(range(8), 8).map(slow).sum()
print(f"SUM={total} ARGS={sys.argv[1:]}")
sc.stop()
"""

FAIL_APP = """
from pyspark import SparkContext
sc = SparkContext()
sc.parallelize(range(2), 1).count()
raise RuntimeError("boom from the job")
"""

JAVA_MAIN = """
public class Hello {
    public static void main(String[] args) {
        System.out.println("HELLO-FROM-JAVA " + String.join(",", args));
    }
}
"""


@pytest.mark.spark
@needs_spark
def test_real_pyspark_sum_with_progress(engine, tmp_path):
    app = tmp_path / "sum_app.py"
    app.write_text(SUM_APP)
    wd = tmp_path / "wd"
    spec = job([str(app), "a b", "--flag"])
    rc, out, err, seen, launch = _run(engine, spec, wd, poll=True)
    assert rc == 0, err
    assert "SUM=28 ARGS=['a b', '--flag']" in out
    running_ids = {o.app_id for o in seen if o.app_id}
    progress = [o.progress for o in seen if o.progress is not None]
    assert running_ids or progress, "observe() saw nothing while the job ran"
    assert all(0 <= p <= 99 for p in progress)
    final = engine.observe(spec, wd, launch)
    assert final.app_id is not None and APP_ID_RE.fullmatch(final.app_id)
    assert final.running
    assert running_ids <= {final.app_id}
    print(
        f"observations: {len(seen)}, with app id: {len([o for o in seen if o.app_id])}, "
        f"progress values: {sorted(set(progress))}"
    )
    # nothing written outside the workdir's own subdirectories
    assert (wd / "tmp").is_dir() and not (tmp_path / "metastore_db").exists()


@pytest.mark.spark
@needs_spark
def test_real_pyspark_failure(engine, tmp_path):
    app = tmp_path / "fail_app.py"
    app.write_text(FAIL_APP)
    wd = tmp_path / "wd"
    rc, out, err, _, _ = _run(engine, job([str(app)]), wd)
    assert rc != 0
    # spark-submit's PythonRunner merges the Python driver's stderr into its stdout
    assert "RuntimeError: boom from the job" in out + err
    found = find_event_log_app(wd / "events")
    assert found is not None and APP_ID_RE.fullmatch(found[0])


@pytest.mark.spark
@needs_spark
def test_real_java_jar(engine, tmp_path):
    java_home = find_java_home()
    assert java_home is not None
    javac = Path(java_home) / "bin" / "javac"
    jar_tool = Path(java_home) / "bin" / "jar"
    if not javac.is_file() or not jar_tool.is_file():
        javac_w, jar_w = shutil.which("javac"), shutil.which("jar")
        if not javac_w or not jar_w:
            pytest.skip("no JDK (javac/jar) available")
        javac, jar_tool = Path(javac_w), Path(jar_w)
    src = tmp_path / "src"
    src.mkdir()
    (src / "Hello.java").write_text(JAVA_MAIN)
    classes = tmp_path / "classes"
    subprocess.run(
        [str(javac), "-d", str(classes), str(src / "Hello.java")], check=True, timeout=60
    )
    jar = tmp_path / "hello.jar"
    subprocess.run([str(jar_tool), "cf", str(jar), "-C", str(classes), "."], check=True, timeout=60)
    wd = tmp_path / "wd"
    rc, out, err, _, _ = _run(engine, job(["--class", "Hello", str(jar), "x", "y z"]), wd)
    assert rc == 0, err
    assert "HELLO-FROM-JAVA x,y z" in out
