"""spark-submit's command line: parsing a job's MRS arguments, checking its file arguments.

Kept apart from the engine so the rules a user's arguments must follow (known options only,
files under the cluster's input roots, no percent-escapes) can be read in one place.
"""

from __future__ import annotations

import re
from pathlib import Path

from mrs_jobs.engines.base import EngineRefused
from mrs_jobs.engines.kit import read_option
from mrs_jobs.engines.paths import URL_RE, InputRoots, file_url_path

__all__ = [
    "FILE_LIST_OPTIONS",
    "FILE_OPTIONS",
    "FLAG_OPTIONS",
    "LOCAL_RESERVED_CONF",
    "RESERVED_CONF",
    "VALUE_OPTIONS",
    "is_cluster_local",
    "is_local_master",
    "java_opt_path",
    "localize",
    "localize_list",
    "parse_submit_arguments",
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
# Every spelling → the long one (spark-submit's own short spellings: -c, -v).
_VALUES = {name: name for name in VALUE_OPTIONS} | {"-c": "--conf"}
_FLAGS = {name: name for name in FLAG_OPTIONS} | {"-v": "--verbose"}
# Options whose value is a comma-separated list of files / a single file.
FILE_LIST_OPTIONS = frozenset({"--archives", "--files", "--jars", "--py-files"})
FILE_OPTIONS = frozenset({"--keytab", "--properties-file"})

# Configuration the service owns: a user's value would break log capture or observation.
RESERVED_CONF = frozenset(
    {
        "spark.driver.defaultJavaOptions",
        "spark.eventLog.dir",
        "spark.eventLog.enabled",
        "spark.master",
        "spark.submit.deployMode",
        "spark.ui.enabled",
        "spark.ui.killEnabled",  # the UI's kill links stay off: others can reach the UI
        "spark.ui.port",
        # What keeps a cluster-mode submission detached and its driver findable.
        "spark.kubernetes.driver.pod.name",
        "spark.kubernetes.submission.waitAppCompletion",
        "spark.master.rest.enabled",
        "spark.standalone.submit.waitAppCompletion",
        "spark.yarn.submit.waitAppCompletion",
    }
)

# Owned by the service for local masters only: their driver's RPC and block-transfer ports are
# on this host's loopback, so they authenticate (Spark makes a secret per application).
LOCAL_RESERVED_CONF = frozenset({"spark.authenticate"})


def is_local_master(master: str) -> bool:
    """``local``, ``local[N]``, ``local[*]``, ``local[N,F]``: where Spark makes the secret of
    ``spark.authenticate`` itself (other masters need one configured)."""
    return master == "local" or master.startswith("local[")


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
_URL_RE = URL_RE


def parse_submit_arguments(
    arguments: list[str],
) -> tuple[list[tuple[str, str | None]], str | None, list[str]]:
    """Split MRS SparkSubmit arguments into (options, application, application arguments).

    Options are returned in order as ``(name, value)`` with ``--opt=value`` unfolded and short
    aliases (``-c``, ``-v``) spelled out; flags have value ``None``. The first argument that
    does not start with ``-`` is the application and everything after it is passed verbatim.
    Raises :class:`EngineRefused` on an unknown option, a missing value or a NUL character.
    """
    if any("\x00" in a for a in arguments):
        raise EngineRefused("arguments must not contain NUL characters")
    options: list[tuple[str, str | None]] = []
    i = 0
    while i < len(arguments):
        if not arguments[i].startswith("-"):
            return options, arguments[i], list(arguments[i + 1 :])
        found = read_option(arguments, i, "spark-submit", _VALUES, _FLAGS)
        if found is None:
            raise EngineRefused(f"unknown spark-submit option: {arguments[i].partition('=')[0]}")
        i, option = found
        options.append(option)
    return options, None, []


def java_opt_path(option: str, path: Path) -> str:
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
            return file_url_path(value), ""
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


def localize(value: str, roots: InputRoots, what: str, *, must_exist: bool) -> str:
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


def localize_list(value: str, roots: InputRoots, what: str, *, on_cluster: bool = False) -> str:
    """Each entry checked as by :func:`localize`; with ``on_cluster`` (the driver runs on a
    cluster), ``local:`` entries name files on the cluster's nodes or image and pass as they
    are."""
    out = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        path, hash_, alias = item.partition("#")  # --archives/--files "file#alias"
        if on_cluster and is_cluster_local(path):
            out.append(item)
            continue
        out.append(localize(path, roots, what, must_exist=False) + hash_ + alias)
    return ",".join(out)


def is_cluster_local(value: str) -> bool:
    """A ``local:`` URL: a file already on every node (or in the image), not on this host."""
    return value[:6].lower() == "local:"
