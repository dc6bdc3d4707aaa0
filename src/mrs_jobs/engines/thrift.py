"""One Spark Thrift Server per cluster: the owner of that cluster's Hive metastore.

An embedded Derby metastore admits one JVM at a time, so SQL jobs are small clients of one
long-lived ``HiveThriftServer2`` per cluster (or of ``sql_thrift_endpoint``, one shared by
several instances). It runs under the shim with ``MRS_JOBS_SERVICE`` (the orphan sweep leaves
it alone) and is found again after a restart through ``state.json``.

Its loopback port is reachable by any local process, so it authenticates (Hive ``CUSTOM`` with
``java_auth``): one user whose password is the cluster's 0600 ``auth.secret``. The JVM gets the
file's path, never the secret; a server found running without it is restarted. Its UI has no
kill links, and with a local master its RPC ports authenticate too (``spark.authenticate``).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mrs_jobs.engines.base import ClusterSpec, EngineRefused, LaunchSpec
from mrs_jobs.engines.java import find_java_home, find_spark_home, spark_submit_path
from mrs_jobs.engines.java_auth import AUTH_CLASS, AUTH_JAR, FILE_PROPERTY, USER_PROPERTY
from mrs_jobs.engines.kit import conf_args, free_port
from mrs_jobs.engines.spark import spark_env
from mrs_jobs.engines.spark_args import is_local_master, java_opt_path
from mrs_jobs.engines.spark_progress import EVENTS_DIR, find_event_log_app
from mrs_jobs.fsutil import read_capped
from mrs_jobs.runtime import jobdir
from mrs_jobs.runtime.box import BoxPolicy
from mrs_jobs.runtime.process import ProcessHandle, ProcessTable, read_start_ticks

__all__ = ["SECRET_FILE", "SERVICE_VARIABLE", "SQL_USER", "ThriftEndpoint", "ThriftServers"]

log = logging.getLogger(__name__)

SERVICE_VARIABLE = "MRS_JOBS_SERVICE"
_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
SECRET_FILE = "auth.secret"
SQL_USER = "mrs"  # the one user the server accepts
_AUTH = "custom"  # state.json's mark of a server that authenticates
_STATE_FILE = "state.json"  # the server's pid, start time and ports (in the cluster's directory)


@dataclass(frozen=True)
class ThriftEndpoint:
    host: str
    port: int
    ui_port: int | None = None
    directory: Path | None = None  # None for an external server
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # None: no authentication

    @property
    def tracking_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}" if self.ui_port else ""

    def app_id(self) -> str | None:
        if self.directory is None:
            return None
        found = find_event_log_app(self.directory / EVENTS_DIR)
        return found[0] if found else None


class ThriftServers:
    def __init__(
        self,
        base_dir: Path,
        marker: str,
        *,
        java_home: str | None = None,
        spark_home: str | None = None,
        pyspark_python: str | None = None,
        driver_memory: str = "1g",
        box: BoxPolicy | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.box = box  # the server's box: its cluster's directory and roots, nothing else
        self.marker = marker
        self.java_home = java_home
        self.spark_home = spark_home
        self.pyspark_python = pyspark_python
        self.driver_memory = driver_memory
        self.table = ProcessTable()
        self._last_busy: dict[str, float] = {}

    def directory(self, cluster_id: str) -> Path:
        return self.base_dir / cluster_id / "sql"

    def lock_directory(self, cluster_id: str) -> Path:
        """Where the cluster's SQL jobs take turns writing a table (one file per table)."""
        path = self.base_dir / cluster_id / "sql-locks"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def ensure(self, cluster: ClusterSpec) -> ThriftEndpoint:
        """The cluster's server, started if it is not running (it may still be starting)."""
        external = cluster.settings.sql_thrift_endpoint
        if external:
            host, _, port = str(external).rpartition(":")
            return ThriftEndpoint(host or "127.0.0.1", int(port))
        directory = self.directory(cluster.cluster_id)
        running = self.running(cluster.cluster_id)
        if running is not None:
            return running
        if self._live_state(cluster.cluster_id) is not None:
            # Started before servers authenticated: anyone on this host could use it.
            fields = {"cluster_id": cluster.cluster_id, "reason": "unauthenticated"}
            log.warning("sql_server.restarted", extra=fields)
            self.stop(cluster.cluster_id)
        return self._start(cluster, directory)

    def running(self, cluster_id: str) -> ThriftEndpoint | None:
        """The cluster's server if it runs and authenticates with the cluster's secret."""
        directory = self.directory(cluster_id)
        state = self._live_state(cluster_id)
        if state is None or state.get("auth") != _AUTH:
            return None
        password = _read_secret(directory)
        if password is None:
            return None
        return ThriftEndpoint(
            "127.0.0.1", state["port"], state.get("ui_port"), directory, SQL_USER, password
        )

    def _live_state(self, cluster_id: str) -> dict | None:
        """The server's state while it serves: its shim runs and its engine has not exited
        (the shim outlives the engine by a moment, and records its exit first)."""
        directory = self.directory(cluster_id)
        state = _read_state(directory)
        if state is None or (directory / jobdir.EXIT).exists():
            return None
        handle = ProcessHandle(state["pid"], state["start_ticks"])
        return state if self.table.is_running(handle) else None

    def known_clusters(self) -> list[str]:
        """Clusters whose server this installation started and that is still running."""
        if not self.base_dir.is_dir():
            return []
        return [d.name for d in self.base_dir.iterdir() if self._live_state(d.name) is not None]

    def stop_idle(self, busy: set[str], idle_seconds: float) -> list[str]:
        """Stop servers with no live SQL job for ``idle_seconds``; returns the clusters stopped.

        A server costs a JVM (about 1 GB), so it should not outlive its work by long; 0 stops
        every idle one at once (used when the service shuts down).
        """
        now = time.monotonic()
        stopped = []
        for cluster_id in self.known_clusters():
            if cluster_id in busy:
                self._last_busy[cluster_id] = now
                continue
            since = self._last_busy.setdefault(cluster_id, now)
            if now - since >= idle_seconds:
                self.stop(cluster_id)
                self._last_busy.pop(cluster_id, None)
                stopped.append(cluster_id)
                log.info("sql_server.stopped", extra={"cluster_id": cluster_id, "reason": "idle"})
        return stopped

    def stop(self, cluster_id: str) -> None:
        state = _read_state(self.directory(cluster_id))
        if state is not None:
            from mrs_jobs.runtime.process import kill_run

            kill_run(ProcessHandle(state["pid"], state["start_ticks"]), 5.0)
            (self.directory(cluster_id) / _STATE_FILE).unlink(missing_ok=True)

    def _start(self, cluster: ClusterSpec, directory: Path) -> ThriftEndpoint:
        java_home = find_java_home(cluster.java_home or self.java_home)
        spark_home = find_spark_home(cluster.spark_home or self.spark_home)
        if java_home is None or spark_home is None:
            raise EngineRefused("Spark SQL needs Java and Spark (pyspark) on this machine")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for sub in (EVENTS_DIR, "tmp", "spark-local", "conf", "warehouse", "lib"):
            (directory / sub).mkdir(exist_ok=True)
        # A copy in the server's own directory: the one place its box surely shows.
        auth_jar = directory / "lib" / AUTH_JAR.name
        shutil.copyfile(AUTH_JAR, auth_jar)
        password = _ensure_secret(directory)
        port, ui_port = free_port(), free_port()
        conf = _server_conf(directory, port, ui_port, auth_jar)
        argv = [
            spark_submit_path(spark_home),
            "--master",
            cluster.spark_master,
            "--class",
            _SERVER_CLASS,
            "--name",
            f"mrs-jobs-sql-{cluster.cluster_id}",
            "--driver-memory",
            cluster.settings.sql_driver_memory or self.driver_memory,
        ]
        if is_local_master(cluster.spark_master):
            conf["spark.authenticate"] = "true"  # the driver's RPC ports are on loopback
        argv += conf_args(conf.items())
        argv.append("spark-internal")
        python = cluster.pyspark_python or self.pyspark_python or sys.executable
        env = spark_env(java_home, spark_home, python, directory)
        env[SERVICE_VARIABLE] = f"{self.marker}:{cluster.cluster_id}"
        handle = self._launch(
            cluster, directory, LaunchSpec(argv=argv, env=env, cwd=str(directory))
        )
        state = {
            "pid": handle.pid,
            "start_ticks": handle.start_ticks,
            "port": port,
            "ui_port": ui_port,
            "auth": _AUTH,
        }
        jobdir.write_json_atomic(directory / _STATE_FILE, state)
        fields = {"cluster_id": cluster.cluster_id, "port": port, "pid": handle.pid}
        log.info("sql_server.started", extra=fields)
        return ThriftEndpoint("127.0.0.1", port, ui_port, directory, SQL_USER, password)

    def _launch(self, cluster: ClusterSpec, directory: Path, spec: LaunchSpec) -> ProcessHandle:
        """Start the server under a shim, boxed like a job of its cluster."""
        box = None
        if self.box is not None:
            box = self.box.for_run(
                directory,
                spec.argv,
                spec.env,
                read_roots=cluster.input_roots,
                write_roots=cluster.output_roots,
            )
        return self.table.launch(
            directory, spec, box=box, bwrap=self.box.bwrap if self.box is not None else None
        )


def _server_conf(directory: Path, port: int, ui_port: int, auth_jar: Path) -> dict[str, str]:
    """The server's Spark settings: Thrift on loopback with our authenticator, the cluster's
    warehouse, the event log in its directory, no kill links in its UI."""
    java_opts = " ".join(
        [
            java_opt_path("-Djava.io.tmpdir", directory / "tmp"),
            java_opt_path("-Dderby.system.home", directory),
            # Read by a fresh HiveConf, which is what instantiates the authenticator.
            "-Dhive.server2.authentication=CUSTOM",
            f"-Dhive.server2.custom.authentication.class={AUTH_CLASS}",
            f"-D{USER_PROPERTY}={SQL_USER}",
            java_opt_path(f"-D{FILE_PROPERTY}", directory / SECRET_FILE),
        ]
    )
    return {
        "spark.hadoop.hive.server2.thrift.port": str(port),
        "spark.hadoop.hive.server2.thrift.bind.host": "127.0.0.1",
        "spark.hadoop.hive.server2.authentication": "CUSTOM",
        "spark.hadoop.hive.server2.custom.authentication.class": AUTH_CLASS,
        "spark.driver.extraClassPath": str(auth_jar),
        "spark.ui.killEnabled": "false",
        "spark.sql.warehouse.dir": str(directory / "warehouse"),
        "spark.sql.catalogImplementation": "hive",
        "spark.ui.port": str(ui_port),
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": (directory / EVENTS_DIR).as_uri(),
        "spark.log.level": "WARN",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.defaultJavaOptions": java_opts,
        "spark.sql.thriftServer.incrementalCollect": "true",
    }


def _ensure_secret(directory: Path) -> str:
    """The cluster's server password, made (0600) on its first start and kept after that."""
    existing = _read_secret(directory)
    if existing is not None:
        return existing
    path = directory / SECRET_FILE
    password = secrets.token_urlsafe(32)
    jobdir.write_private(path, password)  # replaces an empty, unreadable or odd file
    return password


def _read_secret(directory: Path) -> str | None:
    raw = read_capped(directory / SECRET_FILE, 4096)
    text = raw.decode("ascii", "replace").strip() if raw else ""
    return text or None


def _read_state(directory: Path) -> dict | None:
    state = jobdir.read_json(directory / _STATE_FILE)
    if not isinstance(state, dict):
        return None
    if read_start_ticks(state.get("pid", -1)) != state.get("start_ticks"):
        return None
    return state
