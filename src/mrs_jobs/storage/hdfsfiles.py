"""One level of an HDFS directory as MRS's FileStatusV2, read over WebHDFS (``LISTSTATUS``).

WebHDFS's ``FileStatus`` is the shape MRS's ``FileStatusV2`` was drawn from (``pathSuffix``,
``owner``, ``group``, ``permission``, ``length``, ``type``, ``childrenNum``, times in epoch
ms), so entries map field for field. The NameNodes come from the cluster's Hadoop
configuration only (``hadoop_conf_dir``): the caller names a path, never a host. With HA the
NameNodes are tried in order and a standby's answer moves on to the next one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from mrs_jobs.storage.files import MAX_ENTRIES, FileStatus, ListingTooLarge
from mrs_jobs.storage.hadoopconf import HdfsConfig

__all__ = ["HdfsError", "HdfsListing", "hdfs_path"]

TIMEOUT_S = 10.0
# Bytes of a LISTSTATUS answer read at most: MAX_ENTRIES entries of ~400 bytes each.
MAX_ANSWER_BYTES = MAX_ENTRIES * 400


class HdfsError(Exception):
    """Listing failed; the message is for the user (no credential is ever in it)."""


def hdfs_path(uri: str, config: HdfsConfig) -> str:
    """The absolute HDFS path of an ``hdfs://`` URI on this cluster's file system (an
    ``hdfs:///p`` URI, or one naming the cluster's own authority); HdfsError otherwise."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "hdfs":
        raise HdfsError(f"not an hdfs:// URI: {uri}")
    if parts.netloc and parts.netloc != config.authority:
        own = f"hdfs://{config.authority}"
        raise HdfsError(
            f"{uri} names another file system than this cluster's ({own}); "
            f"use hdfs:///path or {own}/path"
        )
    if parts.query or parts.fragment:
        raise HdfsError(f"an hdfs:// path takes no query or fragment: {uri}")
    return parts.path or "/"


def _status(raw: dict[str, Any]) -> FileStatus:
    is_dir = raw.get("type") == "DIRECTORY"
    return FileStatus(
        path_suffix=str(raw.get("pathSuffix", "")),
        owner=str(raw.get("owner", "")),
        group=str(raw.get("group", "")),
        permission=str(raw.get("permission", "")),
        replication=int(raw.get("replication", 0)),
        block_size=int(raw.get("blockSize", 0)),
        length=0 if is_dir else int(raw.get("length", 0)),
        type="DIRECTORY" if is_dir else "FILE",
        children_num=int(raw.get("childrenNum", 0)),
        access_time=int(raw.get("accessTime", 0)),
        modification_time=int(raw.get("modificationTime", 0)),
    )


def _remote_error(resp: httpx.Response) -> tuple[str, str]:
    """(exception class, message) of a WebHDFS ``RemoteException`` answer."""
    try:
        remote = resp.json().get("RemoteException", {})
    except ValueError:
        remote = {}
    message = str(remote.get("message") or resp.reason_phrase)[:500]
    return str(remote.get("exception", "")), message


class HdfsListing:
    """Lists HDFS paths through the NameNodes of ``config`` as ``user`` (simple auth)."""

    def __init__(self, config: HdfsConfig, user: str = "") -> None:
        self.config = config
        self.user = user

    def _get(self, base: str, path: str) -> httpx.Response:
        params = {"op": "LISTSTATUS"}
        if self.user:
            params["user.name"] = self.user
        url = base + quote(path, safe="/")
        with (
            httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client,
            client.stream("GET", url, params=params) as resp,
        ):
            body = b""
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise ListingTooLarge(path)
            return httpx.Response(resp.status_code, content=body, request=resp.request)

    def _answer(self, path: str) -> httpx.Response:
        """The first active NameNode's answer (a standby, or one not answering, is skipped)."""
        problems = []
        for base in self.config.webhdfs_urls:
            try:
                resp = self._get(base, path)
            except httpx.HTTPError as exc:
                problems.append(f"{urlsplit(base).netloc}: {type(exc).__name__}")
                continue
            if resp.status_code == 403 and _remote_error(resp)[0] == "StandbyException":
                problems.append(f"{urlsplit(base).netloc}: standby")
                continue
            return resp
        raise HdfsError(
            f"no NameNode of hdfs://{self.config.authority} answered: " + "; ".join(problems)
        )

    def entries(self, path: str) -> list[FileStatus]:
        """The entries of ``path`` (a file lists itself with an empty ``path_suffix``)."""
        resp = self._answer(path)
        if resp.status_code == 404:
            raise FileNotFoundError(path)
        if resp.status_code != 200:
            kind, message = _remote_error(resp)
            what = kind or resp.status_code
            raise HdfsError(f"cannot list hdfs://{self.config.authority}{path}: {what}: {message}")
        try:
            found = resp.json()["FileStatuses"]["FileStatus"]
        except (ValueError, KeyError, TypeError):
            raise HdfsError("the NameNode's answer is not a WebHDFS listing") from None
        if len(found) > MAX_ENTRIES:
            raise ListingTooLarge(path)
        return [_status(raw) for raw in found]
