"""Spark on Kubernetes: the spark-submit settings of a ``k8s`` cluster and its driver pod.

spark-submit creates the driver pod and exits; the job's state is the pod's phase from the
Kubernetes API, and a kill deletes the pod (which ends its executors). The pod's name is chosen
here from the job id, so a restarted service finds it without parsing anything. The token file
is read at each call (a rotated token is picked up) and never appears in a message.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from mrs_jobs.domain.clusterconfig import K8sSettings
from mrs_jobs.domain.diagnostics import scrub
from mrs_jobs.engines.base import ENGINE_LOG_CAP, ClusterSpec, EngineRefused, RemoteStatus
from mrs_jobs.engines.kit import conf_args, http_request

__all__ = [
    "DRIVER_CONTAINER",
    "K8sClient",
    "api_url_of",
    "driver_pod_name",
    "driver_pod_from_output",
    "spark_app_id_from_output",
    "submit_confs",
]

DRIVER_CONTAINER = "spark-kubernetes-driver"  # Spark's name for the driver pod's container
APP_SELECTOR_LABEL = "spark-app-selector"
_LOG_LINES = 2000  # a driver log's tail that is pulled in when it ended (then capped)
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PHASES = {
    "Pending": "pending",
    "Running": "running",
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Unknown": "unknown",
}
# spark-submit (k8s Client): "Deployed Spark application <name> with application ID <id> and
# submission ID <namespace>:<pod> into Kubernetes"; LoggingPodStatusWatcher: "pod name: <pod>".
_SUBMISSION_RE = re.compile(r"submission ID ([a-z0-9][a-z0-9.-]*):([a-z0-9][a-z0-9.-]*)")
_POD_NAME_RE = re.compile(r"\bpod name: ([a-z0-9][a-z0-9.-]*)")
_APP_ID_RE = re.compile(r"\bapplication ID (spark-[0-9a-f]+)\b")


def driver_pod_name(job_id: str) -> str:
    """``mrs-<job id>-driver`` as a DNS-1123 label (lower case, ``[a-z0-9-]``, ≤ 63 chars)."""
    core = re.sub(r"[^a-z0-9]+", "-", job_id.lower()).strip("-") or "job"
    core = core[: 63 - len("mrs--driver")].strip("-")
    return f"mrs-{core}-driver"


def submit_confs(cluster: ClusterSpec, job_id: str) -> list[str]:
    """spark-submit arguments for a ``k8s`` cluster, as ``["--conf", "key=value", ...]``."""
    s = cluster.settings_as(K8sSettings)
    confs = [
        ("spark.kubernetes.namespace", s.k8s_namespace),
        ("spark.kubernetes.container.image", s.k8s_image),
    ]
    if s.k8s_service_account:
        confs.append(
            ("spark.kubernetes.authenticate.driver.serviceAccountName", s.k8s_service_account)
        )
    confs += [
        ("spark.kubernetes.driver.pod.name", driver_pod_name(job_id)),
        ("spark.kubernetes.submission.waitAppCompletion", "false"),
    ]
    if s.k8s_token_file:
        confs.append(("spark.kubernetes.authenticate.submission.oauthTokenFile", s.k8s_token_file))
    if s.k8s_ca_file:
        confs.append(("spark.kubernetes.authenticate.submission.caCertFile", s.k8s_ca_file))
    return conf_args(confs)


def driver_pod_from_output(text: str) -> str | None:
    """The driver pod spark-submit reported (the last one printed)."""
    found = [(m.start(), m.group(2)) for m in _SUBMISSION_RE.finditer(text)]
    found += [(m.start(), m.group(1)) for m in _POD_NAME_RE.finditer(text)]
    return max(found)[1] if found else None


def spark_app_id_from_output(text: str) -> str | None:
    """The Spark application id (``spark-<hex>``, the driver's ``spark-app-selector``)."""
    ids = _APP_ID_RE.findall(text)
    return ids[-1] if ids else None


def api_url_of(cluster: ClusterSpec) -> str:
    """The Kubernetes API server: ``k8s_api_url``, else the ``k8s://`` master's URL (Spark
    reads ``k8s://host:port`` without a scheme as https)."""
    url = cluster.settings_as(K8sSettings).k8s_api_url
    if not url:
        master = (cluster.spark_master or "").strip()
        if not master.startswith("k8s://"):
            raise EngineRefused(
                "this Kubernetes cluster has no API address: set spark_master to "
                "k8s://https://host:port or k8s_api_url"
            )
        url = master[len("k8s://") :]
        if "://" not in url:
            url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EngineRefused(f"the Kubernetes API address is not an http(s) URL: {url}")
    return url.rstrip("/")


class K8sClient:
    """The driver pods of one namespace. Every call is one short request; errors become
    None/False, never exceptions, and never carry the token."""

    def __init__(
        self,
        api_url: str,
        namespace: str = "default",
        *,
        token_file: str | None = None,
        ca_file: str | None = None,
        grace_seconds: int | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.namespace = namespace
        self.token_file = token_file or None
        self.ca_file = ca_file or None
        self.grace_seconds = grace_seconds
        self._transport = transport
        self._timeout = timeout

    @classmethod
    def from_cluster(
        cls, cluster: ClusterSpec, *, transport: httpx.BaseTransport | None = None
    ) -> K8sClient:
        """The client of a ``k8s`` cluster; raises EngineRefused when it has no API address."""
        s = cluster.settings_as(K8sSettings)
        return cls(
            api_url_of(cluster),
            s.k8s_namespace,
            token_file=s.k8s_token_file,
            ca_file=s.k8s_ca_file,
            transport=transport,
        )

    def _client(self) -> httpx.Client:
        """A client with the current token; OSError when the token or CA file is unreadable."""
        headers = {"Accept": "application/json"}
        if self.token_file:
            token = Path(self.token_file).read_text(encoding="utf-8").strip()
            if token:
                headers["Authorization"] = f"Bearer {token}"
        verify: ssl.SSLContext | bool = True
        if self.ca_file and self._transport is None:
            verify = ssl.create_default_context(cafile=self.ca_file)
        return httpx.Client(
            transport=self._transport, timeout=self._timeout, headers=headers, verify=verify
        )

    def _pod_url(self, pod_name: str) -> str:
        if not _DNS_LABEL_RE.match(pod_name):
            raise ValueError("not a pod name")
        return f"{self.api_url}/api/v1/namespaces/{self.namespace}/pods/{pod_name}"

    def driver_status(self, pod_name: str) -> RemoteStatus | None:
        """The driver pod's phase as a RemoteStatus (app id from its ``spark-app-selector``
        label); ``unknown`` when there is no such pod, None when the API cannot answer."""
        try:
            url = self._pod_url(pod_name)
        except ValueError:
            return RemoteStatus("unknown", message="not a Kubernetes pod name")
        resp = http_request(self._client, "GET", url)
        if resp is None or resp.status_code not in (200, 404):
            return None
        if resp.status_code == 404:
            return RemoteStatus("unknown")
        try:
            pod = resp.json()
            status = pod.get("status") or {}
            labels = (pod.get("metadata") or {}).get("labels") or {}
        except (ValueError, AttributeError):
            return None
        if not isinstance(status, dict) or not isinstance(labels, dict):
            return None
        state = _PHASES.get(str(status.get("phase") or "Unknown"), "unknown")
        return RemoteStatus(
            state=state,
            app_id=_str(labels.get(APP_SELECTOR_LABEL)),
            message=_pod_message(state, status),
        )

    def driver_log(self, pod_name: str) -> str | None:
        """The end of the driver container's log (``GET .../pods/<name>/log``), at most
        :data:`ENGINE_LOG_CAP` bytes; None when the API cannot tell (the pod is gone)."""
        try:
            url = self._pod_url(pod_name) + "/log"
        except ValueError:
            return None
        params = {"container": DRIVER_CONTAINER, "tailLines": str(_LOG_LINES)}
        resp = http_request(self._client, "GET", url, params=params, headers={"Accept": "*/*"})
        if resp is None or resp.status_code != 200:
            return None
        return resp.text[-ENGINE_LOG_CAP:] or None

    def delete_driver(self, pod_name: str) -> bool:
        """Delete the driver pod (its executors go with it); True when deleted, being deleted
        or already gone."""
        try:
            url = self._pod_url(pod_name)
        except ValueError:
            return False
        # DeleteOptions as kubectl sends them (cascade=background); a grace period when set.
        body: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if self.grace_seconds is not None:
            body["gracePeriodSeconds"] = self.grace_seconds
        resp = http_request(self._client, "DELETE", url, json=body)
        return resp is not None and resp.status_code in (200, 202, 404)


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _driver_container(status: dict) -> dict:
    statuses = [s for s in status.get("containerStatuses") or [] if isinstance(s, dict)]
    for s in statuses:
        if s.get("name") == DRIVER_CONTAINER:
            return s
    return statuses[0] if statuses else {}


def _pod_message(state: str, status: dict) -> str | None:
    """Why a driver failed (its container's termination) or is stuck pending (e.g. an image
    that cannot be pulled); None otherwise."""
    container = _driver_container(status)
    cstate = container.get("state") or {}
    if state == "failed":
        term = cstate.get("terminated") or (container.get("lastState") or {}).get("terminated")
        parts = []
        if isinstance(term, dict) and term:
            parts.append(
                f"driver container {term.get('reason') or 'terminated'} "
                f"(exit code {term.get('exitCode')})"
            )
            if term.get("message"):
                parts.append(str(term["message"]))
        if status.get("reason") or status.get("message"):
            parts.append(
                ": ".join(str(p) for p in (status.get("reason"), status.get("message")) if p)
            )
        return scrub("; ".join(parts) or "driver pod failed")
    if state == "pending":
        waiting = cstate.get("waiting")
        if isinstance(waiting, dict) and waiting.get("reason"):
            text = ": ".join(str(p) for p in (waiting.get("reason"), waiting.get("message")) if p)
            return scrub(text)
    return None
