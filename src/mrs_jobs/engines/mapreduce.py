"""The ``MapReduce`` engine: ``hadoop jar`` semantics on Hadoop's local runner, or on YARN.

pyspark's Hadoop client jars are enough to run ``org.apache.hadoop.util.RunJar`` (the class
behind ``hadoop jar``). The job jar is deliberately *not* on ``-cp``: RunJar loads it with its
``lib/*.jar`` in its own class loader; on the system class path its classes would be loaded by
a loader that cannot see those jars (``NoClassDefFoundError``).

Job properties go to every ``*-site.xml`` (each is loaded right after its ``*-default.xml``, so
a value only in ``core-site.xml`` would lose against ``mapred-default.xml``); the files are 0600
in the private workdir, so secrets never reach the command line. With ``hadoop_conf_dir`` each
file first XIncludes that directory's file of the same name (its ``final`` values still win).

On a ``yarn`` cluster the launch stays attached: a driver may run several jobs and decides its
exit code from them, so the client is the job, as with ``hadoop jar``. Stopping the client does
not stop a running YARN application, so ``cancel()`` kills it through the ResourceManager first;
the RM address is in ``engine.json`` (no secrets) so status and cancel work from the workdir.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.domain.clusterconfig import YarnSettings
from mrs_jobs.engines import yarn
from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    Observation,
    RemoteStatus,
    Usage,
)
from mrs_jobs.engines.hadoop import (
    CLASSPATH_JARS,
    LOG4J2_PROPERTIES,
    REQUIRED_JARS,
    classpath_entry,
    hadoop_jars,
    jar_main_class,
    local_jar,
    parse_hadoop_log,
    read_head_tail,
    site_xml,
)
from mrs_jobs.engines.kit import RemoteEngine, job_dirs, launch_env, require_java, require_spark
from mrs_jobs.engines.paths import InputRoots
from mrs_jobs.engines.spark import is_secret_key
from mrs_jobs.runtime import jobdir

__all__ = [
    "CLASSPATH_JARS",
    "RUNJAR",
    "SITE_FILES",
    "MapReduceEngine",
    "hadoop_jars",
    "jar_main_class",
    "parse_hadoop_log",
    "site_xml",
]

RUNJAR = "org.apache.hadoop.util.RunJar"
TMP_DIR = "tmp"
HADOOP_TMP_DIR = "hadoop-tmp"
CONF_DIR = "conf"
LOG4J_FILE = "log4j2.properties"
SITE_FILES = ("core-site.xml", "mapred-site.xml", "yarn-site.xml", "hdfs-site.xml")

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

# Characters XML 1.0 cannot carry (and \r, which XML parsers turn into \n).
_XML_BAD_RE = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")


def _job_jar(args: list[str], cluster: ClusterSpec, workdir: Path) -> Path:
    """The job jar (first argument), resolved and checked against the cluster's roots."""
    if any("\x00" in a for a in args):
        raise EngineRefused("arguments must not contain NUL characters")
    if not args or not args[0].strip():
        raise EngineRefused(
            "MapReduce needs the job jar as its first argument, then its main class or "
            "program name and arguments"
        )
    local = local_jar(args[0])
    if not local.lower().endswith(".jar"):
        raise EngineRefused(
            f"MapReduce needs the job jar (a .jar file) as its first argument, not {args[0]}"
        )
    jar = Path(local).expanduser().resolve()
    InputRoots.of(cluster, workdir).check(jar, local, "job jar")
    if not jar.is_file():
        raise EngineRefused(f"job jar not found: {local}")
    if jar_main_class(jar) is None and len(args) < 2:
        raise EngineRefused(
            "the job jar has no Main-Class in its manifest: give the main class after the jar"
        )
    return jar


def _client_jars(spark_home: str) -> dict[str, Path]:
    jars_dir = Path(spark_home) / "jars"
    jars = hadoop_jars(jars_dir)
    missing = sorted(REQUIRED_JARS - set(jars))
    if missing:
        raise EngineRefused(
            f"the Hadoop client jars were not found in {jars_dir}: missing " + ", ".join(missing)
        )
    return jars


def _hadoop_conf(cluster: ClusterSpec) -> Path | None:
    """The cluster's Hadoop configuration directory, if any (YARN requires one: submit_env)."""
    setting = cluster.settings.hadoop_conf_dir
    if not setting:
        return None
    conf = Path(setting).expanduser().resolve()
    if not conf.is_dir():
        raise EngineRefused(f"hadoop_conf_dir of this cluster is not a directory: {setting}")
    return conf


@dataclass
class _Conf:
    """The Hadoop configuration a job gets: the service's settings, then the job's."""

    ours: list[tuple[str, str]]
    reserved: set[str]
    rm_url: str | None = None


def _service_conf(
    cluster: ClusterSpec, hadoop_conf: Path | None, hadoop_tmp: Path, notes: list[str]
) -> _Conf:
    """Where the job runs: on YARN, in the local runner, or as ``hadoop_conf_dir`` says."""
    if cluster.kind == "yarn":
        conf = _Conf([("mapreduce.framework.name", "yarn")], set(_RESERVED_ALWAYS))
        conf.rm_url = yarn.rm_url_of(cluster)  # a kill must reach the RM: refuse when unknown
        queue = cluster.settings_as(YarnSettings).yarn_queue
        if queue:
            conf.reserved.add("mapreduce.job.queuename")
            conf.ours.append(("mapreduce.job.queuename", queue))
        notes.append(
            f"MapReduce runs on YARN (configuration {hadoop_conf}, ResourceManager {conf.rm_url}"
            + (f", queue {queue}" if queue else "")
            + "); a kill goes through the ResourceManager"
        )
        return conf
    if hadoop_conf is not None:
        notes.append(
            f"MapReduce uses the Hadoop configuration in {hadoop_conf} "
            "(mapreduce.framework.name and fs.defaultFS as configured there)"
        )
        return _Conf([], set(_RESERVED_ALWAYS))
    mapred = hadoop_tmp / "mapred"
    notes.append("MapReduce runs in Hadoop's local job runner (file:/// by default)")
    ours = [
        ("mapreduce.framework.name", "local"),
        ("fs.defaultFS", "file:///"),
        ("hadoop.tmp.dir", str(hadoop_tmp)),
        ("mapreduce.cluster.local.dir", str(mapred / "local")),
        ("mapreduce.jobtracker.staging.root.dir", str(mapred / "staging")),
        ("mapreduce.jobtracker.system.dir", str(mapred / "system")),
    ]
    return _Conf(ours, set(_RESERVED_ALWAYS | _RESERVED_LOCAL))


def _job_conf(job: JobSpec, reserved: set[str], notes: list[str]) -> list[tuple[str, str]]:
    """The job's properties as Hadoop configuration (secret ones too: the files are 0600)."""
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
    return user


@dataclass(frozen=True)
class _YarnApp:
    """A MapReduce job's application on YARN, as RemoteEngine asks it."""

    client: yarn.YarnClient
    workdir: Path

    def status(self, app_id: str | None, launcher_id: str | None) -> RemoteStatus | None:
        app = self._app_id(app_id)
        return None if app is None else self.client.status(app)

    def cancel(self) -> bool:
        app = self._app_id(None)
        return app is not None and self.client.kill(app)

    def logs(self, app_id: str | None) -> str | None:
        """The MapReduce application master's log (``syslog``: MRAppMaster logs there)."""
        app = self._app_id(app_id)
        return None if app is None else self.client.am_log(app, "syslog")

    def usage(self, app_id: str | None) -> Usage:
        """What YARN allocated to the job's application (the ``hadoop jar`` client here is
        not counted: the work ran in the cluster's containers)."""
        app = self._app_id(app_id)
        return Usage() if app is None else self.client.usage(app)

    def _app_id(self, recorded: str | None) -> str | None:
        if recorded:
            return yarn.app_id_from_output(f"Running job: {recorded}") or recorded
        return yarn.app_id_from_output(read_head_tail(self.workdir / jobdir.STDERR))


class MapReduceEngine(RemoteEngine):
    """Runs ``MapReduce`` jobs (``hadoop jar`` semantics) with Hadoop's ``RunJar``.

    MRS arguments: the job jar (checked against the input roots), then its main class unless the
    jar's manifest names one, then the program's arguments, passed verbatim.
    """

    job_types = frozenset({"MapReduce"})
    secret_files = (CONF_DIR, HADOOP_TMP_DIR)

    def __init__(self, java_home: str | None = None, spark_home: str | None = None) -> None:
        # Service-wide settings; a ClusterSpec's own values take precedence.
        self.java_home = java_home
        self.spark_home = spark_home

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        self.refuse_other_types(job, "MapReduce")
        args = list(job.arguments)
        jar = _job_jar(args, cluster, workdir)
        java_home = require_java(cluster, self.java_home)
        jars = _client_jars(
            require_spark(cluster, self.spark_home, "the Hadoop client jars were not found")
        )
        heap = cluster.settings.mapreduce_heap  # a JVM size, checked by the settings
        hadoop_conf = _hadoop_conf(cluster)
        workdir = job_dirs(workdir, TMP_DIR, private=(HADOOP_TMP_DIR, CONF_DIR))
        tmp, hadoop_tmp, conf_dir = workdir / TMP_DIR, workdir / HADOOP_TMP_DIR, workdir / CONF_DIR
        notes: list[str] = []
        conf = _service_conf(cluster, hadoop_conf, hadoop_tmp, notes)
        properties = conf.ours + _job_conf(job, conf.reserved, notes)
        for name in SITE_FILES:
            include = hadoop_conf / name if hadoop_conf is not None else None
            jobdir.write_private(conf_dir / name, site_xml(include, properties))
        log4j = conf_dir / LOG4J_FILE
        jobdir.write_private(log4j, LOG4J2_PROPERTIES)
        classpath = [classpath_entry(conf_dir, "job working directory")]
        if hadoop_conf is not None:
            classpath.append(classpath_entry(hadoop_conf, "hadoop_conf_dir"))
        classpath += [classpath_entry(jars[a], "Hadoop jar") for a in CLASSPATH_JARS if a in jars]
        argv = [
            str(Path(java_home) / "bin" / "java"),
            *(f"-Xmx{heap}", "-XX:-UsePerfData", f"-Djava.io.tmpdir={tmp}"),
            *(f"-Dhadoop.tmp.dir={hadoop_tmp}", f"-Dlog4j2.configurationFile={log4j}"),
            *("-cp", ":".join(classpath), RUNJAR, str(jar)),
            *args[1:],
        ]
        env = launch_env(workdir, tmp, java_home)
        if hadoop_conf is not None:
            env["HADOOP_CONF_DIR"] = str(hadoop_conf)
        record: dict[str, str | None] = {"kind": "local"}
        if cluster.kind == "yarn":
            env.update(yarn.submit_env(cluster))
            yarn_user = cluster.settings_as(YarnSettings).yarn_user or None
            if yarn_user:
                env["HADOOP_USER_NAME"] = yarn_user
            record = {"kind": "yarn", "rm_url": conf.rm_url, "yarn_user": yarn_user}
        jobdir.write_engine_record(workdir, "mapreduce", **record)
        return LaunchSpec(argv=argv, env=env, cwd=str(workdir), notes=notes)

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        text = read_head_tail(Path(workdir) / jobdir.STDERR)
        job_id, progress, url = parse_hadoop_log(text)
        if job_id is None:
            return Observation()
        if jobdir.read_engine_record(Path(workdir)).get("kind") == "yarn":
            job_id = yarn.app_id_from_output(text) or job_id  # application_… on YARN
        return Observation(app_id=job_id, tracking_url=url, progress=progress, running=True)

    def application(
        self, job: JobSpec, workdir: Path, launch: LaunchSpec, cluster: ClusterSpec | None
    ) -> _YarnApp | None:
        """The job's YARN application (stopping the client alone would leave it running);
        None off YARN. The RM address comes from the cluster as configured when it is known
        (engine.json may be written by the job's user)."""
        info = jobdir.read_engine_record(workdir)
        if info.get("kind") != "yarn" or not info.get("rm_url"):
            return None
        if cluster is not None and cluster.kind == "yarn":
            info["rm_url"] = yarn.rm_url_of(cluster)
            info["yarn_user"] = cluster.settings_as(YarnSettings).yarn_user
        client = yarn.YarnClient(str(info["rm_url"]), user=info.get("yarn_user") or None)
        return _YarnApp(client, workdir)
