"""Cluster reads for the MRS v1.1 ``cluster_infos`` API (list with MRS's filters and paging, show).

Every cluster here is always ``running``: it is a configuration record, not machines that
start and stop. Filters that name another state therefore match nothing.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.errors import ClusterNotFound, InvalidParameter
from mrs_jobs.services.context import Caller
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store.tenants import Cluster, get_cluster, list_clusters

__all__ = ["CLUSTER_STATE", "ClusterPage", "ClusterQuery", "ClusterService", "ClusterView"]

CLUSTER_STATE = "running"
# MRS's clusterState filter values; "existing" means every cluster that is not deleted.
_STATES = frozenset(
    {
        "existing",
        "history",
        "starting",
        "running",
        "terminated",
        "failed",
        "abnormal",
        "terminating",
        "frozen",
        "scaling-out",
        "scaling-in",
    }
)
_MATCHING_STATES = frozenset({"existing", CLUSTER_STATE})
_MAX_PAGE_SIZE = 2_147_483_646
_DEFAULT_PAGE_SIZE = 10
_DEFAULT_ENTERPRISE_PROJECT = "0"


@dataclass(frozen=True)
class ClusterQuery:
    """MRS v1.1 list parameters (all strings on the wire, as the SDK sends them)."""

    page_size: int = _DEFAULT_PAGE_SIZE
    current_page: int = 1
    cluster_name: str | None = None
    cluster_state: str | None = None
    tags: tuple[tuple[str, str | None], ...] = ()
    enterprise_project_id: str | None = None

    @classmethod
    def parse(cls, params: dict[str, str]) -> ClusterQuery:
        def number(name: str, default: int) -> int:
            raw = params.get(name)
            if raw is None or raw == "":
                return default
            if not re.fullmatch(r"\d{1,10}", raw.strip()):
                raise InvalidParameter(f"Invalid request: {name} must be a positive integer.")
            value = int(raw)
            if value > _MAX_PAGE_SIZE:
                raise InvalidParameter(f"Invalid request: {name} must be at most {_MAX_PAGE_SIZE}.")
            return value

        size = number("pageSize", _DEFAULT_PAGE_SIZE)
        if size < 1:
            raise InvalidParameter("Invalid request: pageSize must be at least 1.")
        page = max(1, number("currentPage", 1))  # 0 reads as the first page, as in job lists
        state = params.get("clusterState") or None
        if state is not None and state not in _STATES:
            raise InvalidParameter(
                "Invalid request: clusterState must be one of " + ", ".join(sorted(_STATES)) + "."
            )
        return cls(
            page_size=size,
            current_page=page,
            cluster_name=params.get("clusterName") or None,
            cluster_state=state,
            tags=_parse_tags(params.get("tags") or ""),
            enterprise_project_id=params.get("enterpriseProjectId") or None,
        )


def _parse_tags(raw: str) -> tuple[tuple[str, str | None], ...]:
    """``k1*v1,k2*v2,k3`` (a key without ``*value`` matches any value)."""
    out: list[tuple[str, str | None]] = []
    for item in filter(None, (p.strip() for p in raw.split(","))):
        key, star, value = item.partition("*")
        if not key:
            raise InvalidParameter("Invalid request: tags must look like k1*v1,k2*v2.")
        out.append((key, value if star else None))
    return tuple(out)


@dataclass(frozen=True)
class ComponentInfo:
    name: str
    version: str
    description: str


@dataclass(frozen=True)
class ClusterView:
    cluster: Cluster
    components: list[ComponentInfo]
    hadoop_version: str


@dataclass(frozen=True)
class ClusterPage:
    total: int
    clusters: list[ClusterView]


class ClusterService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def list(self, who: Caller, query: ClusterQuery) -> ClusterPage:
        """The caller's project's clusters matching ``query``, newest first, one page."""
        with self.store.read() as conn:
            found = list_clusters(conn, who.project_id)
        matching = [c for c in reversed(found) if _matches(c, query)]
        start = (query.current_page - 1) * query.page_size
        page = matching[start : start + query.page_size]
        versions = _versions(self.settings)
        return ClusterPage(len(matching), [_view(c, versions) for c in page])

    def show(self, who: Caller, cluster_id: str) -> ClusterView:
        with self.store.read() as conn:
            cluster = get_cluster(conn, who.project_id, cluster_id)
        if cluster is None:
            raise ClusterNotFound(cluster_id)
        return _view(cluster, _versions(self.settings))


def _matches(cluster: Cluster, q: ClusterQuery) -> bool:
    if q.cluster_name is not None and cluster.name != q.cluster_name:
        return False
    if q.cluster_state is not None and q.cluster_state not in _MATCHING_STATES:
        return False
    if q.enterprise_project_id not in (None, _DEFAULT_ENTERPRISE_PROJECT):
        return False
    tags = cluster.config.get("tags") if isinstance(cluster.config.get("tags"), dict) else {}
    return all(k in tags and (v is None or str(tags[k]) == v) for k, v in q.tags)


_DESCRIPTIONS = {
    "Spark": "Spark (SparkSubmit, SparkSql, SparkScript).",
    "Hive": "Hive SQL run by Spark SQL against the cluster's metastore (HiveSql, HiveScript).",
    "Hadoop": "Hadoop MapReduce (local job runner) and DistCp.",
    "Flink": "Flink (local mini-cluster or a remote jobmanager).",
}


def _view(cluster: Cluster, versions: dict[str, str]) -> ClusterView:
    components = [
        ComponentInfo(name, versions.get(name, ""), _DESCRIPTIONS.get(name, ""))
        for name in cluster.components
    ]
    return ClusterView(cluster, components, versions.get("Hadoop", ""))


def _versions(settings: Settings) -> dict[str, str]:
    """Engine versions as installed here; empty strings for what cannot be found."""
    out = dict(_spark_versions(settings.spark_home))
    out["Flink"] = _flink_version(settings.flink_home, settings.data_dir)
    return out


@functools.cache
def _spark_versions(spark_home: str | None) -> tuple[tuple[str, str], ...]:
    from mrs_jobs.engines.java import find_spark_home

    home = find_spark_home(spark_home)
    jars = Path(home) / "jars" if home else None
    spark = _jar_version(jars, "spark-core_*.jar", r"spark-core_[\d.]+-(.+)\.jar")
    if not spark and spark_home is None:
        try:
            spark = importlib.metadata.version("pyspark")
        except importlib.metadata.PackageNotFoundError:
            spark = ""
    return (
        ("Spark", spark),
        ("Hive", _jar_version(jars, "hive-exec-*.jar", r"hive-exec-([\d.]+)")),
        ("Hadoop", _jar_version(jars, "hadoop-client-api-*.jar", r"hadoop-client-api-(.+)\.jar")),
    )


def _flink_version(flink_home: str | None, data_dir: Path) -> str:
    # Not cached: Flink may be installed while the service runs.
    from mrs_jobs.engines.install import find_flink_home

    home = find_flink_home(flink_home, data_dir)
    return _jar_version(
        Path(home) / "lib" if home else None, "flink-dist*.jar", r"flink-dist[^-]*-(.+)\.jar"
    )


def _jar_version(directory: Path | None, pattern: str, regex: str) -> str:
    if directory is None or not directory.is_dir():
        return ""
    for jar in sorted(directory.glob(pattern)):
        m = re.match(regex, jar.name)
        if m:
            return m.group(1)
    return ""
