"""The ``SparkSubmit`` engine: MRS arguments → a ``spark-submit`` argv, and progress back.

Layout of a job's working directory (all created by :meth:`SparkSubmitEngine.build`)::

    <workdir>/events/       spark.eventLog.dir; the entry's name gives the application id
    <workdir>/tmp/          TMPDIR, -Djava.io.tmpdir
    <workdir>/spark-local/  SPARK_LOCAL_DIRS (shuffle and PySpark scratch space)
    <workdir>/conf/         SPARK_CONF_DIR, left empty so no global spark-defaults.conf is read
    <workdir>/engine.json   {"engine": "spark-submit", "kind", "deploy_mode", "ui_port": N,
                            "events_dir", and what the cluster kind needs to follow the driver}

Where the UI port is recorded: the launch's argv carries it as ``--conf spark.ui.port=N``
(the user's own ``spark.ui.port`` is dropped, so there is exactly one), and
:meth:`SparkSubmitEngine.observe` reads it back from ``launch.argv``; ``engine.json`` holds the
same value for people and tools and is the fallback when the argv has none. Spark moves to the
next port when the chosen one was taken in the meantime (``spark.port.maxRetries``), so observe()
also probes the following ports for the application's REST API when the recorded one does not
answer for this application.

Cluster kinds (``spark_kinds``): ``local`` and client deploy mode run the driver in the launcher
as above; cluster deploy mode (jars on ``spark-standalone``, any app on ``yarn`` and ``k8s``) is a
detached launch whose driver is followed on the cluster by ``status()`` and cancelled there by
``cancel()``. Argument parsing lives in ``spark_args``, event log and progress in
``spark_progress``.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

from mrs_jobs.domain.render import is_secret_key
from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineAdapter,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    Observation,
    RemoteStatus,
)
from mrs_jobs.engines.java import find_java_home, find_spark_home, spark_submit_path
from mrs_jobs.engines.k8s import driver_pod_name as k8s_driver_pod
from mrs_jobs.engines.objectstore import (
    ObjectStoreError,
    fetch,
    is_object_uri,
    resolve_credentials,
    secret_env,
    spark_conf,
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
from mrs_jobs.engines.spark_kinds import RemoteSpark, cluster_info, placement
from mrs_jobs.engines.spark_progress import (
    ENGINE_FILE,
    EVENTS_DIR,
    find_event_log_app,
    progress_of,
    rest_jobs,
    ui_port_of,
)
from mrs_jobs.fsutil import read_capped

__all__ = [
    "ENGINE_FILE",
    "EVENTS_DIR",
    "FLAG_OPTIONS",
    "RESERVED_CONF",
    "VALUE_OPTIONS",
    "SparkSubmitEngine",
    "find_event_log_app",
    "free_port",
    "is_secret_key",
    "parse_submit_arguments",
    "progress_of",
    "spark_env",
    "ui_port_of",
]

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_REST_TIMEOUT = 0.3
_PORT_PROBES = 16  # Spark's default spark.port.maxRetries

TMP_DIR = "tmp"
LOCAL_DIR = "spark-local"
CONF_DIR = "conf"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_env(java_home: str, spark_home: str, python: str, workdir: Path) -> dict[str, str]:
    """The whole environment of a Spark process, built from scratch (nothing of the service's
    own environment — its database URL or keys — leaks into a job)."""
    path_parts = [str(Path(java_home) / "bin")] + [
        p for p in _DEFAULT_PATH.split(":") if p != str(Path(java_home) / "bin")
    ]
    return {
        "PATH": ":".join(path_parts),
        "LANG": "C.UTF-8",
        "HOME": str(workdir),
        "JAVA_HOME": java_home,
        "SPARK_HOME": spark_home,
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": python,
        "PYTHONUNBUFFERED": "1",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_DIRS": str(workdir / LOCAL_DIR),
        "SPARK_CONF_DIR": str(workdir / CONF_DIR),
        "SPARK_LAUNCHER_OPTS": "-XX:-UsePerfData",
        "TMPDIR": str(workdir / TMP_DIR),
    }


class SparkSubmitEngine(EngineAdapter):
    """Runs ``SparkSubmit`` jobs with the ``spark-submit`` of a Spark home (pyspark's by default).

    ``build()`` order: ``spark-submit --master <m> --deploy-mode <mode>`` (per cluster kind, see
    ``spark_kinds``), the service's ``--conf``s, the job's ``spark.*`` properties as
    ``--conf``s (secret keys skipped), then the user's options (so they win over properties),
    the application, its arguments.

    Local file arguments (the application, ``--jars``/``--py-files``/``--files``/
    ``--archives`` entries, ``--properties-file``, ``--keytab``) are resolved through symlinks
    (relative ones against the service's current directory), checked against the cluster's
    input roots and passed as absolute real paths, since the job runs in its own workdir.
    Only the application must exist at build time (the lists may hold globs).
    """

    job_types = frozenset({"SparkSubmit"})

    def __init__(
        self,
        java_home: str | None = None,
        spark_home: str | None = None,
        pyspark_python: str | None = None,
    ) -> None:
        # Service-wide settings; a ClusterSpec's own values take precedence.
        self.java_home = java_home
        self.spark_home = spark_home
        self.pyspark_python = pyspark_python
        self._moved_ports: dict[tuple[str, str], int] = {}
        self.remote = RemoteSpark()
        # Clusters of the jobs built here: their settings are trusted over engine.json, which
        # lives in a directory the job's user may write.
        self._clusters: dict[str, ClusterSpec] = {}

    # ------------------------------------------------------------------ build

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        self.refuse_other_types(job, "Spark")
        options, app, app_args = parse_submit_arguments(list(job.arguments))
        if app is None:
            raise EngineRefused("SparkSubmit needs an application: a .py or .jar file")

        java_home = find_java_home(cluster.java_home or self.java_home)
        if java_home is None:
            raise EngineRefused("Java was not found: set java_home or JAVA_HOME")
        spark_home = find_spark_home(cluster.spark_home or self.spark_home)
        if spark_home is None:
            raise EngineRefused("Spark was not found: set spark_home or install pyspark")

        roots = InputRoots.of(cluster, workdir)
        app_path = app
        lowered = app_path.lower()
        if not (lowered.endswith(".py") or lowered.endswith(".jar")):
            raise EngineRefused(
                f"SparkSubmit needs an application: a .py or .jar file, not {app_path}"
            )
        asked = [v for n, v in options if n == "--deploy-mode"]
        place = placement(
            cluster,
            job.job_id,
            python_app=lowered.endswith(".py"),
            asked_mode=asked[-1] if asked else None,
            user_queue=any(n == "--queue" for n, _ in options),
        )
        master, deploy_mode = place.master, place.deploy_mode
        reserved = RESERVED_CONF | (LOCAL_RESERVED_CONF if is_local_master(master) else set())
        notes: list[str] = list(place.notes)

        # The application.
        creds = None
        if is_object_uri(app_path) or any(
            k.startswith(("fs.obs.", "fs.s3a.")) for k in job.properties
        ):
            try:
                creds = resolve_credentials(job.properties, cluster.extra)
            except ObjectStoreError as exc:
                if is_object_uri(app_path):
                    raise EngineRefused(str(exc)) from None
                notes.append(f"object-store properties not applied: {exc}")
        if is_object_uri(app_path):
            # No S3A connector ships with pyspark: the program file is fetched before launch.
            try:
                fetched = fetch(app_path, Path(workdir).resolve() / "inputs", creds)
            except ObjectStoreError as exc:
                raise EngineRefused(f"could not fetch the application: {exc}") from None
            notes.append(f"fetched {app_path} to {fetched}")
            application = str(fetched)
        elif not place.driver_local and is_cluster_local(app_path):
            application = app_path  # in the image / on the nodes, where the driver runs
        else:
            application = localize(app_path, roots, "application file", must_exist=True)

        # The user's options.
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
                if key in reserved:
                    if key == "spark.master":
                        notes.append(f"replaced --conf {value} with --master {master}")
                    else:
                        notes.append(f"ignored --conf {key}: set by the service")
                    continue
            elif name in FILE_LIST_OPTIONS:
                value = localize_list(
                    value, roots, f"{name} file", on_cluster=not place.driver_local
                )
            elif name in FILE_OPTIONS:
                value = localize(value, roots, f"{name} file", must_exist=False)
            user_argv += [name, value]

        # Directories.
        workdir = Path(workdir).resolve()
        events = workdir / EVENTS_DIR
        tmp = workdir / TMP_DIR
        local = workdir / LOCAL_DIR
        conf_dir = workdir / CONF_DIR
        for d in (workdir, events, tmp, local, conf_dir):
            d.mkdir(parents=True, exist_ok=True)

        port = free_port()
        java_opts = " ".join(
            [
                java_opt_path("-Djava.io.tmpdir", tmp),
                java_opt_path("-Dderby.system.home", workdir),
                "-XX:-UsePerfData",
            ]
        )
        if place.driver_local:
            ours = [
                "spark.ui.enabled=true",
                f"spark.ui.port={port}",
                "spark.ui.killEnabled=false",  # any local process can reach the UI
                "spark.eventLog.enabled=true",
                f"spark.eventLog.dir={events.as_uri()}",
                "spark.log.level=WARN",
                "spark.ui.showConsoleProgress=false",
                f"spark.driver.defaultJavaOptions={java_opts}",
            ]
        else:
            # The driver runs on the cluster: paths and ports of this host mean nothing there,
            # and its INFO log is where it tells its app id and UI port.
            ours = ["spark.ui.showConsoleProgress=false", "spark.ui.killEnabled=false"]
        if is_local_master(master):
            ours.append("spark.authenticate=true")  # the driver's RPC ports are on loopback
        conf_argv: list[str] = []
        for c in ours:
            conf_argv += ["--conf", c]
        conf_argv += place.confs
        if creds is not None:
            for key, value in spark_conf(creds).items():
                conf_argv += ["--conf", f"{key}={value}"]
        for key, value in job.properties.items():
            if not key.startswith("spark."):
                continue
            if is_secret_key(key):
                notes.append(f"secret property {key} not passed on the command line")
                continue
            if key in reserved:
                notes.append(f"ignored property {key}: set by the service")
                continue
            conf_argv += ["--conf", f"{key}={value}"]

        argv = [
            spark_submit_path(spark_home),
            "--master",
            master,
            "--deploy-mode",
            deploy_mode,
            *conf_argv,
            *user_argv,
            application,
            *app_args,
        ]

        python = cluster.pyspark_python or self.pyspark_python or sys.executable
        env = spark_env(java_home, spark_home, python, workdir)
        env.update(place.env)
        if not place.loopback:
            # Executors on other hosts must reach a client-mode driver: Spark picks the
            # host's address instead of loopback.
            env.pop("SPARK_LOCAL_IP", None)
        if not place.driver_local and not (cluster.pyspark_python or self.pyspark_python):
            # A driver on the cluster uses the cluster's Python (image or node), not this
            # host's interpreter path.
            env.pop("PYSPARK_PYTHON", None)
            env.pop("PYSPARK_DRIVER_PYTHON", None)
        if creds is not None:
            env.update(secret_env(creds))  # the environment, never the command line

        info = {
            "engine": "spark-submit",
            "kind": place.kind,
            "deploy_mode": deploy_mode,
            "events_dir": str(events),
            **place.info,
        }
        if place.driver_local:
            info["ui_port"] = port
        (workdir / ENGINE_FILE).write_text(json.dumps(info) + "\n", encoding="utf-8")
        if place.kind != "local":
            if len(self._clusters) > 10_000:
                self._clusters.clear()
            self._clusters[job.job_id] = cluster
        return LaunchSpec(
            argv=argv, env=env, cwd=str(workdir), notes=notes, detached=place.detached
        )

    # ---------------------------------------------------------------- observe

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        try:
            workdir = Path(workdir)
            info = self._info(job, workdir, None)
            if info.get("deploy_mode") == "cluster":
                return self.remote.observe(info, workdir)
            obs = self._observe(workdir, launch)
            if obs.app_id is None and info.get("kind") == "yarn":
                return self.remote.observe(info, workdir)  # printed before the event log
            return obs
        except Exception:  # observe() must never raise
            return Observation()

    def status(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        launcher_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> RemoteStatus | None:
        """A cluster-mode driver's state on its cluster; None when it cannot be asked now."""
        try:
            info = self._info(job, Path(workdir), cluster)
            return self.remote.status(info, Path(workdir), app_id, launcher_id)
        except Exception:  # never raises: asked again next pass
            return None

    def cancel(
        self, job: JobSpec, workdir: Path, launch: LaunchSpec, cluster: ClusterSpec | None = None
    ) -> bool:
        """Kill the application on its cluster (driver, app, YARN app or driver pod)."""
        try:
            return self.remote.cancel(self._info(job, Path(workdir), cluster), Path(workdir))
        except Exception:
            return False

    def _info(self, job: JobSpec, workdir: Path, cluster: ClusterSpec | None) -> dict:
        """engine.json, with where-to-ask settings taken from the cluster itself when it is
        known (given, or built here since the service started), not from the file."""
        info = engine_info(workdir)
        cluster = cluster or self._clusters.get(job.job_id)
        if cluster is not None and cluster.kind == info.get("kind"):
            info.update(cluster_info(cluster, job.job_id))
        elif info.get("kind") == "k8s":
            info["driver_pod"] = k8s_driver_pod(job.job_id)
        return info

    def _observe(self, workdir: Path, launch: LaunchSpec) -> Observation:
        found = find_event_log_app(workdir / EVENTS_DIR)
        if found is None:
            return Observation()
        app_id, live = found
        port = ui_port_of(launch, workdir)
        if port is None:
            return Observation(app_id=app_id, running=True)
        key = (str(workdir), app_id)
        port = self._moved_ports.get(key, port)
        progress = None
        if live:
            jobs, port = self._jobs_of(app_id, port)
            if jobs is not None:
                progress = progress_of(jobs)
                if len(self._moved_ports) > 1000:  # entries of jobs no longer observed
                    self._moved_ports.clear()
                self._moved_ports[key] = port
        else:
            self._moved_ports.pop(key, None)
        return Observation(
            app_id=app_id,
            tracking_url=f"http://127.0.0.1:{port}",
            progress=progress,
            running=True,
        )

    def _jobs_of(self, app_id: str, port: int) -> tuple[list | None, int]:
        """The app's /jobs list, probing the ports Spark would have moved on to."""
        deadline = time.monotonic() + 2 * _REST_TIMEOUT
        for candidate in range(port, port + _PORT_PROBES + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0.01:
                break
            status, jobs = rest_jobs(candidate, app_id, min(_REST_TIMEOUT, remaining))
            if status == "ok":
                return jobs, candidate
        return None, port


def engine_info(workdir: Path) -> dict:
    """``<workdir>/engine.json`` as build() wrote it ({} when missing or unreadable)."""
    raw = read_capped(workdir / ENGINE_FILE, 1_000_000)
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
