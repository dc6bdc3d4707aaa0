"""Whether jobs run boxed here, what no box shows, and the checks made before serving.

The box itself is ``runtime/box.py``; this module is the installation's policy: boxes are on
by default where the host can make one; where it cannot (or ``box_jobs=false``) the service
says so at start-up and refuses to serve more than one project unless the operator accepts the
risk with ``allow_uncontained_jobs``. A configured job user is checked at start-up too: it must
be able to start the engines' programs from where they are installed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.engines.registry import service_paths
from mrs_jobs.runtime.box import BoxPolicy, box_support, bwrap_path
from mrs_jobs.runtime.identity import JobUser, resolve_user
from mrs_jobs.settings import Settings

__all__ = [
    "Containment",
    "UncontainedRefused",
    "check_job_user",
    "check_serving",
    "containment",
    "hidden_paths",
    "startup_check",
]

log = logging.getLogger(__name__)


class UncontainedRefused(RuntimeError):
    """Serving would put mutually untrusting projects' jobs together without a box."""


@dataclass(frozen=True)
class Containment:
    """The box policy in force (None = jobs are not boxed) and why not, when they are not."""

    policy: BoxPolicy | None
    reason: str | None = None


def hidden_paths(settings: Settings) -> tuple[str, ...]:
    """What no box shows: the service's own files (``service_paths``), as named and resolved."""
    out: list[str] = []
    for path in service_paths(settings):
        for candidate in (path, os.path.realpath(path)):
            if candidate not in out:
                out.append(candidate)
    return tuple(out)


def _job_uid(settings: Settings) -> int | None:
    configured = (settings.job_user or "").strip()
    if not configured:
        return None
    try:
        user = resolve_user(configured)
    except ValueError:
        return None
    return None if user.uid == os.geteuid() else user.uid


def containment(settings: Settings) -> Containment:
    """Decide once per process whether jobs are boxed (a real box is tried)."""
    if not settings.box_jobs:
        return Containment(None, "box_jobs is off (MRS_JOBS_BOX_JOBS=false)")
    bwrap = bwrap_path()
    reason = box_support(bwrap, _job_uid(settings))
    if reason is not None or bwrap is None:
        return Containment(None, reason)
    return Containment(BoxPolicy(bwrap=bwrap, hidden=hidden_paths(settings)))


def check_serving(settings: Settings, found: Containment, project_count: int) -> None:
    """Log what isolation jobs get; refuse several projects without a box unless allowed."""
    if found.policy is not None:
        log.info("jobs.boxed", extra={"bwrap": found.policy.bwrap})
        return
    log.warning(
        "jobs.not_boxed",
        extra={
            "reason": found.reason,
            "risk": "every job can read the service's data directory, keys and database "
            "and other jobs' files",
        },
    )
    if project_count > 1 and not settings.allow_uncontained_jobs:
        raise UncontainedRefused(
            f"jobs cannot be boxed here ({found.reason}) and this store holds {project_count} "
            "projects: install bubblewrap (apt-get install bubblewrap) and allow user "
            "namespaces, or set MRS_JOBS_ALLOW_UNCONTAINED_JOBS=true to accept that every "
            "project's jobs can read every other project's secrets (docs/security.md)"
        )


def check_job_user(settings: Settings, found: Containment, java: str | None) -> None:
    """A configured job user must be able to start Python and Java as installed here."""
    configured = (settings.job_user or "").strip()
    if not configured:
        return
    try:
        user: JobUser = resolve_user(configured)
    except ValueError as exc:
        raise UncontainedRefused(f"MRS_JOBS_JOB_USER: {exc}") from None
    if user.uid == os.geteuid():
        return
    if os.geteuid() != 0:
        raise UncontainedRefused(f"MRS_JOBS_JOB_USER={configured} needs the service to run as root")
    programs = [[sys.executable, "-c", "import pyspark"]]
    if java:
        programs.append([java, "-version"])
    for argv in programs:
        try:
            done = subprocess.run(
                argv,
                user=user.uid,
                group=user.gid,
                extra_groups=[],
                capture_output=True,
                timeout=60,
                cwd="/",
                check=False,
            )
            failed = done.returncode != 0
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        except (OSError, subprocess.SubprocessError) as exc:
            failed, detail = True, [str(exc)]
        if failed:
            raise UncontainedRefused(
                f"the job user {user.name!r} cannot run {argv[0]} ({detail[0]}): install the "
                "engines where that user can read and execute them (the Python environment "
                "and Java), or choose another MRS_JOBS_JOB_USER"
            )


def startup_check(settings: Settings, project_count: int) -> Containment:
    """What a starting supervisor boxes with; raises UncontainedRefused when it must not run."""
    from mrs_jobs.engines.java import find_java_home

    found = containment(settings)
    check_serving(settings, found, project_count)
    java_home = find_java_home(settings.java_home)
    check_job_user(settings, found, str(Path(java_home) / "bin" / "java") if java_home else None)
    return found
