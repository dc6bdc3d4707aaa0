"""The ``MapReduce`` engine: ``hadoop jar`` semantics on Hadoop's local job runner.

There is no Hadoop distribution: the Hadoop client jars shipped in pyspark's ``jars/``
(``hadoop-client-api`` and ``hadoop-client-runtime``, plus the logging jars next to them) are
enough to run ``org.apache.hadoop.util.RunJar`` — the class behind ``hadoop jar`` — which
unpacks the job jar's ``lib/`` and ``classes/``, loads the main class (the jar's
``Main-Class``, else the argument after the jar) and calls it with the remaining arguments.
With ``mapreduce.framework.name=local`` the job runs in the same JVM.

The launch is ``java <JVM options> -cp <conf dir>:<hadoop jars> RunJar <job.jar> <args...>``.
The job jar itself is deliberately *not* on ``-cp``: RunJar loads it in its own class loader
together with the jar's ``lib/*.jar``; on the system class path its classes would be loaded
first, by a loader that cannot see those ``lib/`` jars (a ``NoClassDefFoundError``).

Layout of a job's working directory (all created by :meth:`MapReduceEngine.build`)::

    <workdir>/conf/          0700: log4j2.properties and the Hadoop *-site.xml files (0600)
    <workdir>/tmp/           TMPDIR, -Djava.io.tmpdir (RunJar unpacks the job jar here)
    <workdir>/hadoop-tmp/    0700: hadoop.tmp.dir (staging area, local runner's job files)

Job properties are Hadoop configuration, as the MRS console passes them: they are written to
``core-site.xml``, ``mapred-site.xml``, ``yarn-site.xml`` and ``hdfs-site.xml`` alike (Hadoop
loads each ``*-site.xml`` right after its ``*-default.xml``, so a value only in
``core-site.xml`` would lose against ``mapred-default.xml``). Secret values are there too —
the files are mode 0600 in the private workdir — and never on the command line or in the
environment. Without ``cluster.extra["hadoop_conf_dir"]`` the files also hold the local-mode
defaults (``mapreduce.framework.name=local``, ``fs.defaultFS=file:///``, the scratch
directories). With it, each generated file first XIncludes that directory's file of the same
name (a ``final`` value there still wins) and the directory follows ours on the class path, so
its other files (``capacity-scheduler.xml``...) are found too.

On a ``yarn`` cluster (``hadoop_conf_dir`` required) the job runs on that YARN:
``mapreduce.framework.name=yarn`` and ``yarn_queue`` (as ``mapreduce.job.queuename``) are set
by the service, ``HADOOP_CONF_DIR``/``YARN_CONF_DIR`` point at the cluster's configuration and
``yarn_user`` becomes ``HADOOP_USER_NAME`` (clusters without Kerberos). The launch stays
*attached* (not ``detached``): a MapReduce driver usually waits for its job
(``waitForCompletion``), may run several jobs in a row and decides its exit code from their
outcome, so the client process is the job, as with ``hadoop jar``. But stopping that client
does not stop an application already running on YARN, so :meth:`MapReduceEngine.cancel` kills
it through the ResourceManager REST API (``PUT /ws/v1/cluster/apps/{id}/state``) before the
supervisor signals the client, and :meth:`MapReduceEngine.status` reads it from the RM. The
application id (``application_…``, what users see) comes from the client's output
(``Submitted application …`` / ``Running job: job_…``); the RM address is recorded in
``<workdir>/engine.json`` (no secrets) so cancel and status work from the workdir alone.

Progress is read back from ``<workdir>/stderr.log``, where the log4j2 configuration written
here makes ``org.apache.hadoop.mapreduce.Job`` print ``Running job: job_local…`` and
`` map 40% reduce 0%`` lines.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

from mrs_jobs.engines import yarn
from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineAdapter,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    Observation,
    RemoteStatus,
)
from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.paths import URL_RE, InputRoots, file_url_path
from mrs_jobs.engines.spark import is_secret_key

__all__ = [
    "CLASSPATH_JARS",
    "MapReduceEngine",
    "hadoop_jars",
    "jar_main_class",
    "parse_hadoop_log",
]

RUNJAR = "org.apache.hadoop.util.RunJar"
TMP_DIR = "tmp"
HADOOP_TMP_DIR = "hadoop-tmp"
CONF_DIR = "conf"
LOG4J_FILE = "log4j2.properties"
SITE_FILES = ("core-site.xml", "mapred-site.xml", "yarn-site.xml", "hdfs-site.xml")
STDERR_LOG = "stderr.log"
ENGINE_FILE = "engine.json"

# Jars of pyspark's jars/ the launch needs, by artifact name; the first two are required.
# hadoop-client-runtime shades Hadoop's own dependencies but still expects commons-logging
# (provided by jcl-over-slf4j) and an SLF4J binding (log4j-slf4j2-impl → log4j2).
CLASSPATH_JARS = (
    "hadoop-client-api",
    "hadoop-client-runtime",
    "jcl-over-slf4j",
    "slf4j-api",
    "log4j-api",
    "log4j-core",
    "log4j-slf4j2-impl",
    "log4j-1.2-api",
)
_REQUIRED_JARS = frozenset({"hadoop-client-api", "hadoop-client-runtime", "jcl-over-slf4j"})

# Configuration the service owns: the cluster's configuration decides where jobs run.
_RESERVED_ALWAYS = frozenset({"mapreduce.framework.name", "fs.defaultFS", "fs.default.name"})
_RESERVED_LOCAL = frozenset(
    {
        "hadoop.tmp.dir",
        "mapreduce.cluster.local.dir",
        "mapred.local.dir",
        "mapreduce.jobtracker.staging.root.dir",
        "mapreduce.jobtracker.system.dir",
    }
)

_REMOTE_SCHEMES = frozenset(
    {"abfs", "abfss", "gs", "hdfs", "http", "https", "obs", "oss", "s3", "s3a", "s3n", "viewfs"}
)
_URL_RE = URL_RE
_HEAP_RE = re.compile(r"^[1-9][0-9]{0,6}[kKmMgG]?$")
# Characters XML 1.0 cannot carry (and \r, which XML parsers turn into \n).
_XML_BAD_RE = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_XI_NS = "http://www.w3.org/2001/XInclude"
_MAX_MANIFEST = 1 << 20

LOG4J2_PROPERTIES = """\
# Written by mrs-jobs: Hadoop's job id and progress lines go to stderr, other Hadoop
# internals only from WARN up; the job's own loggers from INFO up.
status = error
name = mrs-jobs-mapreduce
appender.console.type = Console
appender.console.name = STDERR
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
rootLogger.level = info
rootLogger.appenderRef.stderr.ref = STDERR
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = warn
logger.job.name = org.apache.hadoop.mapreduce.Job
logger.job.level = info
logger.yarnclient.name = org.apache.hadoop.yarn.client.api.impl.YarnClientImpl
logger.yarnclient.level = info
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
logger.metrics.name = org.apache.hadoop.metrics2
logger.metrics.level = error
"""


# ------------------------------------------------------------------------------ helpers


def hadoop_jars(jars_dir: Path) -> dict[str, Path]:
    """The :data:`CLASSPATH_JARS` found in ``jars_dir``: artifact name → newest matching jar."""
    found: dict[str, list[str]] = {}
    try:
        names = os.listdir(jars_dir)
    except OSError:
        return {}
    for name in names:
        for artifact in CLASSPATH_JARS:
            if re.fullmatch(re.escape(artifact) + r"-\d[\w.+-]*\.jar", name):
                found.setdefault(artifact, []).append(name)
    return {a: jars_dir / max(ns, key=_version_key) for a, ns in found.items()}


def _version_key(name: str) -> list[tuple[int, str]]:
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.-]", name)]


def jar_main_class(jar: Path) -> str | None:
    """The ``Main-Class`` of a jar's manifest (None when absent); raises EngineRefused when
    the file is not a readable jar."""
    try:
        with zipfile.ZipFile(jar) as zf:
            try:
                info = zf.getinfo("META-INF/MANIFEST.MF")
            except KeyError:
                return None
            if info.file_size > _MAX_MANIFEST:
                return None
            text = zf.read(info).decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError, EOFError) as exc:
        raise EngineRefused(f"the job jar {jar} is not a readable jar file") from exc
    # Manifest lines wrap at 72 bytes; a continuation line starts with one space.
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw.startswith(" ") and lines:
            lines[-1] += raw[1:]
        elif not raw:
            break  # the main section ends at the first blank line
        else:
            lines.append(raw)
    for line in lines:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "main-class" and value.strip():
            return value.strip()
    return None


def _local_jar(value: str) -> str:
    """The local path of the job jar argument, or EngineRefused for remote/unknown URLs."""
    m = _URL_RE.match(value)
    if m:
        scheme = m.group(1).lower()
        if scheme == "file":
            return file_url_path(value)
        if scheme == "hdfs":
            raise EngineRefused(
                "hdfs:// job jars need a Hadoop client with HDFS access, which this service "
                "does not have: give the job jar as a local path (hdfs:// input and output "
                "paths in the job's own arguments are passed through)"
            )
        if scheme in _REMOTE_SCHEMES:
            raise EngineRefused(
                f"{scheme}:// job jars are not supported: give the job jar as a local path"
            )
        raise EngineRefused(f"unsupported URL scheme {scheme}:// in {value}")
    if value.startswith("file:"):
        return value[len("file:") :]
    return value


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by the owner only, whatever mode an older copy had."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def site_xml(include: Path | None, properties: list[tuple[str, str]]) -> bytes:
    """A Hadoop configuration file: an optional XInclude, then the properties in order."""
    root = ET.Element("configuration")
    if include is not None:
        root.set("xmlns:xi", _XI_NS)
        inc = ET.SubElement(root, "xi:include", href=str(include))
        ET.SubElement(inc, "xi:fallback")
    for key, value in properties:
        prop = ET.SubElement(root, "property")
        ET.SubElement(prop, "name").text = key
        ET.SubElement(prop, "value").text = value
    ET.indent(root)
    text = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
    return (text + "\n").encode("utf-8")


def _classpath_entry(path: Path, what: str) -> str:
    text = str(path)
    if ":" in text:
        raise EngineRefused(f"the {what} path must not contain ':' (Java class path): {text}")
    return text


# -------------------------------------------------------------------------- log parsing

_JOB_ID_RE = re.compile(r"\b(job_(?:local)?\d+_\d+)\b")
_PROGRESS_RE = re.compile(r"\bmap (\d{1,3})% reduce (\d{1,3})%")
_TRACK_RE = re.compile(r"The url to track the job: (https?://\S+)")
_SHIM_PREFIX = "[mrs-jobs] "
_WINDOW = 64 * 1024


def parse_hadoop_log(text: str) -> tuple[str | None, float | None, str | None]:
    """(latest job id, its progress in percent capped at 99, its tracking URL) from Hadoop
    client output. Progress is (map% + reduce%) / 2 of the last progress line printed after
    the latest job id; a new job id resets it. Lines the supervisor itself wrote are skipped.
    """
    job_id: str | None = None
    progress: float | None = None
    url: str | None = None
    pending_url: str | None = None
    for line in text.splitlines():
        if line.startswith(_SHIM_PREFIX):
            continue
        m = _TRACK_RE.search(line)
        if m:
            pending_url = m.group(1)  # printed just before "Running job: <id>"
            continue
        m = _PROGRESS_RE.search(line)
        if m:
            if job_id is not None:
                done = (min(100, int(m.group(1))) + min(100, int(m.group(2)))) / 2
                progress = min(99.0, float(done))
            continue
        m = _JOB_ID_RE.search(line)
        if m and m.group(1) != job_id:
            job_id = m.group(1)
            progress = None
            url, pending_url = pending_url, None
    if job_id is not None and job_id.startswith("job_local"):
        url = None  # the local runner prints a placeholder (http://localhost:8080/)
    return job_id, progress, url


def _read_head_tail(path: Path) -> str:
    """The first and last 64 KiB of a log (the whole log when smaller), as text."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= 2 * _WINDOW:
            data = f.read(2 * _WINDOW)
        else:
            head = f.read(_WINDOW)
            head = head[: head.rfind(b"\n") + 1]
            f.seek(size - _WINDOW)
            tail = f.read(_WINDOW)
            tail = tail[tail.find(b"\n") + 1 :]
            data = head + tail
    return data.decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------ engine


class MapReduceEngine(EngineAdapter):
    """Runs ``MapReduce`` jobs (``hadoop jar`` semantics) with Hadoop's ``RunJar``.

    MRS arguments: the job jar (a local path or ``file://`` URL, checked against the cluster's
    input roots after resolving symlinks), then — unless the jar's manifest names a
    ``Main-Class`` — its main class or program name, then the program's arguments, all passed
    verbatim. ``cluster.extra`` may set ``mapreduce_heap`` (``-Xmx``, default ``1g``) and
    ``hadoop_conf_dir`` (run against that Hadoop configuration instead of the local runner).
    """

    job_types = frozenset({"MapReduce"})

    def __init__(self, java_home: str | None = None, spark_home: str | None = None) -> None:
        # Service-wide settings; a ClusterSpec's own values take precedence.
        self.java_home = java_home
        self.spark_home = spark_home

    # ------------------------------------------------------------------ build

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        self.refuse_other_types(job, "MapReduce")
        args = list(job.arguments)
        if any("\x00" in a for a in args):
            raise EngineRefused("arguments must not contain NUL characters")
        if not args or not args[0].strip():
            raise EngineRefused(
                "MapReduce needs the job jar as its first argument, then its main class or "
                "program name and arguments"
            )
        notes: list[str] = []

        # The job jar.
        shown = args[0]
        local = _local_jar(shown)
        if not local.lower().endswith(".jar"):
            raise EngineRefused(
                f"MapReduce needs the job jar (a .jar file) as its first argument, not {shown}"
            )
        jar = Path(local).expanduser().resolve()
        InputRoots.of(cluster, workdir).check(jar, local, "job jar")
        if not jar.is_file():
            raise EngineRefused(f"job jar not found: {local}")
        main_class = jar_main_class(jar)
        if main_class is None and len(args) < 2:
            raise EngineRefused(
                "the job jar has no Main-Class in its manifest: give the main class after the jar"
            )

        # Java and the Hadoop client jars.
        java_home = find_java_home(cluster.java_home or self.java_home)
        if java_home is None:
            raise EngineRefused("Java was not found: set java_home or JAVA_HOME")
        spark_home = find_spark_home(cluster.spark_home or self.spark_home)
        if spark_home is None:
            raise EngineRefused(
                "the Hadoop client jars were not found: set spark_home or install pyspark"
            )
        jars_dir = Path(spark_home) / "jars"
        jars = hadoop_jars(jars_dir)
        missing = sorted(_REQUIRED_JARS - set(jars))
        if missing:
            raise EngineRefused(
                f"the Hadoop client jars were not found in {jars_dir}: missing "
                + ", ".join(missing)
            )

        heap = str(cluster.extra.get("mapreduce_heap", "1g")).strip()
        if not _HEAP_RE.match(heap):
            raise EngineRefused(f"invalid mapreduce_heap for this cluster: {heap!r}")

        on_yarn = cluster.kind == "yarn"
        hadoop_conf: Path | None = None
        conf_setting = cluster.extra.get("hadoop_conf_dir")
        if on_yarn and not conf_setting:
            raise EngineRefused(
                "this YARN cluster has no hadoop_conf_dir (the directory of its yarn-site.xml, "
                "core-site.xml...)"
            )
        if conf_setting:
            hadoop_conf = Path(conf_setting).expanduser().resolve()
            if not hadoop_conf.is_dir():
                raise EngineRefused(
                    f"hadoop_conf_dir of this cluster is not a directory: {conf_setting}"
                )

        # Directories.
        workdir = Path(workdir).resolve()
        tmp = workdir / TMP_DIR
        hadoop_tmp = workdir / HADOOP_TMP_DIR
        conf_dir = workdir / CONF_DIR
        workdir.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(exist_ok=True)
        _private_dir(hadoop_tmp)
        _private_dir(conf_dir)

        # Hadoop configuration: the service's settings, then the job's properties.
        ours: list[tuple[str, str]] = []
        reserved = set(_RESERVED_ALWAYS)
        rm_url: str | None = None
        yarn_user = (cluster.extra.get("yarn_user") or "").strip() or None
        if on_yarn:
            rm_url = yarn.rm_url_of(cluster)  # a kill must reach the RM: refuse when unknown
            ours = [("mapreduce.framework.name", "yarn")]
            queue = (cluster.extra.get("yarn_queue") or "").strip()
            if queue:
                reserved.add("mapreduce.job.queuename")
                ours.append(("mapreduce.job.queuename", queue))
            notes.append(
                f"MapReduce runs on YARN (configuration {hadoop_conf}, ResourceManager {rm_url}"
                + (f", queue {queue}" if queue else "")
                + "); a kill goes through the ResourceManager"
            )
        elif hadoop_conf is None:
            reserved |= _RESERVED_LOCAL
            ours = [
                ("mapreduce.framework.name", "local"),
                ("fs.defaultFS", "file:///"),
                ("hadoop.tmp.dir", str(hadoop_tmp)),
                ("mapreduce.cluster.local.dir", str(hadoop_tmp / "mapred" / "local")),
                ("mapreduce.jobtracker.staging.root.dir", str(hadoop_tmp / "mapred" / "staging")),
                ("mapreduce.jobtracker.system.dir", str(hadoop_tmp / "mapred" / "system")),
            ]
            notes.append("MapReduce runs in Hadoop's local job runner (file:/// by default)")
        else:
            notes.append(
                f"MapReduce uses the Hadoop configuration in {hadoop_conf} "
                "(mapreduce.framework.name and fs.defaultFS as configured there)"
            )
        user: list[tuple[str, str]] = []
        for key, value in job.properties.items():
            if not key.strip() or _XML_BAD_RE.search(key):
                raise EngineRefused(f"invalid property name: {key!r}")
            if _XML_BAD_RE.search(value):
                raise EngineRefused(f"property {key} contains a control character")
            if key in reserved:
                notes.append(f"ignored property {key}: set by the service")
                continue
            if is_secret_key(key):
                notes.append(
                    f"secret property {key} passed in the job's private Hadoop configuration "
                    "file, not on the command line"
                )
            user.append((key, value))
        if user:
            notes.append(
                f"{len(user)} job properties passed as Hadoop configuration ({CONF_DIR}/*-site.xml)"
            )
        for name in SITE_FILES:
            include = hadoop_conf / name if hadoop_conf is not None else None
            _write_private(conf_dir / name, site_xml(include, ours + user))
        log4j = conf_dir / LOG4J_FILE
        _write_private(log4j, LOG4J2_PROPERTIES.encode("utf-8"))

        classpath = [_classpath_entry(conf_dir, "job working directory")]
        if hadoop_conf is not None:
            classpath.append(_classpath_entry(hadoop_conf, "hadoop_conf_dir"))
        classpath += [_classpath_entry(jars[a], "Hadoop jar") for a in CLASSPATH_JARS if a in jars]

        argv = [
            str(Path(java_home) / "bin" / "java"),
            f"-Xmx{heap}",
            "-XX:-UsePerfData",
            f"-Djava.io.tmpdir={tmp}",
            f"-Dhadoop.tmp.dir={hadoop_tmp}",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            ":".join(classpath),
            RUNJAR,
            str(jar),
            *args[1:],
        ]

        java_bin = str(Path(java_home) / "bin")
        env = {
            "PATH": ":".join([java_bin] + [p for p in _DEFAULT_PATH.split(":") if p != java_bin]),
            "LANG": "C.UTF-8",
            "HOME": str(workdir),
            "JAVA_HOME": java_home,
            "TMPDIR": str(tmp),
        }
        if hadoop_conf is not None:
            env["HADOOP_CONF_DIR"] = str(hadoop_conf)
        info: dict[str, str | None] = {"engine": "mapreduce", "kind": "local"}
        if on_yarn:
            env.update(yarn.submit_env(cluster))
            if yarn_user:
                env["HADOOP_USER_NAME"] = yarn_user
            info = {"engine": "mapreduce", "kind": "yarn", "rm_url": rm_url, "yarn_user": yarn_user}
        (workdir / ENGINE_FILE).write_text(json.dumps(info) + "\n", encoding="utf-8")
        return LaunchSpec(argv=argv, env=env, cwd=str(workdir), notes=notes)

    # ---------------------------------------------------------------- observe

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        try:
            text = _read_head_tail(Path(workdir) / STDERR_LOG)
            job_id, progress, url = parse_hadoop_log(text)
            if job_id is not None and _engine_info(Path(workdir)).get("kind") == "yarn":
                job_id = yarn.app_id_from_output(text) or job_id  # application_… on YARN
        except Exception:  # observe() must never raise
            return Observation()
        if job_id is None:
            return Observation()
        return Observation(app_id=job_id, tracking_url=url, progress=progress, running=True)

    # ------------------------------------------------------------ YARN hooks

    def cancel(
        self, job: JobSpec, workdir: Path, launch: LaunchSpec, cluster: ClusterSpec | None = None
    ) -> bool:
        """Kill the job's YARN application through the RM (stopping the client alone would
        leave it running); False when not on YARN or no application was submitted yet."""
        try:
            client, app_id = self._yarn_app(Path(workdir), None, cluster)
            return client is not None and app_id is not None and client.kill(app_id)
        except Exception:  # the supervisor signals the client whatever happens here
            return False

    def status(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        launcher_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> RemoteStatus | None:
        """The job's YARN application as the RM reports it (None off YARN or unreachable)."""
        try:
            client, app = self._yarn_app(Path(workdir), app_id, cluster)
            if client is None or app is None:
                return None
            return client.status(app)
        except Exception:  # status() must never raise
            return None

    @staticmethod
    def _yarn_app(
        workdir: Path, app_id: str | None, cluster: ClusterSpec | None = None
    ) -> tuple[yarn.YarnClient | None, str | None]:
        """The RM client and application id of a job on YARN. The RM address comes from the
        cluster as configured when it is known (engine.json may be written by the job user)."""
        info = _engine_info(workdir)
        if info.get("kind") != "yarn" or not info.get("rm_url"):
            return None, None
        if cluster is not None and cluster.kind == "yarn":
            info["rm_url"] = yarn.rm_url_of(cluster)
            info["yarn_user"] = (cluster.extra.get("yarn_user") or "").strip()
        client = yarn.YarnClient(str(info["rm_url"]), user=info.get("yarn_user") or None)
        if app_id:
            app_id = yarn.app_id_from_output(f"Running job: {app_id}") or app_id
        else:
            app_id = yarn.app_id_from_output(_read_head_tail(workdir / STDERR_LOG))
        return client, app_id


def _engine_info(workdir: Path) -> dict:
    """What build() recorded in ``engine.json`` ({} when absent or unreadable)."""
    try:
        data = json.loads((workdir / ENGINE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
