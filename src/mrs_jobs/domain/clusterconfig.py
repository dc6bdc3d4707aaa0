"""What a cluster is: its kind and the settings that kind takes, checked when it is saved.

A cluster is a configuration record pointing at where its jobs run: this machine (``local``)
or a distributed engine the user already runs. mrs-jobs never schedules across machines
itself; it submits to that engine and follows the application there.

A mistake is refused when the cluster is created or updated (with the key and what it must
be), never discovered by the first job. Keys that are not settings of any kind are refused too,
except Hadoop-style properties (``fs.*``), which are object-store defaults for the jobs.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from mrs_jobs.errors import InvalidParameter

__all__ = [
    "FAILED_JOB_STATES",
    "KINDS",
    "PRESTO_DIALECTS",
    "ClusterSettings",
    "FlinkRemoteSettings",
    "K8sSettings",
    "LocalSettings",
    "StandaloneSettings",
    "YarnSettings",
    "load_config_file",
    "settings_of",
    "validate_cluster_config",
]

KINDS = ("local", "spark-standalone", "yarn", "k8s", "flink-remote")
#: The job states a cluster may end a failed application in (``failed_job_state``).
FAILED_JOB_STATES = ("FINISHED", "FAILED")
#: The client protocol's header family a Presto/Trino coordinator speaks (``presto_dialect``).
PRESTO_DIALECTS = ("trino", "presto")
_PRESTO_NAME_RE = re.compile(r"^([A-Za-z0-9_.@-]{1,128})?$")

_URL_RE = re.compile(r"^https?://[A-Za-z0-9._\-\[\]:]+(:\d{1,5})?(/[^\s]*)?$")
_HOSTPORT_RE = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
_HEAP_RE = re.compile(r"^[1-9][0-9]{0,6}[kKmMgG]?$")
_LOCAL_RE = re.compile(r"^local(\[(\d+|\*)\])?$")
_STANDALONE_RE = re.compile(r"^spark://[A-Za-z0-9._-]+:\d{1,5}(,[A-Za-z0-9._-]+:\d{1,5})*$")
_K8S_RE = re.compile(r"^k8s://https?://[A-Za-z0-9._\-\[\]:]+(:\d{1,5})?/?$")
_DNS1123_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class ClusterSettings:
    """The settings every kind takes, typed; engines read these, never the stored dict.

    Unset settings keep their defaults; an engine's own default (a service-wide home) applies
    where a field is empty. ``object_store`` holds the ``fs.*`` object-store defaults.
    """

    kind: ClassVar[str] = "local"
    # Settings a cluster of the kind must have (with what they are), checked by settings_of.
    required: ClassVar[dict[str, str]] = {}
    spark_master: str = ""
    input_roots: tuple[str, ...] = ()
    output_roots: tuple[str, ...] = ()
    java_home: str = ""
    spark_home: str = ""
    pyspark_python: str = ""
    hadoop_home: str = ""
    libhdfs_dir: str = ""
    hadoop_conf_dir: str = ""
    mapreduce_heap: str = "1g"
    distcp_python: str = ""
    distcp_max_maps: int | None = None
    sql_thrift_endpoint: str = ""
    sql_driver_memory: str = ""
    # A Presto/Trino coordinator for the SQL execution API's sql_type presto: host:port (plain
    # HTTP) or an http(s):// URL, kept as a URL without a trailing "/". Its client REST
    # protocol speaks X-Trino-* headers (presto_dialect trino) or X-Presto-* (presto).
    presto_coordinator: str = ""
    presto_dialect: str = "trino"
    presto_user: str = ""
    presto_catalog: str = ""
    presto_schema: str = ""
    # A file holding the password for HTTP basic authentication (HTTPS coordinators only):
    # read when a statement is launched, handed to its runner in its 0600 sql.json only.
    presto_password_file: str = ""
    # The CA certificate(s) (PEM) an https:// coordinator's certificate is checked against;
    # unset: the public CAs httpx trusts.
    presto_ca_file: str = ""
    flink_home: str = ""
    flink_python: str = ""
    flink_target: str = "local"
    flink_jobmanager: str = ""
    run_as_user: str = ""
    # Process limits stay text: a number or "unlimited", read by the supervisor's limits.
    limit_address_space_mb: str = ""
    limit_cpu_seconds: str = ""
    limit_open_files: str = ""
    limit_processes: str = ""
    tags: Any = None
    # How an application that failed after it ran ends: FINISHED (MRS: job_result FAILED) or
    # FAILED (job_state FAILED too, for clients that read job_state only).
    failed_job_state: str = "FINISHED"
    # Retention of ended jobs (supervisor/retention.py): days after the end, and how many of
    # the newest ended jobs to keep; None = the service-wide default, 0 = keep forever.
    retention_days: int | None = None
    retention_max_jobs: int | None = None
    # Owner scope (services/ownership.py): kill and delete only by the submitting user, unless
    # the caller's policy allows mrs:job:stopAny / mrs:job:deleteAny.
    owner_scope: bool = False
    object_store: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """The rules a set value must keep; engines trust the typed values."""
        if not _HEAP_RE.match(self.mapreduce_heap):
            raise _bad("mapreduce_heap", "must be a JVM heap size such as 512m or 2g")
        jm = self.flink_jobmanager
        if jm.startswith("https://"):
            raise _bad("flink_jobmanager", "TLS to the jobmanager's REST API is not supported yet")
        jm = jm.removeprefix("http://").rstrip("/")
        if jm and not _HOSTPORT_RE.match(jm):
            raise _bad("flink_jobmanager", "must be host:port (the REST address of the jobmanager)")
        object.__setattr__(self, "flink_jobmanager", jm)
        if self.flink_target == "remote" and not jm:
            raise _bad("flink_jobmanager", "is required with flink_target remote")
        if self.failed_job_state not in FAILED_JOB_STATES:
            raise _bad("failed_job_state", f"must be {' or '.join(FAILED_JOB_STATES)}")
        self._check_presto()

    def _check_presto(self) -> None:
        coordinator = self.presto_coordinator.rstrip("/")
        if coordinator and "://" not in coordinator:
            if not _HOSTPORT_RE.match(coordinator):
                raise _bad("presto_coordinator", "must be host:port or an http(s):// URL")
            coordinator = f"http://{coordinator}"
        if coordinator and not _URL_RE.match(coordinator):
            raise _bad("presto_coordinator", "must be host:port or an http(s):// URL")
        object.__setattr__(self, "presto_coordinator", coordinator)
        if self.presto_dialect not in PRESTO_DIALECTS:
            raise _bad("presto_dialect", f"must be {' or '.join(PRESTO_DIALECTS)}")
        for key in ("presto_user", "presto_catalog", "presto_schema"):
            if not _PRESTO_NAME_RE.match(getattr(self, key)):
                raise _bad(key, "must be 1-128 letters, digits or _ . @ -")
        if self.presto_schema and not self.presto_catalog:
            raise _bad("presto_schema", "needs presto_catalog (a schema is named in a catalog)")
        if self.presto_password_file:
            if not PurePosixPath(self.presto_password_file).is_absolute():
                raise _bad("presto_password_file", "must be an absolute path")
            if not coordinator.startswith("https://"):
                raise _bad("presto_password_file", "needs an https:// presto_coordinator")
        if self.presto_ca_file and not PurePosixPath(self.presto_ca_file).is_absolute():
            raise _bad("presto_ca_file", "must be an absolute path")


@dataclass(frozen=True)
class LocalSettings(ClusterSettings):
    kind: ClassVar[str] = "local"


@dataclass(frozen=True)
class FlinkRemoteSettings(ClusterSettings):
    kind: ClassVar[str] = "flink-remote"
    required: ClassVar[dict[str, str]] = {"flink_jobmanager": "the REST address of the jobmanager"}


@dataclass(frozen=True)
class StandaloneSettings(ClusterSettings):
    kind: ClassVar[str] = "spark-standalone"
    spark_rest_url: str = ""
    spark_ui_url: str = ""
    spark_deploy_mode: str = ""


@dataclass(frozen=True)
class YarnSettings(ClusterSettings):
    kind: ClassVar[str] = "yarn"
    yarn_rm_url: str = ""
    yarn_queue: str = ""
    yarn_user: str = ""
    spark_deploy_mode: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.yarn_rm_url and not _URL_RE.match(self.yarn_rm_url):
            raise _bad("yarn_rm_url", "must be an http:// or https:// URL")


@dataclass(frozen=True)
class K8sSettings(ClusterSettings):
    kind: ClassVar[str] = "k8s"
    required: ClassVar[dict[str, str]] = {"k8s_image": "the Spark container image"}
    k8s_namespace: str = "default"
    k8s_image: str = ""
    k8s_service_account: str = ""
    k8s_api_url: str = ""
    k8s_token_file: str = ""
    k8s_ca_file: str = ""
    spark_deploy_mode: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _DNS1123_RE.match(self.k8s_namespace):
            raise _bad("k8s_namespace", "must be a DNS-1123 label")


SETTINGS: dict[str, type[ClusterSettings]] = {
    m.kind: m
    for m in (LocalSettings, StandaloneSettings, YarnSettings, K8sSettings, FlinkRemoteSettings)
}
_COMMON = frozenset(f.name for f in fields(ClusterSettings)) - {"object_store"}
_BY_KIND = {k: frozenset(f.name for f in fields(m)) - _COMMON for k, m in SETTINGS.items()}


def settings_of(kind: str, config: Mapping[str, Any]) -> ClusterSettings:
    """The typed settings of a cluster from its stored config, or InvalidParameter when a value
    breaks the rules of its model (at save, and for a stored config that no longer passes).
    Keys of other kinds are ignored."""
    model = SETTINGS.get(kind or "local", LocalSettings)
    names = {f.name: f for f in fields(model)}
    values: dict[str, Any] = {"object_store": {}}
    for key, value in config.items():
        if key.startswith("fs.") and value is not None and not isinstance(value, dict | list):
            values["object_store"][key] = str(value)
        elif key in names and key != "object_store" and value is not None:
            default = names[key].default
            if key == "tags":
                values[key] = value
            elif isinstance(default, tuple):
                values[key] = tuple(str(v) for v in value)
            elif key == "distcp_max_maps":
                values[key] = _positive(key, value)
            elif key in ("retention_days", "retention_max_jobs"):
                values[key] = _not_negative(key, value)
            elif key == "owner_scope":
                values[key] = _boolean(key, value)
            elif str(value).strip():
                values[key] = str(value).strip()
    for key, what in model.required.items():
        if key not in values:
            raise _bad(key, f"is required on a {model.kind} cluster ({what})")
    return model(**values)


def _positive(key: str, value: Any) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _bad(key, "must be a positive integer") from None
    if number < 1:
        raise _bad(key, "must be a positive integer")
    return number


def _boolean(key: str, value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise _bad(key, "must be true or false")


def _not_negative(key: str, value: Any) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _bad(key, "must be a whole number, 0 or more (0: keep forever)") from None
    if number < 0:
        raise _bad(key, "must be a whole number, 0 or more (0: keep forever)")
    return number


def _bad(key: str, what: str) -> InvalidParameter:
    return InvalidParameter(f"Invalid cluster setting {key}: {what}.")


def _text(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    return "" if value is None else str(value).strip()


def _absolute_file(config: dict[str, Any], key: str) -> None:
    value = _text(config, key)
    if value and not PurePosixPath(value).is_absolute():
        raise _bad(key, "must be an absolute path")


def validate_cluster_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config as stored (secrets are not settings: files only), or InvalidParameter."""
    if kind not in KINDS:
        raise InvalidParameter(f"Invalid cluster kind {kind!r}: must be one of {', '.join(KINDS)}.")
    if not isinstance(config, dict):
        raise InvalidParameter("Invalid cluster config: must be an object of settings.")
    allowed = _COMMON | _BY_KIND[kind]
    out: dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise InvalidParameter("Invalid cluster config: setting names must be strings.")
        if key not in allowed and not key.startswith("fs."):
            other = [k for k, keys in _BY_KIND.items() if key in keys]
            hint = f" (a setting of kind {other[0]})" if other else ""
            raise _bad(key, f"not a setting of a {kind} cluster{hint}")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # unset
        if key in ("input_roots", "output_roots"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _bad(key, "must be a list of absolute paths")
            if any(not PurePosixPath(v).is_absolute() for v in value):
                raise _bad(key, "must be a list of absolute paths")
        elif key == "tags":
            if not isinstance(value, dict | list):
                raise _bad(key, "must be an object or a list")
        elif isinstance(value, dict | list):
            raise _bad(key, "must be a single value")
        elif isinstance(value, str):
            value = value.strip()
        out[key] = value
    _check_kind(kind, out)
    settings_of(kind, out)  # the typed form engines read must build
    return out


def _check_kind(kind: str, config: dict[str, Any]) -> None:
    master = _text(config, "spark_master")
    for key in ("spark_rest_url", "spark_ui_url", "k8s_api_url"):
        if _text(config, key) and not _URL_RE.match(_text(config, key)):
            raise _bad(key, "must be an http:// or https:// URL")
    for key in ("hadoop_conf_dir", "k8s_token_file", "k8s_ca_file", "java_home", "spark_home"):
        _absolute_file(config, key)
    mode = _text(config, "spark_deploy_mode")
    if mode and mode not in ("client", "cluster"):
        raise _bad("spark_deploy_mode", "must be client or cluster")
    if kind == "local":
        if master and not _LOCAL_RE.match(master):
            raise _bad("spark_master", "must be local[N] on a local cluster")
    elif kind == "spark-standalone":
        if not _STANDALONE_RE.match(master):
            raise _bad("spark_master", "must be spark://host:port on a spark-standalone cluster")
    elif kind == "yarn":
        if master and master != "yarn":
            raise _bad("spark_master", "must be yarn (or unset) on a yarn cluster")
        if not _text(config, "hadoop_conf_dir"):
            raise _bad("hadoop_conf_dir", "is required on a yarn cluster")
        config["spark_master"] = "yarn"
    elif kind == "k8s":
        if not _K8S_RE.match(master):
            raise _bad("spark_master", "must be k8s://https://host:port on a k8s cluster")
        if mode == "client":
            raise _bad("spark_deploy_mode", "a k8s cluster always runs drivers in cluster mode")


def load_config_file(path: Path) -> dict[str, Any]:
    """A cluster config from a .json or .toml file (InvalidParameter when unreadable)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidParameter(f"Cannot read the cluster config {path}: {exc.strerror}.") from None
    try:
        if str(path).endswith(".toml"):
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"The cluster config {path} is not valid: {exc}.") from None
    if not isinstance(data, dict):
        raise InvalidParameter(f"The cluster config {path} must hold an object of settings.")
    return data
