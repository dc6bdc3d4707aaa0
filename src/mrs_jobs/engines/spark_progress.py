"""Reading a running Spark application back: its id from the event log, its UI's port.

The driver writes its event log into the job's directory (``spark.eventLog.dir``), whose entry
name is the application id; progress comes from that log's task counts (``spark_events``).
The driver's UI REST API (``/api/v1/applications/<id>/jobs``) is asked only by drivers on a
standalone cluster (``progress_of``) and, once per long local job, to find the UI's port when
Spark moved on from the one chosen (``rest_jobs``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.engines.base import LaunchSpec, Observation
from mrs_jobs.engines.spark_events import EventLogProgress
from mrs_jobs.runtime import jobdir

__all__ = [
    "EVENTS_DIR",
    "LocalDrivers",
    "find_event_log_app",
    "progress_of",
    "rest_jobs",
    "ui_port_of",
]

_SAFE_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_CODEC_SUFFIXES = (".lz4", ".lzf", ".snappy", ".zstd")
EVENTS_DIR = "events"
_REST_TIMEOUT = 0.3
_PORT_PROBES = 16  # Spark's default spark.port.maxRetries
# A local job's UI port is checked once, this long after its application started: a short
# job never pays for the REST stack its first answer warms up in the driver (bench P4).
UI_PROBE_AFTER_S = 30.0
_WATCHED_MAX = 1000


_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def rest_jobs(port: int, app_id: str, timeout: float) -> tuple[str, list | None]:
    """('ok', jobs) | ('other', None) when something else answers | ('down', None)."""
    url = f"http://127.0.0.1:{port}/api/v1/applications/{urllib.parse.quote(app_id)}/jobs"
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as resp:
            data = json.loads(resp.read(4_000_000))
    except urllib.error.HTTPError:
        return "other", None
    except (OSError, ValueError):
        return "down", None
    if not isinstance(data, list):
        return "other", None
    return "ok", data


def progress_of(jobs: list) -> float | None:
    """Progress from a driver UI's ``/jobs`` list (standalone cluster-mode drivers), in
    percent: completed (or skipped) tasks over the tasks of all jobs, only while one runs
    (between jobs the next one's tasks are not known: None). The tasks a failed job never ran
    are not counted: they will not run."""
    if not any(isinstance(j, dict) and j.get("status") == "RUNNING" for j in jobs):
        return None
    total = done = 0
    for j in jobs:
        if not isinstance(j, dict):
            continue
        finished = _count(j, "numCompletedTasks") + _count(j, "numSkippedTasks")
        done += finished
        total += finished if j.get("status") == "FAILED" else _count(j, "numTasks")
    if total <= 0:
        return 0.0
    return round(100.0 * min(done, total) / total, 1)


def _count(job: dict, key: str) -> int:
    try:
        return max(0, int(job.get(key, 0) or 0))
    except (TypeError, ValueError):
        return 0


def ui_port_of(launch: LaunchSpec, workdir: Path) -> int | None:
    """The UI port build() chose: from the argv, else from <workdir>/engine.json."""
    argv = launch.argv
    for i, arg in enumerate(argv[:-1]):
        if arg == "--conf" and argv[i + 1].startswith("spark.ui.port="):
            with contextlib.suppress(ValueError):
                return int(argv[i + 1].partition("=")[2])
    try:
        return int(jobdir.read_engine_record(workdir)["ui_port"])
    except (KeyError, TypeError, ValueError):
        return None


def _app_id_from_name(name: str) -> tuple[str, bool] | None:
    live = name.endswith(".inprogress")
    if live:
        name = name[: -len(".inprogress")]
    for suffix in _CODEC_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return (name, live) if name and _SAFE_ID_RE.match(name) else None


def find_event_log_app(events: Path) -> tuple[str, bool] | None:
    """(application id, still running) from Spark's event log directory, newest entry first.

    Handles a single-file log (``local-123``, ``local-123.inprogress``, with an optional
    codec suffix such as ``.zstd``) and Spark 4's rolling log directory
    ``eventlog_v2_local-123/`` whose ``appstatus_local-123[.inprogress]`` marks liveness.
    """
    try:
        entries = list(os.scandir(events))
    except OSError:
        return None
    best: tuple[int, str, bool] | None = None
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            mtime = e.stat(follow_symlinks=False).st_mtime_ns
            if e.name.startswith("eventlog_v2_") and e.is_dir(follow_symlinks=False):
                app_id = e.name[len("eventlog_v2_") :]
                if not _SAFE_ID_RE.match(app_id):
                    continue
                live = any(
                    n.startswith("appstatus_") and n.endswith(".inprogress")
                    for n in os.listdir(e.path)
                )
                parsed: tuple[str, bool] | None = (app_id, live)
            elif e.is_file(follow_symlinks=False):
                parsed = _app_id_from_name(e.name)
            else:
                parsed = None
        except OSError:
            continue
        if parsed is not None and (best is None or mtime > best[0]):
            best = (mtime, parsed[0], parsed[1])
    return None if best is None else (best[1], best[2])


@dataclass
class _Watch:
    app_id: str
    log: EventLogProgress
    since: float
    port: int | None
    probed: bool = False


class LocalDrivers:
    """The local drivers observe() reads: each one's event-log position and UI port."""

    def __init__(self, probe_after_s: float = UI_PROBE_AFTER_S) -> None:
        self.probe_after_s = probe_after_s
        self._watched: dict[str, _Watch] = {}

    def observe(self, workdir: Path, launch: LaunchSpec) -> Observation:
        """App id, UI and task progress of a driver whose event log is in ``workdir``."""
        found = find_event_log_app(workdir / EVENTS_DIR)
        if found is None:
            return Observation()
        app_id, live = found
        key = str(workdir)
        watch = self._watched.get(key)
        if watch is None or watch.app_id != app_id:
            if len(self._watched) >= _WATCHED_MAX:  # entries of jobs no longer observed
                self._watched.clear()
            log = EventLogProgress(workdir / EVENTS_DIR / f"{app_id}.inprogress")
            watch = _Watch(app_id, log, time.monotonic(), ui_port_of(launch, workdir))
            self._watched[key] = watch
        progress = None
        if live:
            progress = watch.log.read()
            if not watch.probed and time.monotonic() - watch.since >= self.probe_after_s:
                watch.probed = True
                watch.port = find_ui_port(app_id, watch.port)
        else:
            del self._watched[key]
        url = f"http://127.0.0.1:{watch.port}" if watch.port is not None else None
        return Observation(app_id=app_id, tracking_url=url, progress=progress, running=True)


def find_ui_port(app_id: str, port: int | None) -> int | None:
    """The port of the app's UI: the one chosen, or one Spark moved on to (it tries the next
    ones when a port is taken); the chosen one when none answers as this app's UI."""
    if port is None:
        return None
    deadline = time.monotonic() + 2 * _REST_TIMEOUT
    for candidate in range(port, port + _PORT_PROBES + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0.01:
            break
        status, _ = rest_jobs(candidate, app_id, min(_REST_TIMEOUT, remaining))
        if status == "ok":
            return candidate
    return port
