"""A YARN ResourceManager client: application status and kill through the RM REST API.

Used by Spark (``--master yarn``) and MapReduce on YARN: ``GET /ws/v1/cluster/apps/{id}`` and
``PUT .../state`` ``{"state": "KILLED"}``. On a cluster without Kerberos the RM treats REST
callers as a web user who may not kill; ``yarn_user`` names the user (``?user.name=``). SPNEGO
is not supported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from mrs_jobs.domain.clusterconfig import YarnSettings
from mrs_jobs.domain.diagnostics import scrub
from mrs_jobs.engines.base import ENGINE_LOG_CAP, ClusterSpec, EngineRefused, RemoteStatus, Usage
from mrs_jobs.engines.kit import http_request
from mrs_jobs.storage.hadoopconf import read_site_xml

__all__ = [
    "YarnClient",
    "app_id_from_output",
    "client_of",
    "map_yarn_state",
    "rm_url_of",
    "submit_env",
    "usage_of_report",
]

_APP_ID_RE = re.compile(r"^application_\d+_\d+$")
# The RM's amContainerLogs: <scheme>://<nm host:port>/node/containerlogs/<container>/<user>
_AM_LOGS_RE = re.compile(r"^(https?)://([\w.\-]+:\d+)/node/containerlogs/(container_[\w]+)(?:/|$)")
_LOG_NAME_RE = re.compile(r"^[\w.\-]+$")
_SUBMITTED_RE = re.compile(r"Submitted application (application_\d+_\d+)")
_REPORT_RE = re.compile(r"Application report for (application_\d+_\d+)")
_JOB_RE = re.compile(r"Running job: job_(\d+_\d+)\b")
_PENDING = frozenset({"NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED"})
_FINAL = {"SUCCEEDED": "succeeded", "FAILED": "failed", "KILLED": "killed", "UNDEFINED": "failed"}
_SITE_FILE = "yarn-site.xml"


def map_yarn_state(state: str, final_status: str | None) -> str:
    """YARN's (state, finalStatus) → a :class:`RemoteStatus` state."""
    state = (state or "").upper()
    if state in _PENDING:
        return "pending"
    if state == "RUNNING":
        return "running"
    if state == "FINISHED":
        return _FINAL.get((final_status or "").upper(), "failed")
    if state == "FAILED":
        return "failed"
    if state == "KILLED":
        return "killed"
    return "unknown"


def app_id_from_output(text: str) -> str | None:
    """The YARN application id a launcher printed: spark-submit's and YarnClientImpl's
    ``Submitted application application_…``, Spark's ``Application report for application_…``,
    or Hadoop's ``Running job: job_<ts>_<n>`` (the job's application is
    ``application_<ts>_<n>``). The last one printed wins (a driver may run several jobs)."""
    best: tuple[int, str] | None = None
    for regex, prefix in ((_SUBMITTED_RE, ""), (_REPORT_RE, ""), (_JOB_RE, "application_")):
        for m in regex.finditer(text):
            if best is None or m.start() > best[0]:
                best = (m.start(), prefix + m.group(1))
    return best[1] if best else None


def _address(props: dict[str, str], key: str, rm_id: str | None) -> str | None:
    if rm_id is not None:
        return props.get(f"{key}.{rm_id}") or None
    return props.get(key) or None


def _rm_url_from_site(props: dict[str, str]) -> str | None:
    https = props.get("yarn.http.policy", "").strip().upper() == "HTTPS_ONLY"
    scheme, key, port = (
        ("https", "yarn.resourcemanager.webapp.https.address", 8090)
        if https
        else ("http", "yarn.resourcemanager.webapp.address", 8088)
    )
    # ResourceManager HA: the first RM's address; a standby RM redirects to the active one.
    rm_ids = [r.strip() for r in props.get("yarn.resourcemanager.ha.rm-ids", "").split(",")]
    candidates: list[str | None] = [r for r in rm_ids if r] if _ha(props) else []
    for rm_id in candidates or [None]:
        host = _address(props, "yarn.resourcemanager.hostname", rm_id)
        addr = _address(props, key, rm_id)
        if addr:
            name, _, port_text = addr.rpartition(":")
            if name in ("", "0.0.0.0") and host:
                addr = f"{host}:{port_text or port}"
            elif not name:
                continue
            return f"{scheme}://{addr}"
        if host:
            return f"{scheme}://{host}:{port}"
    return None


def _ha(props: dict[str, str]) -> bool:
    return props.get("yarn.resourcemanager.ha.enabled", "").strip().lower() == "true"


def rm_url_of(cluster: ClusterSpec) -> str:
    """The ResourceManager's web address: ``yarn_rm_url``, else from ``yarn-site.xml`` in
    ``hadoop_conf_dir`` (``yarn.resourcemanager.webapp.address``, or the RM host name with
    port 8088; the HTTPS address when ``yarn.http.policy`` is ``HTTPS_ONLY``)."""
    url = cluster.settings_as(YarnSettings).yarn_rm_url
    if url:  # an http(s) URL, checked by the settings
        return url.rstrip("/")
    conf = cluster.settings.hadoop_conf_dir
    if conf:
        found = _rm_url_from_site(read_site_xml(Path(conf).expanduser() / _SITE_FILE))
        if found:
            return found
        raise EngineRefused(
            f"the ResourceManager address is not in {conf}/{_SITE_FILE} "
            "(yarn.resourcemanager.webapp.address or yarn.resourcemanager.hostname): "
            "set yarn_rm_url for this cluster"
        )
    raise EngineRefused(
        "this YARN cluster names no ResourceManager: set hadoop_conf_dir (with a yarn-site.xml) "
        "or yarn_rm_url"
    )


def submit_env(cluster: ClusterSpec) -> dict[str, str]:
    """The environment a YARN client (spark-submit, hadoop jar) needs to find the cluster."""
    conf = cluster.settings.hadoop_conf_dir
    if not conf:
        raise EngineRefused("a YARN cluster needs hadoop_conf_dir (the cluster's Hadoop config)")
    path = str(Path(conf).expanduser().resolve())
    return {"HADOOP_CONF_DIR": path, "YARN_CONF_DIR": path}


class YarnClient:
    """Status and kill of one RM's applications. Every call is one short HTTP request;
    network trouble and RM errors become None/False, never exceptions."""

    def __init__(
        self,
        rm_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
        user: str | None = None,
    ) -> None:
        self.rm_url = rm_url.rstrip("/")
        self.user = user or None
        self._transport = transport
        self._timeout = timeout

    def _client(self) -> httpx.Client:
        return httpx.Client(
            transport=self._transport,
            timeout=self._timeout,
            follow_redirects=True,  # a standby RM redirects REST calls to the active one
            headers={"Accept": "application/json"},
        )

    def _app_url(self, app_id: str) -> str:
        if not _APP_ID_RE.match(app_id):
            raise ValueError(f"not a YARN application id: {app_id!r}")
        return f"{self.rm_url}/ws/v1/cluster/apps/{app_id}"

    def status(self, app_id: str) -> RemoteStatus | None:
        """The application's state; ``unknown`` when the RM does not know it, None when the
        RM cannot be reached or answers with an error."""
        try:
            url = self._app_url(app_id)
        except ValueError:
            return RemoteStatus("unknown", app_id=app_id, message="not a YARN application id")
        resp = http_request(self._client, "GET", url)
        if resp is None or resp.status_code not in (200, 404):
            return None
        if resp.status_code == 404:
            return RemoteStatus("unknown", app_id=app_id)
        try:
            app = resp.json()["app"]
            state = map_yarn_state(str(app["state"]), app.get("finalStatus"))
        except (ValueError, KeyError, TypeError):
            return None
        return RemoteStatus(
            state=state,
            app_id=str(app.get("id") or app_id),
            tracking_url=_text(app.get("trackingUrl")),
            progress=_progress(app.get("progress")),
            message=scrub(_text(app.get("diagnostics")))
            if state in ("failed", "killed", "unknown")
            else None,
        )

    def usage(self, app_id: str) -> Usage:
        """What the application was allocated (:func:`usage_of_report`); Usage() when the RM
        cannot tell."""
        try:
            url = self._app_url(app_id)
        except ValueError:
            return Usage()
        resp = http_request(self._client, "GET", url)
        try:
            app = resp.json()["app"] if resp is not None and resp.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            return Usage()
        return usage_of_report(app) if isinstance(app, dict) else Usage()

    def am_log(self, app_id: str, name: str = "stderr") -> str | None:
        """The end of the application master container's log ``name`` (its stderr: a Spark
        driver's in cluster deploy mode), at most :data:`ENGINE_LOG_CAP` bytes, from the
        NodeManager that ran it (which hands aggregated logs over once the application
        ended); None when the RM or the NodeManager cannot tell."""
        try:
            url = self._app_url(app_id)
        except ValueError:
            return None
        resp = http_request(self._client, "GET", url)
        try:
            app = resp.json()["app"] if resp is not None and resp.status_code == 200 else {}
        except (ValueError, KeyError, TypeError):
            return None
        m = _AM_LOGS_RE.match(str(app.get("amContainerLogs") or ""))
        if m is None or not _LOG_NAME_RE.match(name):
            return None
        scheme, node, container = m.group(1), m.group(2), m.group(3)
        logs = f"{scheme}://{node}/ws/v1/node/containerlogs/{container}/{name}"
        params = {"size": str(-ENGINE_LOG_CAP)}  # negative: the last bytes
        if self.user:
            params["user.name"] = self.user
        got = http_request(self._client, "GET", logs, params=params, headers={"Accept": "*/*"})
        if got is None or got.status_code != 200:
            return None
        return got.text[-ENGINE_LOG_CAP:] or None

    def kill(self, app_id: str) -> bool:
        """Ask the RM to kill the application; True when it accepted (202) or did (200)."""
        try:
            url = self._app_url(app_id) + "/state"
        except ValueError:
            return False
        params = {"user.name": self.user} if self.user else None
        resp = http_request(self._client, "PUT", url, params=params, json={"state": "KILLED"})
        return resp is not None and resp.status_code in (200, 202)


def client_of(cluster: ClusterSpec, *, transport: httpx.BaseTransport | None = None) -> YarnClient:
    """The RM client of a ``yarn`` cluster (``yarn_user`` for kills on clusters without
    Kerberos); raises EngineRefused when the RM address is not known."""
    user = cluster.settings_as(YarnSettings).yarn_user or None
    return YarnClient(rm_url_of(cluster), transport=transport, user=user)


def usage_of_report(app: dict[str, Any]) -> Usage:
    """An application report's resource figures: ``vcoreSeconds`` (vcores allocated × seconds)
    as the CPU seconds, and ``memorySeconds`` (MB allocated × seconds) over the elapsed
    seconds as the memory: the average allocation, since YARN reports no peak (its
    ``allocatedMB`` is only what is allocated now, -1 once the application ended)."""
    vcores, memory = _number(app.get("vcoreSeconds")), _number(app.get("memorySeconds"))
    elapsed = _number(app.get("elapsedTime"))
    average = None
    if memory is not None and elapsed:
        average = round(memory / max(1.0, elapsed / 1000))
    return Usage(cpu_seconds=vcores, peak_memory_mb=average)


def _number(value: Any) -> float | None:
    """A non-negative finite figure of a report (None when missing or not one)."""
    try:
        n = float(value)
    except (TypeError, ValueError):
        return None
    return n if 0 <= n < 1e15 else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def _progress(value: Any) -> float | None:
    try:
        p = float(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(100.0, p))
