"""The MRS v2 files API (``ShowHdfsFileList``): one directory level of a cluster's files.

Object stores (``obs://``, ``s3a://``, ``s3://``) are listed with the cluster's own object-store
settings, ``hdfs://`` through the NameNodes of the cluster's own Hadoop configuration. Local
paths are listed only under the cluster's roots, checked as a job's inputs are
(``engines/paths.py`` ``InputRoots``: resolved, never the service's own files); a cluster with
no roots lists nothing, since "any path" would be the whole host. Entries that are the
service's files, and symlinks leading out of the roots, are left out of a listing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.domain.validation import check_query, query_int
from mrs_jobs.engines.base import ClusterSpec, EngineRefused
from mrs_jobs.engines.paths import URL_RE, InputRoots, file_url_path
from mrs_jobs.engines.registry import cluster_spec
from mrs_jobs.errors import ClusterNotFound, InvalidParameter
from mrs_jobs.services.context import Caller
from mrs_jobs.settings import Settings
from mrs_jobs.storage import files as listing
from mrs_jobs.storage.hadoopconf import HdfsConfigError, hdfs_config
from mrs_jobs.storage.hdfsfiles import HdfsError, HdfsListing, hdfs_path
from mrs_jobs.storage.objectfiles import ObjectListing
from mrs_jobs.storage.objectstore import (
    ObjectStoreError,
    is_object_uri,
    parse_uri,
    resolve_credentials,
)
from mrs_jobs.store import Store
from mrs_jobs.store.tenants import get_cluster

__all__ = ["FileListing", "FileQuery", "FileService"]

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_PATH_CHARS = 4096
_KNOWN = frozenset({"path", "offset", "limit", "sort_key", "order"})
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# MRS: a path component may not hold any of these, start or end with '.', or pass 255 bytes.
_BAD_CHARS = frozenset(":*?\"<>|\\;&,'`!{}[]$%+")


@dataclass(frozen=True)
class FileQuery:
    """A validated ``GET .../files`` request; ``page`` is 1-based (MRS's ``offset``)."""

    path: str
    page: int = 1
    limit: int = DEFAULT_LIMIT
    sort_key: str = "path_suffix"
    descending: bool = True

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> FileQuery:
        check_query(params, _KNOWN)
        path = params.get("path") or ""
        if not path:
            raise InvalidParameter("path is required (the directory to list).")
        if _CONTROL_RE.search(path):  # a tab or a newline is no part of a path either
            raise InvalidParameter("path must not contain control characters.")
        if len(path) > MAX_PATH_CHARS:
            raise InvalidParameter(f"path must be at most {MAX_PATH_CHARS} characters.")
        sort_key = params.get("sort_key") or "path_suffix"
        if sort_key not in listing.SORT_KEYS:
            raise InvalidParameter(
                f"sort_key must be one of {', '.join(listing.SORT_KEYS)}; got {sort_key[:40]!r}."
            )
        order = params.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise InvalidParameter(f"order must be asc or desc; got {order[:40]!r}.")
        return cls(
            path=path,
            page=max(1, query_int(params, "offset", 0, 2**31 - 1) or 1),
            limit=query_int(params, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT,
            sort_key=sort_key,
            descending=order == "desc",
        )


@dataclass(frozen=True)
class FileListing:
    total: int
    files: list[listing.FileStatus]


def _local_path(path: str) -> str:
    """The absolute local path ``path`` names (a path or a ``file://`` URL), with MRS's rules
    for each component; InvalidParameter otherwise."""
    m = URL_RE.match(path)
    if m and m.group(1).lower() != "file":
        raise InvalidParameter(
            f"path must be a local path, a file:// URL, an hdfs:// URI or an obs://, s3a:// or "
            f"s3:// URI; got {m.group(0)}"
        )
    try:
        local = file_url_path(path) if m else path
    except EngineRefused as exc:
        raise InvalidParameter(str(exc)) from None
    if not local.startswith("/"):
        raise InvalidParameter(f"path must be absolute: {path}")
    _check_parts([p for p in local.split("/") if p])
    return local


def _check_parts(parts: list[str]) -> None:
    """MRS's rules for each component of a path."""
    for part in parts:
        if part.startswith(".") or part.endswith("."):
            raise InvalidParameter(f"a path component may not start or end with '.': {part}")
        if _BAD_CHARS.intersection(part):
            raise InvalidParameter(
                f"a path component may not hold any of {''.join(sorted(_BAD_CHARS))}: {part}"
            )
        if len(part.encode()) > 255:
            raise InvalidParameter("a path component may not be longer than 255 bytes.")


@contextmanager
def _listing_errors(shown: str) -> Iterator[None]:
    """What listing ``shown`` can fail with, as the 400 the user reads."""
    try:
        yield
    except FileNotFoundError:
        raise InvalidParameter(f"path does not exist: {shown}") from None
    except listing.ListingTooLarge:
        raise InvalidParameter(
            f"{shown} holds more than {listing.MAX_ENTRIES} entries; list a directory below it."
        ) from None
    except (ObjectStoreError, HdfsError, HdfsConfigError) as exc:
        raise InvalidParameter(str(exc)) from None
    except OSError as exc:
        raise InvalidParameter(f"cannot list {shown}: {exc.strerror}") from None


class FileService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    def _cluster(self, caller: Caller, cluster_id: str) -> ClusterSpec:
        with self.store.read() as conn:
            row = get_cluster(conn, caller.project_id, cluster_id)
        if row is None:
            raise ClusterNotFound(cluster_id)
        return cluster_spec(row.id, row.kind, row.config, self.settings)

    def list(self, caller: Caller, cluster_id: str, query: FileQuery) -> FileListing:
        cluster = self._cluster(caller, cluster_id)
        where = _where(query.path)
        with _listing_errors(query.path):
            if where == "local":
                found = self._local(cluster, query)
            elif where == "hdfs":
                found = self._hdfs(cluster, query)
            else:
                found = self._objects(cluster, query)
        log.info(
            "files.listed",
            extra={
                "cluster_id": cluster_id,
                "where": where,
                "total": found.total,
                "returned": len(found.files),
            },
        )
        return found

    def _local(self, cluster: ClusterSpec, query: FileQuery) -> FileListing:
        roots = InputRoots.of(cluster)
        local = _local_path(query.path)
        if not roots.rooted:
            raise InvalidParameter(
                f"cluster {cluster.cluster_id} has no input roots, so none of its local files "
                "can be listed (an operator sets input_roots)."
            )
        real = Path(local).resolve()
        try:
            roots.check(real, query.path, "path")
        except EngineRefused as exc:
            raise InvalidParameter(str(exc)) from None

        def allowed(p: Path) -> bool:
            return not roots.reserved(p) and any(p.is_relative_to(r) for r in roots.roots)

        total, rows = _page(listing.local_entries(real, allowed), query)
        return FileListing(total, listing.with_children(rows, allowed))

    def _objects(self, cluster: ClusterSpec, query: FileQuery) -> FileListing:
        """``obs://``/``s3a://``/``s3://`` with the cluster's object-store settings only: the
        caller chooses no endpoint, so the cluster's keys go only to the cluster's store."""
        ref = parse_uri(query.path)
        _check_parts(ref.key.split("/") if ref.key else [])
        creds = resolve_credentials({}, cluster.settings.object_store)
        if creds.endpoint_url is None:
            raise InvalidParameter(
                f"cluster {cluster.cluster_id} names no object store (an operator sets "
                "fs.obs.endpoint and its keys), so no object store is listed for it."
            )
        store = ObjectListing(creds)
        total, rows = _page(store.entries(ref), query)
        return FileListing(total, store.with_children(ref, rows))

    def _hdfs(self, cluster: ClusterSpec, query: FileQuery) -> FileListing:
        """``hdfs://`` through the NameNodes of the cluster's own Hadoop configuration (WebHDFS,
        simple authentication); the caller names a path, never a host."""
        conf_dir = cluster.settings.hadoop_conf_dir
        if not conf_dir:
            raise InvalidParameter(
                f"cluster {cluster.cluster_id} has no Hadoop configuration (an operator sets "
                "hadoop_conf_dir), so it has no HDFS to list."
            )
        config = hdfs_config(conf_dir)
        path = hdfs_path(query.path, config)
        _check_parts([p for p in path.split("/") if p])
        total, rows = _page(HdfsListing(config).entries(path), query)
        return FileListing(total, rows)


def _where(path: str) -> str:
    if is_object_uri(path):
        return "object store"
    m = URL_RE.match(path)
    return "hdfs" if m and m.group(1).lower() == "hdfs" else "local"


def _page(entries: list[listing.FileStatus], query: FileQuery) -> tuple[int, list]:
    return listing.page(
        entries,
        sort_key=query.sort_key,
        descending=query.descending,
        number=query.page,
        limit=query.limit,
    )
