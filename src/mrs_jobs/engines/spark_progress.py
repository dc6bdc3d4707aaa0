"""Reading a running Spark application back: its id from the event log, progress from its UI.

The driver writes its event log into the job's directory (``spark.eventLog.dir``), whose entry
name is the application id; the driver's UI REST API (``/api/v1/applications/<id>/jobs``)
gives task counts for progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from mrs_jobs.engines.base import LaunchSpec
from mrs_jobs.runtime import jobdir

__all__ = [
    "EVENTS_DIR",
    "find_event_log_app",
    "progress_of",
    "rest_jobs",
    "ui_port_of",
]

_SAFE_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_CODEC_SUFFIXES = (".lz4", ".lzf", ".snappy", ".zstd")
EVENTS_DIR = "events"


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
    """Completed (or skipped) tasks over all tasks of all jobs, in percent, at most 99."""
    total = done = 0
    for j in jobs:
        if not isinstance(j, dict):
            continue
        total += int(j.get("numTasks", 0) or 0)
        done += int(j.get("numCompletedTasks", 0) or 0) + int(j.get("numSkippedTasks", 0) or 0)
    if total <= 0:
        return 0.0
    return min(99.0, round(100.0 * done / total, 1))


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
