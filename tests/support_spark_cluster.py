"""A real Spark standalone cluster for tests: one master (REST server on) and two workers.

All three JVMs come from the pyspark package (``bin/spark-class``), listen on loopback on free
ports, and are stopped by pid (their own process groups) when the cluster is stopped; nothing
else on the machine is touched. Each worker offers 1 core and 1 GB.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from mrs_jobs.engines.java import find_java_home, find_spark_home

__all__ = [
    "PROBE_APP",
    "SparkCluster",
    "build_probe_jar",
    "free_port",
    "start_cluster",
    "stop_cluster",
]

START_TIMEOUT_S = 60.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# A Spark application in Java for cluster deploy mode (Spark runs no Python app there).
# Arguments: mode ("sum" | "sleep" | "fail") and a task count; "sleep" tasks take 1 s each,
# one after the other on a 1-core executor, so progress rises step by step.
PROBE_APP = """\
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;

public class ProbeApp {
    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "sum";
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        SparkSession spark = SparkSession.builder().appName("probe-" + mode).getOrCreate();
        JavaSparkContext sc = new JavaSparkContext(spark.sparkContext());
        List<Integer> xs = new ArrayList<>();
        for (int i = 1; i <= n; i++) xs.add(i);
        final long sleepMs = mode.equals("sum") ? 0 : 1000;
        long sum = sc.parallelize(xs, n)
            .map(x -> { Thread.sleep(sleepMs); return (long) x; })
            .reduce(Long::sum);
        System.out.println("PROBE-RESULT " + sum);
        if (mode.equals("fail")) throw new IllegalStateException("probe: deliberate failure");
        spark.stop();
    }
}
"""


def build_probe_jar(base: Path) -> Path:
    """probe.jar (class ProbeApp) compiled now with javac against pyspark's Spark jars."""
    spark_home, java_home = find_spark_home(), find_java_home()
    if spark_home is None or java_home is None:
        raise RuntimeError("Spark or Java not found")
    javac = Path(java_home) / "bin" / "javac"
    src, classes = base / "src", base / "classes"
    src.mkdir(parents=True, exist_ok=True)
    (src / "ProbeApp.java").write_text(PROBE_APP)
    subprocess.run(
        [
            str(javac) if javac.is_file() else "javac",
            "-nowarn",
            "-cp",
            f"{spark_home}/jars/*",
            "-d",
            str(classes),
            str(src / "ProbeApp.java"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    jar = base / "probe.jar"
    with zipfile.ZipFile(jar, "w") as zf:
        for f in classes.rglob("*.class"):
            zf.write(f, f.relative_to(classes).as_posix())
    return jar


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SparkCluster:
    """Where the test cluster listens and the processes to stop."""

    base: Path
    master_port: int
    rest_port: int
    ui_port: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    startup_s: float = 0.0

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def config(self, **more: str) -> dict[str, str]:
        """The cluster config of a ``spark-standalone`` cluster row pointing here."""
        return {
            "spark_master": self.master_url,
            "spark_rest_url": self.rest_url,
            "spark_ui_url": self.ui_url,
            **more,
        }

    def state(self) -> dict:
        """The master's ``/json/`` document."""
        with _NO_PROXY.open(f"{self.ui_url}/json/", timeout=5) as resp:
            return json.loads(resp.read())

    def active_app_ids(self) -> list[str]:
        return [a["id"] for a in self.state().get("activeapps", [])]

    def completed_apps(self) -> dict[str, dict]:
        return {a["id"]: a for a in self.state().get("completedapps", [])}

    def log_tail(self, chars: int = 4000) -> str:
        out = []
        for p in sorted(self.base.glob("*.log")):
            out.append(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)


def _env(spark_home: str, java_home: str, base: Path) -> dict[str, str]:
    conf = base / "conf"
    conf.mkdir(exist_ok=True)
    return {
        "PATH": f"{java_home}/bin:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(base),
        "JAVA_HOME": java_home,
        "SPARK_HOME": spark_home,
        "SPARK_CONF_DIR": str(conf),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(base),
        "SPARK_WORKER_DIR": str(base / "work"),
        "SPARK_LOCAL_DIRS": str(base / "local"),
        "TMPDIR": str(base),
    }


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait(what: str, probe, cluster: SparkCluster, deadline: float) -> None:  # type: ignore[no-untyped-def]
    while time.monotonic() < deadline:
        for p in cluster.procs:
            if p.poll() is not None:
                raise RuntimeError(f"a Spark daemon exited early:\n{cluster.log_tail()}")
        try:
            if probe():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}:\n{cluster.log_tail()}")


def start_cluster(base: Path, workers: int = 2) -> SparkCluster:
    """Start a master with its REST submission server and ``workers`` 1-core workers."""
    spark_home, java_home = find_spark_home(), find_java_home()
    if spark_home is None or java_home is None:
        raise RuntimeError("Spark or Java not found")
    base.mkdir(parents=True, exist_ok=True)
    cluster = SparkCluster(base, free_port(), free_port(), free_port())
    spark_class = str(Path(spark_home) / "bin" / "spark-class")
    env = _env(spark_home, java_home, base)
    started = time.monotonic()
    deadline = started + START_TIMEOUT_S
    try:
        master_env = {
            **env,
            "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=true "
            f"-Dspark.master.rest.port={cluster.rest_port} -Dspark.master.rest.host=127.0.0.1",
            "SPARK_DAEMON_MEMORY": "512m",
        }
        cluster.procs.append(
            _spawn(
                [
                    spark_class,
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(cluster.master_port),
                    "--webui-port",
                    str(cluster.ui_port),
                ],
                master_env,
                base / "master.log",
            )
        )
        _wait("the master", lambda: cluster.state().get("status") == "ALIVE", cluster, deadline)
        worker_env = {**env, "SPARK_DAEMON_MEMORY": "256m"}
        for i in range(workers):
            cluster.procs.append(
                _spawn(
                    [
                        spark_class,
                        "org.apache.spark.deploy.worker.Worker",
                        cluster.master_url,
                        "--host",
                        "127.0.0.1",
                        "--cores",
                        "1",
                        "--memory",
                        "1g",
                        "--webui-port",
                        str(free_port()),
                        "--work-dir",
                        str(base / f"work-{i}"),
                    ],
                    worker_env,
                    base / f"worker-{i}.log",
                )
            )
        _wait(
            f"{workers} workers",
            lambda: len([w for w in cluster.state().get("workers", []) if w["state"] == "ALIVE"])
            == workers,
            cluster,
            deadline,
        )
    except BaseException:
        stop_cluster(cluster)
        raise
    cluster.startup_s = time.monotonic() - started
    return cluster


def stop_cluster(cluster: SparkCluster) -> None:
    """SIGTERM each daemon's group (workers first), SIGKILL what remains after 10 s."""
    procs = list(reversed(cluster.procs))
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
    deadline = time.monotonic() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait(5)
