"""One Spark History Server per cluster: the pages of its ended local Spark jobs.

A local driver's UI dies with its job, so when a local Spark job ends its event log is
hard-linked into the cluster's history log directory (``<data>/clusters/<id>/spark-history/
logs``, next to the SQL server's directory) and its ``tracking_url`` becomes a stable link to
this service (``<endpoint>/spark-history/<cluster>/<app id>``), which starts the cluster's
``HistoryServer`` on demand and redirects to the application's page there.

The server runs like the cluster's Thrift server (``thrift.py``): under the shim with
``MRS_JOBS_SERVICE`` (the orphan sweep leaves it alone), boxed with only its log directory to
read besides the system and the engine, found again after a restart through ``state.json``,
and stopped when nothing used it for ``idle_seconds`` (and when the service stops). Its UI
listens on loopback only, with a small heap (``SPARK_DAEMON_MEMORY``).

The job's user may own its directory: the event log is opened without following a symlink and
linked only when it is a regular file (the link is made to the opened file itself), and the
link goes when the job is purged, only if it is still that job's file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.engines.base import EngineRefused, LaunchSpec
from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.kit import free_port, launch_env
from mrs_jobs.engines.spark_args import java_opt_path
from mrs_jobs.engines.spark_progress import EVENTS_DIR, find_event_log_app
from mrs_jobs.runtime import jobdir
from mrs_jobs.runtime.box import BoxPolicy
from mrs_jobs.runtime.process import ProcessHandle, ProcessTable, kill_run, read_start_ticks

__all__ = [
    "HISTORY_DIR",
    "LOGS_DIR",
    "ROUTE",
    "HistoryEndpoint",
    "HistoryServers",
    "history_url",
    "link_event_log",
    "unlink_event_log",
    "valid_ids",
]

log = logging.getLogger(__name__)

HISTORY_DIR = "spark-history"  # in the cluster's directory
LOGS_DIR = "logs"  # the server's log directory: one hard link per ended job
ROUTE = "/spark-history"  # the service's stable link: ROUTE/<cluster id>/<app id>
SERVICE_VARIABLE = "MRS_JOBS_SERVICE"  # as thrift.py: the orphan sweep leaves it alone
_SERVER_CLASS = "org.apache.spark.deploy.history.HistoryServer"
_STATE_FILE = "state.json"
_CONF_FILE = "history.conf"
_INPROGRESS = ".inprogress"
_CLUSTER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# No dots: Spark reads a dotted file name's last part as a compression codec.
_APP_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_REST_TIMEOUT_S = 2.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LOG4J = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


def valid_ids(cluster_id: str, app_id: str) -> bool:
    """Whether both ids have the shapes this module builds paths and URLs from."""
    return bool(_CLUSTER_ID_RE.match(cluster_id) and _APP_ID_RE.match(app_id))


def history_url(base: str, cluster_id: str, app_id: str) -> str:
    """The stable link of an ended application: the service's own route, not the server's
    port (which changes when an idle server is started again)."""
    return f"{base.rstrip('/')}{ROUTE}/{cluster_id}/{app_id}"


def link_event_log(events: Path, name: str, logs: Path) -> bool:
    """Hard-link ``events/name`` into ``logs`` under the same name; True when the link is (or
    already was) that file. Never through a symlink: the directory and the file are opened
    with ``O_NOFOLLOW``, the file must be regular, and the link is made to the opened file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        dir_fd = os.open(events, flags | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        fd = os.open(name, flags | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return False
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return False
        target = logs / name
        try:
            # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N links the opened file itself (a dir
            # fd makes Python call linkat, not link, which would not follow the proc link).
            logs_fd = os.open(logs, flags | os.O_DIRECTORY)
            try:
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=logs_fd, follow_symlinks=True)
            finally:
                os.close(logs_fd)
        except FileExistsError:
            pass  # ended twice (a restart between link and record): fine if it is this file
        except OSError as exc:
            log.warning("spark_history.link_failed", extra={"path": str(target), "error": exc})
            return False
        return _same_file(target, st)
    finally:
        os.close(fd)


def unlink_event_log(events: Path, logs: Path, app_id: str) -> bool:
    """Remove the job's link from ``logs`` (either name), only while it is the same file as
    the job's own event log (another job may have ended with the same app id)."""
    removed = False
    for name in (app_id, app_id + _INPROGRESS):
        try:
            own = os.stat(events / name, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(own.st_mode) and _same_file(logs / name, own):
            (logs / name).unlink(missing_ok=True)
            removed = True
    return removed


def _same_file(path: Path, st: os.stat_result) -> bool:
    try:
        other = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(other.st_mode) and (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)


@dataclass(frozen=True)
class HistoryEndpoint:
    port: int

    def page(self, app_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/history/{app_id}/jobs/"

    def knows(self, app_id: str, timeout: float = _REST_TIMEOUT_S) -> bool:
        """Whether the server has read the application's log (its REST API knows it)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/applications/{app_id}"
        try:
            with _NO_PROXY.open(url, timeout=timeout) as resp:
                data = json.loads(resp.read(1_000_000))
        except (OSError, ValueError, urllib.error.HTTPError):
            return False
        return isinstance(data, dict) and data.get("id") == app_id


class HistoryServers:
    """The history servers of this installation's clusters, and their log directories."""

    def __init__(
        self,
        base_dir: Path,
        marker: str,
        *,
        base_url: str | None = None,
        idle_seconds: float = 300.0,
        java_home: str | None = None,
        spark_home: str | None = None,
        memory: str = "256m",
        box: BoxPolicy | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.marker = marker
        self.base_url = base_url  # None: no link can be given (no HTTP server known)
        self.idle_seconds = idle_seconds
        self.java_home = java_home
        self.spark_home = spark_home
        self.memory = memory
        self.box = box
        self.table = ProcessTable()
        self.clock = time.monotonic
        self._last_used: dict[str, float] = {}
        self._lock = threading.Lock()

    def directory(self, cluster_id: str) -> Path:
        if not _CLUSTER_ID_RE.match(cluster_id):
            raise ValueError(f"not a cluster id: {cluster_id!r}")
        return self.base_dir / cluster_id / HISTORY_DIR

    def logs(self, cluster_id: str) -> Path:
        return self.directory(cluster_id) / LOGS_DIR

    # -- the jobs' event logs ----------------------------------------------------------------
    def keep(self, cluster_id: str, workdir: Path, app_id: str | None) -> str | None:
        """Link the ended job's event log into the cluster's history; its stable URL, or None
        (no event log, an odd app id, no endpoint to link to)."""
        if self.base_url is None or not _CLUSTER_ID_RE.match(cluster_id):
            return None
        events = Path(workdir) / EVENTS_DIR
        found = find_event_log_app(events)
        if found is None or not _APP_ID_RE.match(found[0]) or (app_id and found[0] != app_id):
            return None
        name = found[0] + (_INPROGRESS if found[1] else "")
        logs = self.logs(cluster_id)
        logs.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not link_event_log(events, name, logs):
            return None
        self._last_used[cluster_id] = self.clock()
        return history_url(self.base_url, cluster_id, found[0])

    def forget(self, cluster_id: str, workdir: Path, app_id: str | None) -> bool:
        """Remove a purged job's link; True when there was one."""
        if not app_id or not _APP_ID_RE.match(app_id) or not _CLUSTER_ID_RE.match(cluster_id):
            return False
        return unlink_event_log(Path(workdir) / EVENTS_DIR, self.logs(cluster_id), app_id)

    def has_app(self, cluster_id: str, app_id: str) -> bool:
        if not valid_ids(cluster_id, app_id):
            return False
        logs = self.logs(cluster_id)
        for name in (app_id, app_id + _INPROGRESS):
            try:
                if stat.S_ISREG(os.stat(logs / name, follow_symlinks=False).st_mode):
                    return True
            except OSError:
                continue
        return False

    def page(self, cluster_id: str, app_id: str, wait_seconds: float) -> str | None:
        """The application's page on the cluster's server (started if need be), once the
        server knows it; None when it does not within ``wait_seconds``."""
        endpoint = self.ensure(cluster_id)
        deadline = self.clock() + wait_seconds
        while True:
            self._last_used[cluster_id] = self.clock()
            if endpoint.knows(app_id):
                return endpoint.page(app_id)
            if self.clock() >= deadline or self.running(cluster_id) is None:
                return None
            time.sleep(0.5)

    # -- the servers -------------------------------------------------------------------------
    def ensure(self, cluster_id: str) -> HistoryEndpoint:
        """The cluster's server, started if it is not running (it may still be starting)."""
        with self._lock:
            running = self.running(cluster_id)
            if running is not None:
                return running
            return self._start(cluster_id)

    def running(self, cluster_id: str) -> HistoryEndpoint | None:
        state = self._live_state(cluster_id)
        return HistoryEndpoint(int(state["port"])) if state is not None else None

    def _live_state(self, cluster_id: str) -> dict | None:
        directory = self.directory(cluster_id)
        state = jobdir.read_json(directory / _STATE_FILE)
        if not isinstance(state, dict) or (directory / jobdir.EXIT).exists():
            return None
        try:
            handle = ProcessHandle(int(state["pid"]), int(state["start_ticks"]))
            int(state["port"])
        except (KeyError, TypeError, ValueError):
            return None
        if read_start_ticks(handle.pid) != handle.start_ticks:
            return None
        return state if self.table.is_running(handle) else None

    def known_clusters(self) -> list[str]:
        """Clusters whose server this installation started and that is still running."""
        if not self.base_dir.is_dir():
            return []
        return [
            d.name
            for d in self.base_dir.iterdir()
            if _CLUSTER_ID_RE.match(d.name) and self._live_state(d.name) is not None
        ]

    def stop_idle(self, idle_seconds: float) -> list[str]:
        """Stop servers nothing used (no page asked, no job ended) for ``idle_seconds``; 0
        stops every one (the service stops). Returns the clusters stopped."""
        now = self.clock()
        stopped = []
        with self._lock:
            for cluster_id in self.known_clusters():
                since = self._last_used.setdefault(cluster_id, now)
                if now - since >= idle_seconds:
                    self.stop(cluster_id)
                    self._last_used.pop(cluster_id, None)
                    stopped.append(cluster_id)
                    log.info("spark_history.stopped", extra={"cluster_id": cluster_id})
        return stopped

    def stop(self, cluster_id: str) -> None:
        state = self._live_state(cluster_id)
        if state is not None:
            kill_run(ProcessHandle(int(state["pid"]), int(state["start_ticks"])), 5.0)
        (self.directory(cluster_id) / _STATE_FILE).unlink(missing_ok=True)

    def _start(self, cluster_id: str) -> HistoryEndpoint:
        java_home = find_java_home(self.java_home)
        spark_home = find_spark_home(self.spark_home)
        if java_home is None or spark_home is None:
            raise EngineRefused("the Spark history server needs Java and Spark (pyspark)")
        directory = self.directory(cluster_id)
        for sub in (LOGS_DIR, "tmp", "conf"):
            (directory / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        port = free_port()
        conf = {
            "spark.history.fs.logDirectory": self.logs(cluster_id).as_uri(),
            "spark.history.ui.port": str(port),
            "spark.history.fs.update.interval": "2s",
            "spark.history.retainedApplications": "10",
            "spark.history.fs.cleaner.enabled": "false",  # links go with their jobs
        }
        (directory / "conf" / _CONF_FILE).write_text("".join(f"{k}={v}\n" for k, v in conf.items()))
        (directory / "conf" / "log4j2.properties").write_text(_LOG4J)
        argv = [
            str(Path(spark_home) / "bin" / "spark-class"),
            _SERVER_CLASS,
            "--properties-file",
            str(directory / "conf" / _CONF_FILE),
        ]
        env = launch_env(directory, directory / "tmp", java_home) | {
            "SPARK_HOME": spark_home,
            "SPARK_CONF_DIR": str(directory / "conf"),
            "SPARK_LOCAL_IP": "127.0.0.1",  # the UI listens on loopback only
            "SPARK_DAEMON_MEMORY": self.memory,
            "SPARK_DAEMON_JAVA_OPTS": java_opt_path("-Djava.io.tmpdir", directory / "tmp")
            + " -XX:-UsePerfData",
            SERVICE_VARIABLE: f"{self.marker}:{cluster_id}",
        }
        handle = self._launch(directory, LaunchSpec(argv=argv, env=env, cwd=str(directory)))
        state = {"pid": handle.pid, "start_ticks": handle.start_ticks, "port": port}
        jobdir.write_json_atomic(directory / _STATE_FILE, state)
        self._last_used[cluster_id] = self.clock()
        fields = {"cluster_id": cluster_id, "port": port, "pid": handle.pid}
        log.info("spark_history.started", extra=fields)
        return HistoryEndpoint(port)

    def _launch(self, directory: Path, spec: LaunchSpec) -> ProcessHandle:
        """Start the server under a shim, in a box that shows only its log directory besides
        the system and the engine (its own directory is where it writes)."""
        box = None
        if self.box is not None:
            logs = (str(directory / LOGS_DIR),)
            box = self.box.for_run(directory, spec.argv, spec.env, read_roots=logs)
        bwrap = self.box.bwrap if self.box is not None else None
        return self.table.launch(directory, spec, box=box, bwrap=bwrap)
