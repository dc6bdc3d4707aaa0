"""The ``SparkSubmit`` engine: MRS arguments → a ``spark-submit`` argv, and progress back.

Layout of a job's working directory (all created by :meth:`SparkSubmitEngine.build`)::

    <workdir>/events/       spark.eventLog.dir; the entry's name gives the application id
    <workdir>/tmp/          TMPDIR, -Djava.io.tmpdir
    <workdir>/spark-local/  SPARK_LOCAL_DIRS (shuffle and PySpark scratch space)
    <workdir>/conf/         SPARK_CONF_DIR, left empty so no global spark-defaults.conf is read
    <workdir>/engine.json   {"engine": "spark-submit", "ui_port": N, "events_dir": ...}

Where the UI port is recorded: the launch's argv carries it as ``--conf spark.ui.port=N``
(the user's own ``spark.ui.port`` is dropped, so there is exactly one), and
:meth:`SparkSubmitEngine.observe` reads it back from ``launch.argv``; ``engine.json`` holds the
same value for people and tools and is the fallback when the argv has none. Spark moves to the
next port when the chosen one was taken in the meantime (``spark.port.maxRetries``), so observe()
also probes the following ports for the application's REST API when the recorded one does not
answer for this application.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from mrs_jobs.domain.render import is_secret_key
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec, LaunchSpec, Observation
from mrs_jobs.engines.java import find_java_home, find_spark_home, spark_submit_path
from mrs_jobs.engines.objectstore import (
    ObjectStoreError,
    fetch,
    is_object_uri,
    resolve_credentials,
    secret_env,
    spark_conf,
)
from mrs_jobs.engines.paths import InputRoots

__all__ = [
    "FLAG_OPTIONS",
    "VALUE_OPTIONS",
    "SparkSubmitEngine",
    "is_secret_key",
    "free_port",
    "parse_submit_arguments",
    "spark_env",
]

# spark-submit options that take a value.
VALUE_OPTIONS = frozenset(
    {
        "--archives",
        "--class",
        "--conf",
        "--deploy-mode",
        "--driver-class-path",
        "--driver-cores",
        "--driver-java-options",
        "--driver-library-path",
        "--driver-memory",
        "--exclude-packages",
        "--executor-cores",
        "--executor-memory",
        "--files",
        "--jars",
        "--keytab",
        "--master",
        "--name",
        "--num-executors",
        "--packages",
        "--principal",
        "--properties-file",
        "--proxy-user",
        "--py-files",
        "--queue",
        "--repositories",
        "--total-executor-cores",
    }
)
# spark-submit options without a value.
FLAG_OPTIONS = frozenset({"--supervise", "--verbose"})
# spark-submit's own short spellings.
_ALIASES = {"-c": "--conf", "-v": "--verbose"}
# Options whose value is a comma-separated list of files / a single file.
_FILE_LIST_OPTIONS = frozenset({"--archives", "--files", "--jars", "--py-files"})
_FILE_OPTIONS = frozenset({"--keytab", "--properties-file"})

# Configuration the service owns: a user's value would break log capture or observation.
RESERVED_CONF = frozenset(
    {
        "spark.driver.defaultJavaOptions",
        "spark.eventLog.dir",
        "spark.eventLog.enabled",
        "spark.master",
        "spark.submit.deployMode",
        "spark.ui.enabled",
        "spark.ui.port",
    }
)

# URL schemes handed to Spark untouched (remote file systems, downloads).
_REMOTE_SCHEMES = frozenset(
    {
        "abfs",
        "abfss",
        "gs",
        "hdfs",
        "http",
        "https",
        "obs",
        "oss",
        "s3",
        "s3a",
        "s3n",
        "viewfs",
        "wasb",
        "wasbs",
    }
)
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SAFE_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_CODEC_SUFFIXES = (".lz4", ".lzf", ".snappy", ".zstd")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_REST_TIMEOUT = 0.3
_PORT_PROBES = 16  # Spark's default spark.port.maxRetries

EVENTS_DIR = "events"
TMP_DIR = "tmp"
LOCAL_DIR = "spark-local"
CONF_DIR = "conf"
ENGINE_FILE = "engine.json"


def parse_submit_arguments(
    arguments: list[str],
) -> tuple[list[tuple[str, str | None]], str | None, list[str]]:
    """Split MRS SparkSubmit arguments into (options, application, application arguments).

    Options are returned in order as ``(name, value)`` with ``--opt=value`` unfolded and short
    aliases (``-c``, ``-v``) spelled out; flags have value ``None``. The first argument that
    does not start with ``-`` is the application and everything after it is passed verbatim.
    Raises :class:`EngineRefused` on an unknown option, a missing value or a NUL character.
    """
    options: list[tuple[str, str | None]] = []
    i = 0
    while i < len(arguments):
        arg = arguments[i]
        if "\x00" in arg:
            raise EngineRefused("arguments must not contain NUL characters")
        if not arg.startswith("-"):
            rest = arguments[i + 1 :]
            if any("\x00" in a for a in rest):
                raise EngineRefused("arguments must not contain NUL characters")
            return options, arg, list(rest)
        if arg.startswith("--"):
            name, eq, inline = arg.partition("=")
        else:
            name, eq, inline = arg, "", ""
        name = _ALIASES.get(name, name)
        if name in VALUE_OPTIONS:
            if eq:
                value = inline
            else:
                i += 1
                if i >= len(arguments):
                    raise EngineRefused(f"spark-submit option {name} needs a value")
                value = arguments[i]
                if "\x00" in value:
                    raise EngineRefused("arguments must not contain NUL characters")
            options.append((name, value))
        elif name in FLAG_OPTIONS:
            if eq:
                raise EngineRefused(f"spark-submit option {name} takes no value")
            options.append((name, None))
        else:
            raise EngineRefused(f"unknown spark-submit option: {name}")
        i += 1
    return options, None, []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _java_opt_path(option: str, path: Path) -> str:
    """``-Dkey=<path>`` for an option string that Spark splits shell-like."""
    text = str(path)
    if re.search(r"[\s\"'\\]", text):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{option}={text}"


def _local_part(value: str) -> tuple[str | None, str]:
    """(local path or None when remote, prefix kept in front of it: '' or 'local:')."""
    m = _URL_RE.match(value)
    if m:
        scheme = m.group(1).lower()
        if scheme == "file":
            path = value[m.end() :]
            if path.startswith("localhost/"):
                path = path[len("localhost") :]
            if not path.startswith("/"):
                raise EngineRefused(f"a file:// URL must name an absolute local path: {value}")
            return urllib.parse.unquote(path), ""
        if scheme == "local":
            return value[m.end() :], "local:"
        if scheme in _REMOTE_SCHEMES:
            return None, ""
        raise EngineRefused(f"unsupported URL scheme {scheme}:// in {value}")
    if value.startswith("file:"):
        return value[len("file:") :], ""
    if value.startswith("local:"):
        return value[len("local:") :], "local:"
    return value, ""


def _localize(value: str, roots: InputRoots, what: str, *, must_exist: bool) -> str:
    """Check a file argument against the input roots; return it with local paths made real."""
    local, prefix = _local_part(value)
    if local is None:
        return value
    if not local:
        raise EngineRefused(f"empty {what} path")
    if "%" in local:
        # Spark percent-decodes some local paths (those with a #alias), so "%2e%2e" would be
        # checked as a name here but read as ".." there: refuse escapes outright.
        raise EngineRefused(f"{what} {local} contains '%': percent-escapes are not accepted")
    real = Path(local).expanduser().resolve()
    roots.check(real, local, what)
    if must_exist and not real.is_file():
        raise EngineRefused(f"{what} not found: {local}")
    return prefix + str(real)


def _localize_list(value: str, roots: InputRoots, what: str) -> str:
    out = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        path, hash_, alias = item.partition("#")  # --archives/--files "file#alias"
        out.append(_localize(path, roots, what, must_exist=False) + hash_ + alias)
    return ",".join(out)


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


class SparkSubmitEngine:
    """Runs ``SparkSubmit`` jobs with the ``spark-submit`` of a Spark home (pyspark's by default).

    ``build()`` order: ``spark-submit --master <cluster> --deploy-mode client``, the service's
    ``--conf``s, the job's ``spark.*`` properties as ``--conf``s (secret keys skipped), then the
    user's options (so they win over properties), the application, its arguments.

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

    # ------------------------------------------------------------------ build

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        if job.job_type not in self.job_types:
            raise EngineRefused(f"the Spark engine does not run {job.job_type} jobs")
        options, app, app_args = parse_submit_arguments(list(job.arguments))
        if app is None:
            raise EngineRefused("SparkSubmit needs an application: a .py or .jar file")

        java_home = find_java_home(cluster.java_home or self.java_home)
        if java_home is None:
            raise EngineRefused("Java was not found: set java_home or JAVA_HOME")
        spark_home = find_spark_home(cluster.spark_home or self.spark_home)
        if spark_home is None:
            raise EngineRefused("Spark was not found: set spark_home or install pyspark")

        roots = InputRoots(cluster.input_roots)
        master = cluster.spark_master
        deploy_mode = cluster.extra.get("spark_deploy_mode", "client")
        notes: list[str] = []

        # The application.
        app_path = app
        lowered = app_path.lower()
        if not (lowered.endswith(".py") or lowered.endswith(".jar")):
            raise EngineRefused(
                f"SparkSubmit needs an application: a .py or .jar file, not {app_path}"
            )
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
        else:
            application = _localize(app_path, roots, "application file", must_exist=True)

        # The user's options.
        user_argv: list[str] = []
        for name, value in options:
            if name == "--master":
                notes.append(f"replaced --master {value} with {master}")
                continue
            if name == "--deploy-mode":
                notes.append(f"replaced --deploy-mode {value} with {deploy_mode}")
                continue
            if value is None:  # a flag
                user_argv.append(name)
                continue
            if name == "--conf":
                key = value.partition("=")[0].strip()
                if key in RESERVED_CONF:
                    if key == "spark.master":
                        notes.append(f"replaced --conf {value} with --master {master}")
                    else:
                        notes.append(f"ignored --conf {key}: set by the service")
                    continue
            elif name in _FILE_LIST_OPTIONS:
                value = _localize_list(value, roots, f"{name} file")
            elif name in _FILE_OPTIONS:
                value = _localize(value, roots, f"{name} file", must_exist=False)
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
                _java_opt_path("-Djava.io.tmpdir", tmp),
                _java_opt_path("-Dderby.system.home", workdir),
                "-XX:-UsePerfData",
            ]
        )
        ours = [
            "spark.ui.enabled=true",
            f"spark.ui.port={port}",
            "spark.eventLog.enabled=true",
            f"spark.eventLog.dir={events.as_uri()}",
            "spark.log.level=WARN",
            "spark.ui.showConsoleProgress=false",
            f"spark.driver.defaultJavaOptions={java_opts}",
        ]
        conf_argv: list[str] = []
        for c in ours:
            conf_argv += ["--conf", c]
        if creds is not None:
            for key, value in spark_conf(creds).items():
                conf_argv += ["--conf", f"{key}={value}"]
        for key, value in job.properties.items():
            if not key.startswith("spark."):
                continue
            if is_secret_key(key):
                notes.append(f"secret property {key} not passed on the command line")
                continue
            if key in RESERVED_CONF:
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
        if creds is not None:
            env.update(secret_env(creds))  # the environment, never the command line

        info = {"engine": "spark-submit", "ui_port": port, "events_dir": str(events)}
        (workdir / ENGINE_FILE).write_text(json.dumps(info) + "\n", encoding="utf-8")
        return LaunchSpec(argv=argv, env=env, cwd=str(workdir), notes=notes)

    # ---------------------------------------------------------------- observe

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        try:
            return self._observe(Path(workdir), launch)
        except Exception:  # observe() must never raise
            return Observation()

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
            status, jobs = _rest_jobs(candidate, app_id, min(_REST_TIMEOUT, remaining))
            if status == "ok":
                return jobs, candidate
        return None, port


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _rest_jobs(port: int, app_id: str, timeout: float) -> tuple[str, list | None]:
    """('ok', jobs) | ('other', None) when something else answers | ('down', None)."""
    url = f"http://127.0.0.1:{port}/api/v1/applications/{urllib.parse.quote(app_id)}/jobs"
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as resp:
            data = json.loads(resp.read(4_000_000))
    except urllib.error.HTTPError:
        return "other", None
    except (OSError, ValueError):
        return "down", None
    if not isinstance(data, list):
        return "other", None
    return "ok", data


def progress_of(jobs: list) -> float | None:
    """Completed (or skipped) tasks over all tasks of all jobs, in percent, at most 99."""
    total = done = 0
    for j in jobs:
        if not isinstance(j, dict):
            continue
        total += int(j.get("numTasks", 0) or 0)
        done += int(j.get("numCompletedTasks", 0) or 0) + int(j.get("numSkippedTasks", 0) or 0)
    if total <= 0:
        return 0.0
    return min(99.0, round(100.0 * done / total, 1))


def ui_port_of(launch: LaunchSpec, workdir: Path) -> int | None:
    """The UI port build() chose: from the argv, else from <workdir>/engine.json."""
    argv = launch.argv
    for i, arg in enumerate(argv[:-1]):
        if arg == "--conf" and argv[i + 1].startswith("spark.ui.port="):
            with contextlib.suppress(ValueError):
                return int(argv[i + 1].partition("=")[2])
    try:
        return int(json.loads((workdir / ENGINE_FILE).read_text(encoding="utf-8"))["ui_port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _app_id_from_name(name: str) -> tuple[str, bool] | None:
    live = name.endswith(".inprogress")
    if live:
        name = name[: -len(".inprogress")]
    for suffix in _CODEC_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return (name, live) if name and _SAFE_ID_RE.match(name) else None


def find_event_log_app(events: Path) -> tuple[str, bool] | None:
    """(application id, still running) from Spark's event log directory, newest entry first.

    Handles a single-file log (``local-123``, ``local-123.inprogress``, with an optional
    codec suffix such as ``.zstd``) and Spark 4's rolling log directory
    ``eventlog_v2_local-123/`` whose ``appstatus_local-123[.inprogress]`` marks liveness.
    """
    try:
        entries = list(os.scandir(events))
    except OSError:
        return None
    best: tuple[int, str, bool] | None = None
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            mtime = e.stat(follow_symlinks=False).st_mtime_ns
            if e.name.startswith("eventlog_v2_") and e.is_dir(follow_symlinks=False):
                app_id = e.name[len("eventlog_v2_") :]
                if not _SAFE_ID_RE.match(app_id):
                    continue
                live = any(
                    n.startswith("appstatus_") and n.endswith(".inprogress")
                    for n in os.listdir(e.path)
                )
                parsed: tuple[str, bool] | None = (app_id, live)
            elif e.is_file(follow_symlinks=False):
                parsed = _app_id_from_name(e.name)
            else:
                parsed = None
        except OSError:
            continue
        if parsed is not None and (best is None or mtime > best[0]):
            best = (mtime, parsed[0], parsed[1])
    return None if best is None else (best[1], best[2])
