"""Hadoop without a Hadoop distribution: the client jars in pyspark's ``jars/``, job jars,
``*-site.xml`` files, and the job id and progress a Hadoop client prints.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

from mrs_jobs.engines.base import EngineRefused
from mrs_jobs.engines.paths import URL_RE, file_url_path
from mrs_jobs.fsutil import open_regular

__all__ = [
    "CLASSPATH_JARS",
    "LOG4J2_PROPERTIES",
    "REQUIRED_JARS",
    "classpath_entry",
    "hadoop_jars",
    "jar_main_class",
    "local_jar",
    "parse_hadoop_log",
    "read_head_tail",
    "site_xml",
]

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
REQUIRED_JARS = frozenset({"hadoop-client-api", "hadoop-client-runtime", "jcl-over-slf4j"})

_REMOTE_SCHEMES = frozenset(
    {"abfs", "abfss", "gs", "hdfs", "http", "https", "obs", "oss", "s3", "s3a", "s3n", "viewfs"}
)
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


def local_jar(value: str) -> str:
    """The local path of the job jar argument, or EngineRefused for remote/unknown URLs."""
    m = URL_RE.match(value)
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


def classpath_entry(path: Path, what: str) -> str:
    text = str(path)
    if ":" in text:
        raise EngineRefused(f"the {what} path must not contain ':' (Java class path): {text}")
    return text


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


def read_head_tail(path: Path) -> str:
    """The first and last 64 KiB of a log (the whole log when smaller), as text; "" when it
    is missing or not a regular file."""
    fd = open_regular(path)
    if fd is None:
        return ""
    with os.fdopen(fd, "rb") as f:
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
