"""A cluster's Hadoop configuration (``hadoop_conf_dir``): its ``*-site.xml`` files read as
``name → value``, and the HDFS NameNode web addresses they name (WebHDFS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

__all__ = ["HdfsConfig", "HdfsConfigError", "hdfs_config", "read_site_xml"]

_VAR_RE = re.compile(r"\$\{([^}]+)\}")
WEBHDFS_HTTP_PORT = 9870  # Hadoop 3's dfs.namenode.http-address default port


class HdfsConfigError(Exception):
    """The Hadoop configuration names no usable HDFS (the message says what to set)."""


def read_site_xml(path: Path) -> dict[str, str]:
    """A Hadoop ``*-site.xml`` as ``name → value`` (``${var}`` references resolved against
    the same file); {} when the file is missing or not XML."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    props: dict[str, str] = {}
    for prop in root.iter("property"):
        name = (prop.findtext("name") or "").strip()
        if name:
            props[name] = (prop.findtext("value") or "").strip()

    def resolve(value: str, depth: int = 0) -> str:
        if depth > 8:
            return value
        return _VAR_RE.sub(lambda m: resolve(props.get(m.group(1), m.group(0)), depth + 1), value)

    return {k: resolve(v) for k, v in props.items()}


@dataclass(frozen=True)
class HdfsConfig:
    """Where a cluster's HDFS answers: its file system name (``fs.defaultFS``'s authority, a
    host:port or an HA nameservice) and the NameNodes' WebHDFS base URLs, tried in order."""

    authority: str
    webhdfs_urls: tuple[str, ...]


def _namenode_ids(hdfs: dict[str, str], authority: str) -> list[str]:
    services = [s.strip() for s in hdfs.get("dfs.nameservices", "").split(",") if s.strip()]
    if authority not in services:
        return []
    return [n.strip() for n in hdfs.get(f"dfs.ha.namenodes.{authority}", "").split(",") if n]


def _web_url(address: str, https: bool) -> str:
    host, _, port = address.rpartition(":")
    host = host or address
    if host in ("0.0.0.0", "", "[::]"):
        raise HdfsConfigError(f"the NameNode web address {address} names no host")
    return f"{'https' if https else 'http'}://{host}:{port or WEBHDFS_HTTP_PORT}/webhdfs/v1"


def hdfs_config(conf_dir: str) -> HdfsConfig:
    """The HDFS of ``hadoop_conf_dir``: fs.defaultFS from core-site.xml, the NameNode web
    addresses from hdfs-site.xml (HA nameservices too). Kerberos is refused: WebHDFS would
    need SPNEGO, which this service does not speak."""
    base = Path(conf_dir).expanduser()
    core = read_site_xml(base / "core-site.xml")
    hdfs = read_site_xml(base / "hdfs-site.xml")
    if core.get("hadoop.security.authentication", "simple").lower() != "simple":
        raise HdfsConfigError(
            "this cluster's HDFS uses Kerberos (hadoop.security.authentication); listing it "
            "needs SPNEGO, which this service does not support"
        )
    default_fs = core.get("fs.defaultFS") or core.get("fs.default.name") or ""
    parts = urlsplit(default_fs)
    if parts.scheme != "hdfs" or not parts.netloc:
        raise HdfsConfigError(
            f"hadoop_conf_dir {conf_dir} names no HDFS: core-site.xml's fs.defaultFS must be "
            f"an hdfs:// URI (it is {default_fs or 'unset'})"
        )
    authority = parts.netloc
    https = hdfs.get("dfs.http.policy", "HTTP_ONLY").upper() == "HTTPS_ONLY"
    key = "dfs.namenode.https-address" if https else "dfs.namenode.http-address"
    ids = _namenode_ids(hdfs, authority)
    if ids:
        addresses = [hdfs.get(f"{key}.{authority}.{nn}", "") for nn in ids]
        missing = [nn for nn, a in zip(ids, addresses, strict=True) if not a]
        if missing:
            raise HdfsConfigError(
                f"hdfs-site.xml names no {key}.{authority}.{missing[0]} for nameservice {authority}"
            )
    else:
        addresses = [hdfs.get(key) or f"{parts.hostname}:{WEBHDFS_HTTP_PORT}"]
    return HdfsConfig(authority, tuple(_web_url(a, https) for a in addresses))
