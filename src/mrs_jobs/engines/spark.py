"""The ``SparkSubmit`` engine: MRS arguments → a ``spark-submit`` argv, and progress back.

The UI port is chosen here and passed as ``--conf spark.ui.port=N`` (the user's own is dropped,
so there is one); ``observe()`` reads it back from the launch's argv (``engine.json`` holds it
too), checks once in a long job whether Spark moved on to a following port, and reads progress
from the driver's event log, never from its UI (``spark_events``).
Where the driver runs per cluster kind is ``spark_kinds``; argument parsing ``spark_args``;
event log and progress ``spark_progress``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from mrs_jobs.domain.render import is_secret_key
from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    Observation,
    Usage,
)
from mrs_jobs.engines.java import spark_submit_path
from mrs_jobs.engines.k8s import driver_pod_name as k8s_driver_pod
from mrs_jobs.engines.kit import (
    RemoteApplication,
    RemoteEngine,
    conf_args,
    free_port,
    job_dirs,
    launch_env,
    require_java,
    require_spark,
)
from mrs_jobs.engines.paths import InputRoots
from mrs_jobs.engines.spark_args import (
    FILE_LIST_OPTIONS,
    FILE_OPTIONS,
    FLAG_OPTIONS,
    LOCAL_RESERVED_CONF,
    RESERVED_CONF,
    VALUE_OPTIONS,
    is_cluster_local,
    is_local_master,
    java_opt_path,
    localize,
    localize_list,
    parse_submit_arguments,
)
from mrs_jobs.engines.spark_events import EVENT_LOG_CONF
from mrs_jobs.engines.spark_history import HistoryServers
from mrs_jobs.engines.spark_kinds import Placement, RemoteSpark, cluster_info, placement
from mrs_jobs.engines.spark_progress import (
    EVENTS_DIR,
    LocalDrivers,
    find_event_log_app,
    progress_of,
    ui_port_of,
)
from mrs_jobs.runtime import jobdir
from mrs_jobs.storage.objectstore import (
    ObjectStoreError,
    S3Credentials,
    fetch,
    is_object_uri,
    resolve_credentials,
    secret_env,
    spark_conf,
)

__all__ = [
    "EVENTS_DIR",
    "FLAG_OPTIONS",
    "RESERVED_CONF",
    "VALUE_OPTIONS",
    "SparkSubmitEngine",
    "find_event_log_app",
    "is_secret_key",
    "parse_submit_arguments",
    "progress_of",
    "spark_env",
    "ui_port_of",
]

TMP_DIR = "tmp"
LOCAL_DIR = "spark-local"
CONF_DIR = "conf"
INPUTS_DIR = "inputs"  # fetched object-store programs (may be secret): dropped at the end


def spark_env(java_home: str, spark_home: str, python: str, workdir: Path) -> dict[str, str]:
    """The whole environment of a Spark process (the kit's base and Spark's own)."""
    return launch_env(workdir, workdir / TMP_DIR, java_home) | {
        "SPARK_HOME": spark_home,
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": python,
        "PYTHONUNBUFFERED": "1",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_DIRS": str(workdir / LOCAL_DIR),
        "SPARK_CONF_DIR": str(workdir / CONF_DIR),
        "SPARK_LAUNCHER_OPTS": "-XX:-UsePerfData",
    }


@dataclass
class _Build:
    """What build() learns on its way, step by step."""

    job: JobSpec
    cluster: ClusterSpec
    place: Placement
    roots: InputRoots
    notes: list[str] = field(default_factory=list)
    creds: S3Credentials | None = None

    @property
    def reserved(self) -> set[str]:
        local = is_local_master(self.place.master)
        ours = {key for key, _ in EVENT_LOG_CONF} if self.place.driver_local else set()
        return RESERVED_CONF | ours | (LOCAL_RESERVED_CONF if local else set())


@dataclass(frozen=True)
class _SparkApp:
    """A job's Spark application on its cluster, as RemoteEngine asks it."""

    remote: RemoteSpark
    info: dict
    workdir: Path

    def status(self, app_id: str | None, launcher_id: str | None):  # noqa: ANN201
        return self.remote(self.info).status(self.info, self.workdir, app_id, launcher_id)

    def cancel(self) -> bool:
        return self.remote(self.info).cancel(self.info, self.workdir)

    def logs(self, app_id: str | None) -> str | None:
        return self.remote(self.info).logs(self.info, self.workdir, app_id)

    def usage(self, app_id: str | None) -> Usage | None:
        return self.remote(self.info).usage(self.info, self.workdir, app_id)


class SparkSubmitEngine(RemoteEngine):
    """Runs ``SparkSubmit`` jobs with the ``spark-submit`` of a Spark home (pyspark's by default).

    The user's options come after the job's properties, so they win. Local file arguments are
    resolved through symlinks, checked against the cluster's input roots and passed as absolute
    real paths, since the job runs in its own workdir.
    """

    # SparkPython (older MRS): a SparkSubmit whose application must be a Python file.
    job_types = frozenset({"SparkSubmit", "SparkPython"})
    secret_files = (CONF_DIR, INPUTS_DIR)

    def __init__(
        self,
        java_home: str | None = None,
        spark_home: str | None = None,
        pyspark_python: str | None = None,
        history: HistoryServers | None = None,
    ) -> None:
        # Service-wide settings; a ClusterSpec's own values take precedence.
        self.history = history  # the clusters' history servers: ended local jobs' pages
        self.java_home = java_home
        self.spark_home = spark_home
        self.pyspark_python = pyspark_python
        self.local = LocalDrivers()  # event-log positions and UI ports of local drivers
        self.remote = RemoteSpark()
        # Clusters of the jobs built here: their settings are trusted over engine.json, which
        # lives in a directory the job's user may write.
        self._clusters: dict[str, ClusterSpec] = {}

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        self.refuse_other_types(job, "Spark")
        options, app, app_args = parse_submit_arguments(list(job.arguments))
        if app is None:
            raise EngineRefused("SparkSubmit needs an application: a .py or .jar file")
        java_home = require_java(cluster, self.java_home)
        spark_home = require_spark(cluster, self.spark_home)
        lowered = app.lower()
        if job.job_type == "SparkPython" and not lowered.endswith(".py"):
            raise EngineRefused(f"SparkPython needs a Python application (a .py file), not {app}")
        if not (lowered.endswith(".py") or lowered.endswith(".jar")):
            raise EngineRefused(f"SparkSubmit needs an application: a .py or .jar file, not {app}")
        asked = [v for n, v in options if n == "--deploy-mode"]
        place = placement(
            cluster,
            job.job_id,
            python_app=lowered.endswith(".py"),
            asked_mode=asked[-1] if asked else None,
            user_queue=any(n == "--queue" for n, _ in options),
        )
        b = _Build(job, cluster, place, InputRoots.of(cluster, workdir), list(place.notes))
        application = self._application(b, app, workdir)
        user_argv = self._user_options(b, options)
        workdir = job_dirs(workdir, EVENTS_DIR, TMP_DIR, LOCAL_DIR, CONF_DIR)
        port = free_port()
        argv = [
            spark_submit_path(spark_home),
            *("--master", place.master, "--deploy-mode", place.deploy_mode),
            *self._conf_argv(b, workdir, port),
            *user_argv,
            application,
            *app_args,
        ]
        env = self._env(b, java_home, spark_home, workdir)
        record = {"kind": place.kind, "deploy_mode": place.deploy_mode}
        record |= {"events_dir": str(workdir / EVENTS_DIR), **place.info}
        if place.driver_local:
            record["ui_port"] = port
        jobdir.write_engine_record(workdir, "spark-submit", **record)
        if place.kind != "local":
            if len(self._clusters) > 10_000:
                self._clusters.clear()
            self._clusters[job.job_id] = cluster
        return LaunchSpec(
            argv=argv, env=env, cwd=str(workdir), notes=b.notes, detached=place.detached
        )

    @staticmethod
    def _application(b: _Build, app: str, workdir: Path) -> str:
        """The application as spark-submit gets it (fetched first from an object store)."""
        props = b.job.properties
        if is_object_uri(app) or any(k.startswith(("fs.obs.", "fs.s3a.")) for k in props):
            try:
                b.creds = resolve_credentials(props, b.cluster.settings.object_store)
            except ObjectStoreError as exc:
                if is_object_uri(app):
                    raise EngineRefused(str(exc)) from None
                b.notes.append(f"object-store properties not applied: {exc}")
        if is_object_uri(app):
            # No S3A connector ships with pyspark: the program file is fetched before launch.
            try:
                fetched = fetch(app, Path(workdir).resolve() / INPUTS_DIR, b.creds)
            except ObjectStoreError as exc:
                raise EngineRefused(f"could not fetch the application: {exc}") from None
            b.notes.append(f"fetched {app} to {fetched}")
            return str(fetched)
        if not b.place.driver_local and is_cluster_local(app):
            return app  # in the image / on the nodes, where the driver runs
        return localize(app, b.roots, "application file", must_exist=True)

    @staticmethod
    def _user_options(b: _Build, options: list[tuple[str, str | None]]) -> list[str]:
        """The user's options, with what the service decides replaced and files localized."""
        master, deploy_mode, notes = b.place.master, b.place.deploy_mode, b.notes
        user_argv: list[str] = []
        for name, value in options:
            if name == "--master":
                notes.append(f"replaced --master {value} with {master}")
                continue
            if name == "--deploy-mode":
                if value != deploy_mode:
                    notes.append(f"replaced --deploy-mode {value} with {deploy_mode}")
                continue
            if value is None:  # a flag
                user_argv.append(name)
                continue
            if name == "--conf":
                key = value.partition("=")[0].strip()
                if key in b.reserved:
                    if key == "spark.master":
                        notes.append(f"replaced --conf {value} with --master {master}")
                    else:
                        notes.append(f"ignored --conf {key}: set by the service")
                    continue
            elif name in FILE_LIST_OPTIONS:
                on_cluster = not b.place.driver_local
                value = localize_list(value, b.roots, f"{name} file", on_cluster=on_cluster)
            elif name in FILE_OPTIONS:
                value = localize(value, b.roots, f"{name} file", must_exist=False)
            user_argv += [name, value]
        return user_argv

    @staticmethod
    def _conf_argv(b: _Build, workdir: Path, port: int) -> list[str]:
        """The service's ``--conf``s, then the job's ``spark.*`` properties."""
        if b.place.driver_local:
            java_opts = " ".join(
                [
                    java_opt_path("-Djava.io.tmpdir", workdir / TMP_DIR),
                    java_opt_path("-Dderby.system.home", workdir),
                    "-XX:-UsePerfData",
                ]
            )
            ours = [
                ("spark.ui.enabled", "true"),
                ("spark.ui.port", str(port)),
                ("spark.ui.killEnabled", "false"),  # any local process can reach the UI
                ("spark.eventLog.enabled", "true"),
                ("spark.eventLog.dir", (workdir / EVENTS_DIR).as_uri()),
                *EVENT_LOG_CONF,  # read while written, for progress (spark_events)
                ("spark.log.level", "WARN"),
                ("spark.ui.showConsoleProgress", "false"),
                ("spark.driver.defaultJavaOptions", java_opts),
            ]
        else:
            # The driver runs on the cluster: paths and ports of this host mean nothing there,
            # and its INFO log is where it tells its app id and UI port.
            ours = [("spark.ui.showConsoleProgress", "false"), ("spark.ui.killEnabled", "false")]
        if is_local_master(b.place.master):
            ours.append(("spark.authenticate", "true"))  # the driver's RPC ports are on loopback
        theirs = list(spark_conf(b.creds).items()) if b.creds else []
        for key, value in b.job.properties.items():
            if not key.startswith("spark."):
                continue
            if is_secret_key(key):
                b.notes.append(f"secret property {key} not passed on the command line")
            elif key in b.reserved:
                b.notes.append(f"ignored property {key}: set by the service")
            else:
                theirs.append((key, value))
        return conf_args(ours) + b.place.confs + conf_args(theirs)

    def _env(self, b: _Build, java_home: str, spark_home: str, workdir: Path) -> dict[str, str]:
        python = b.cluster.pyspark_python or self.pyspark_python or sys.executable
        env = spark_env(java_home, spark_home, python, workdir) | b.place.env
        if not b.place.loopback:
            # Executors on other hosts must reach a client-mode driver: Spark picks the
            # host's address instead of loopback.
            env.pop("SPARK_LOCAL_IP", None)
        if not b.place.driver_local and not (b.cluster.pyspark_python or self.pyspark_python):
            # A driver on the cluster uses the cluster's Python (image or node), not this
            # host's interpreter path.
            env.pop("PYSPARK_PYTHON", None)
            env.pop("PYSPARK_DRIVER_PYTHON", None)
        if b.creds is not None:
            env.update(secret_env(b.creds))  # the environment, never the command line
        return env

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        workdir = Path(workdir)
        info = self._info(job, workdir, None)
        if info.get("deploy_mode") == "cluster":
            return self.remote(info).observe(info, workdir)
        obs = self.local.observe(workdir, launch)
        if obs.app_id is None and info.get("kind") == "yarn":
            return self.remote(info).observe(info, workdir)  # printed before the event log
        return obs

    def ended_tracking_url(
        self,
        job_id: str,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> str | None:
        """A local job's page on its cluster's history server (the driver's UI died with
        it); other kinds keep the URL their cluster gave (YARN proxy, master, pod UI)."""
        if self.history is None or cluster is None or cluster.kind != "local":
            return None
        if jobdir.read_engine_record(Path(workdir)).get("kind") != "local":
            return None
        return self.history.keep(cluster.cluster_id, Path(workdir), app_id)

    def forget(self, job_id: str, workdir: Path, app_id: str | None, cluster_id: str) -> None:
        if self.history is not None:
            self.history.forget(cluster_id, Path(workdir), app_id)

    def housekeeping(self, live_jobs: dict[str, set[str]], idle_seconds: float) -> None:
        """Stop the history servers nothing used for their own idle time (all of them when
        the service stops: ``idle_seconds`` 0)."""
        if self.history is not None:
            self.history.stop_idle(self.history.idle_seconds if idle_seconds > 0 else 0.0)

    def application(
        self, job: JobSpec, workdir: Path, launch: LaunchSpec, cluster: ClusterSpec | None
    ) -> RemoteApplication | None:
        """The driver (cluster mode) or application on its cluster: master, RM or pod."""
        return _SparkApp(self.remote, self._info(job, workdir, cluster), workdir)

    def _info(self, job: JobSpec, workdir: Path, cluster: ClusterSpec | None) -> dict:
        """engine.json, with where-to-ask settings taken from the cluster itself when it is
        known (given, or built here since the service started), not from the file."""
        info = jobdir.read_engine_record(workdir)
        cluster = cluster or self._clusters.get(job.job_id)
        if cluster is not None and cluster.kind == info.get("kind"):
            info.update(cluster_info(cluster, job.job_id))
        elif info.get("kind") == "k8s":
            info["driver_pod"] = k8s_driver_pod(job.job_id)
        return info
