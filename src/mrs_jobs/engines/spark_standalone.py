"""Client of a Spark standalone master: driver state and kill, apps, driver logs, progress.

The REST submission server (port 6066) gives a driver's state and kills it; the master UI's
``/json/`` lists workers, apps and drivers, and ``POST /app/kill/`` kills an app (with the CSRF
token Spark 4 asks for). Neither links a driver to its app, so the driver's ``stderr`` on its
worker's UI gives the app id and UI port. Every call has a short timeout and returns
None/False when the master cannot be reached.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import httpx

from mrs_jobs.domain.clusterconfig import StandaloneSettings
from mrs_jobs.engines.base import ClusterSpec, RemoteStatus
from mrs_jobs.engines.spark_progress import progress_of

__all__ = [
    "DRIVER_STATES",
    "StandaloneClient",
    "app_id_from_output",
    "driver_id_from_output",
    "master_host",
    "rest_url_of",
    "submit_master",
    "ui_url_of",
]

# The standalone master's DriverState values → RemoteStatus states.
DRIVER_STATES = {
    "SUBMITTED": "pending",
    "RELAUNCHING": "pending",
    "RUNNING": "running",
    "FINISHED": "succeeded",
    "FAILED": "failed",
    "ERROR": "failed",
    "KILLED": "killed",
    "UNKNOWN": "unknown",
}
_DRIVER_ID_RE = re.compile(r"\b(driver-\d{14}-\d{4,})\b")
_APP_ID_RE = re.compile(r"app ID (app-\d{14}-\d{4,})")
_UI_PORT_RE = re.compile(r"'SparkUI' on port (\d+)")
_CSRF_RE = re.compile(r'name="csrfToken"\s+value="([0-9A-Za-z_-]+)"')
_SAFE_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_LOG_HEAD_BYTES = 200_000
_LOG_TAIL_BYTES = 20_000
_MESSAGE_CHARS = 300


def master_host(spark_master: str) -> str:
    """The first master's host of ``spark://h1:7077[,h2:7077]``."""
    rest = spark_master.removeprefix("spark://").split(",")[0]
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    return host or "127.0.0.1"


def rest_url_of(cluster: ClusterSpec) -> str:
    """The master's REST submission server: ``spark_rest_url``, else ``http://<master>:6066``."""
    return _url_of(cluster, cluster.settings_as(StandaloneSettings).spark_rest_url, 6066)


def ui_url_of(cluster: ClusterSpec) -> str:
    """The master's web UI: ``spark_ui_url``, else ``http://<master>:8080``."""
    return _url_of(cluster, cluster.settings_as(StandaloneSettings).spark_ui_url, 8080)


def _url_of(cluster: ClusterSpec, setting: str, port: int) -> str:
    return (setting or f"http://{master_host(cluster.spark_master)}:{port}").rstrip("/")


def submit_master(rest_url: str) -> str:
    """spark-submit's ``--master`` for a REST submission: ``spark://<rest host>:<rest port>``."""
    parsed = urllib.parse.urlsplit(rest_url)
    return f"spark://{parsed.hostname}:{parsed.port or 6066}"


def driver_id_from_output(text: str) -> str | None:
    """The driver id spark-submit printed ("Submission successfully created as driver-...")."""
    m = _DRIVER_ID_RE.search(text)
    return m.group(1) if m else None


def app_id_from_output(text: str) -> str | None:
    """The app id a driver logged ("Connected to Spark cluster with app ID app-...")."""
    m = _APP_ID_RE.search(text)
    return m.group(1) if m else None


def _failure_line(log: str) -> str | None:
    """The most telling line of a failed driver's log: the last "Caused by", else the throw."""
    lines = log.splitlines()
    for prefix in ("Caused by: ", "Exception in thread "):
        for line in reversed(lines):
            if line.startswith(prefix):
                return line.removeprefix("Caused by: ")[:_MESSAGE_CHARS]
    return None


class StandaloneClient:
    """Talks to one standalone master's REST server and web UI (and its workers' UIs)."""

    def __init__(
        self,
        rest_url: str,
        ui_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 3.0,
    ) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.ui_url = ui_url.rstrip("/")
        self._http = httpx.Client(
            transport=transport, timeout=timeout, trust_env=False, follow_redirects=True
        )
        # Immutable facts learnt once per driver: (app id, driver UI URL).
        self._driver_apps: dict[str, tuple[str, str | None]] = {}

    def close(self) -> None:
        self._http.close()

    # -- plain requests -----------------------------------------------------------------------

    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, url, **kwargs)
            return resp.json()
        except (httpx.HTTPError, ValueError):
            return None

    def master_state(self) -> dict | None:
        """The master's ``/json/`` document (workers, apps, drivers)."""
        data = self._json("GET", f"{self.ui_url}/json/")
        return data if isinstance(data, dict) else None

    def driver_state(self, driver_id: str) -> dict | None:
        """The REST server's answer for a driver; ``success`` false when it is unknown."""
        if not _SAFE_ID_RE.match(driver_id):
            return None
        data = self._json("GET", f"{self.rest_url}/v1/submissions/status/{driver_id}")
        return data if isinstance(data, dict) and "success" in data else None

    def kill_driver(self, driver_id: str) -> bool:
        """Ask the master to kill a cluster-mode driver; True when it accepted."""
        if not _SAFE_ID_RE.match(driver_id):
            return False
        data = self._json("POST", f"{self.rest_url}/v1/submissions/kill/{driver_id}")
        return isinstance(data, dict) and data.get("success") is True

    def kill_app(self, app_id: str) -> bool:
        """Kill an application through the master UI's kill form; True when it was active."""
        state = self.master_state()
        if state is None or app_id not in {a.get("id") for a in state.get("activeapps", [])}:
            return False
        try:
            page = self._http.get(f"{self.ui_url}/").text
            m = _CSRF_RE.search(page)
            form = {"id": app_id, "terminate": "true"}
            if m:
                form["csrfToken"] = m.group(1)
            resp = self._http.post(f"{self.ui_url}/app/kill/", data=form)
        except httpx.HTTPError:
            return False
        return resp.status_code < 400

    def app_state(self, app_id: str) -> str | None:
        """An app's state as the master lists it (RUNNING, WAITING, FINISHED, KILLED...)."""
        state = self.master_state()
        if state is None:
            return None
        for key in ("activeapps", "completedapps"):
            for app in state.get(key, []):
                if app.get("id") == app_id:
                    return str(app.get("state"))
        return None

    # -- the driver's own log ------------------------------------------------------------------

    def _worker(self, worker_id: str) -> dict | None:
        state = self.master_state()
        for w in (state or {}).get("workers", []):
            if w.get("id") == worker_id:
                return w
        return None

    def driver_log(self, worker_id: str, driver_id: str, *, head: bool) -> str | None:
        """The start (``head``) or the end of a driver's stderr, from its worker's UI."""
        worker = self._worker(worker_id)
        if worker is None or not worker.get("webuiaddress"):
            return None
        params: dict[str, Any] = {"driverId": driver_id, "logType": "stderr"}
        if head:
            params.update(offset=0, byteLength=_LOG_HEAD_BYTES)
        else:
            params["byteLength"] = _LOG_TAIL_BYTES
        try:
            resp = self._http.get(f"{str(worker['webuiaddress']).rstrip('/')}/log/", params=params)
        except httpx.HTTPError:
            return None
        return resp.text if resp.status_code == 200 else None

    def driver_app(
        self, driver_id: str, worker_id: str, worker_host: str | None
    ) -> tuple[str | None, str | None]:
        """(app id, driver UI URL) of a running cluster-mode driver, (None, None) until known."""
        if driver_id in self._driver_apps:
            return self._driver_apps[driver_id]
        log = self.driver_log(worker_id, driver_id, head=True)
        app_id = app_id_from_output(log or "")
        if app_id is None:
            return None, None
        port = _UI_PORT_RE.search(log or "")
        ui = f"http://{worker_host or '127.0.0.1'}:{port.group(1)}" if port else None
        if len(self._driver_apps) > 1000:
            self._driver_apps.clear()
        self._driver_apps[driver_id] = (app_id, ui)
        return app_id, ui

    def app_progress(self, ui: str, app_id: str) -> float | None:
        """Task progress of a live app from its driver's UI REST API."""
        data = self._json("GET", f"{ui}/api/v1/applications/{urllib.parse.quote(app_id)}/jobs")
        return progress_of(data) if isinstance(data, list) else None

    # -- what the engine asks ------------------------------------------------------------------

    def status(self, driver_id: str, app_id: str | None = None) -> RemoteStatus | None:
        """A cluster-mode driver's state, with its app id, UI and progress where known."""
        data = self.driver_state(driver_id)
        if data is None:
            return None
        if data.get("success") is not True:
            return RemoteStatus(state="unknown", app_id=app_id, message=data.get("message"))
        raw = str(data.get("driverState") or "UNKNOWN")
        state = DRIVER_STATES.get(raw, "unknown")
        worker_id = str(data.get("workerId") or "")
        worker_host = str(data.get("workerHostPort") or "").rsplit(":", 1)[0] or None
        ui = None
        progress = None
        if worker_id and state != "pending":
            found_app, ui = self.driver_app(driver_id, worker_id, worker_host)
            app_id = found_app or app_id
            if state == "running" and ui and app_id:
                progress = self.app_progress(ui, app_id)
        message = None
        if state == "failed":
            message = f"Spark driver {driver_id} ended {raw}"
            detail = data.get("message")
            if not detail and worker_id:
                detail = _failure_line(self.driver_log(worker_id, driver_id, head=False) or "")
            if detail:
                message += f": {str(detail)[:_MESSAGE_CHARS]}"
        elif state == "killed":
            message = f"Spark driver {driver_id} was killed"
        return RemoteStatus(
            state=state, app_id=app_id, tracking_url=ui, progress=progress, message=message
        )
