"""The contract every engine adapter satisfies.

Engines know nothing of HTTP or the database: they turn a job's MRS arguments into an argv
vector and an environment, and read an application id and progress back from a running job's
working directory or the engine's own status endpoints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mrs_jobs.domain.clusterconfig import ClusterSettings, LocalSettings, settings_of
from mrs_jobs.domain.diagnostics import engine_error
from mrs_jobs.fsutil import read_tail
from mrs_jobs.runtime import jobdir
from mrs_jobs.runtime.launch import LaunchSpec

__all__ = [
    "ENGINE_LOG_CAP",
    "REMOTE_TERMINAL",
    "ClusterSpec",
    "EngineAdapter",
    "EngineRefused",
    "JobSpec",
    "LaunchSpec",
    "Observation",
    "RemoteStatus",
    "Usage",
    "call_hook",
]

_LOG_TAIL = 256 * 1024  # how much of a log's end the default diagnostics read
ENGINE_LOG_CAP = 64 * 1024  # how much of a remote application's log is pulled in

log = logging.getLogger(__name__)
T = TypeVar("T")
S = TypeVar("S", bound=ClusterSettings)


class EngineRefused(Exception):
    """The job's arguments cannot be turned into a launch (bad option, file outside roots...).

    The message is shown to the user, so it must never contain a secret value.
    """


@dataclass(frozen=True)
class JobSpec:
    """What an engine needs to know of one job."""

    job_id: str
    job_type: str
    job_name: str
    arguments: list[str]
    properties: dict[str, str]


@dataclass(frozen=True)
class ClusterSpec:
    """Where a cluster's engines run and with which local homes."""

    cluster_id: str
    kind: str = "local"  # local | spark-standalone | yarn | k8s | flink-remote
    spark_master: str = "local[2]"
    # Jobs read local paths under the input and output roots and write under the output roots
    # only; with neither, any path but the forbidden ones (the single-user default).
    input_roots: tuple[str, ...] = ()
    output_roots: tuple[str, ...] = ()
    # The service's own files (data dir, key files, database): never named by a job, nor a
    # directory holding them, whatever the roots (engines/paths.py).
    forbidden: tuple[str, ...] = ()
    java_home: str | None = None
    spark_home: str | None = None
    pyspark_python: str | None = None
    settings: ClusterSettings = field(default_factory=LocalSettings)
    # A stored config to parse into ``settings`` (tests and tools build specs this way).
    extra: InitVar[Mapping[str, Any] | None] = None

    def __post_init__(self, extra: Mapping[str, Any] | None) -> None:
        if extra is not None:
            object.__setattr__(self, "settings", settings_of(self.kind, extra))

    def settings_as(self, model: type[S]) -> S:
        """The settings of a kind (its defaults on a cluster of another kind)."""
        return self.settings if isinstance(self.settings, model) else model()


@dataclass(frozen=True)
class Observation:
    """What an engine could read of a running job; None/0 where not known yet."""

    app_id: str | None = None
    launcher_id: str | None = None
    tracking_url: str | None = None
    progress: float | None = None  # 0-100
    running: bool = False  # the engine application has really started


REMOTE_TERMINAL = frozenset({"succeeded", "failed", "killed"})


@dataclass(frozen=True)
class RemoteStatus:
    """A detached application's state as its engine reports it (master, RM, API server...).

    ``state`` is one of ``pending`` (accepted, not started), ``running``, ``succeeded``,
    ``failed``, ``killed``, or ``unknown`` (the engine answered but the application is not
    known to it, e.g. a driver that was never registered). ``message`` is shown to the user
    as the failure reason; it must never contain a secret.
    """

    state: str
    app_id: str | None = None
    tracking_url: str | None = None
    progress: float | None = None  # 0-100
    message: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state in REMOTE_TERMINAL


@dataclass(frozen=True)
class Usage:
    """What a job consumed, as far as can be told (None: not known). ``cpu_seconds``: CPU time
    its processes used (on YARN: the vcore-seconds allocated to its application);
    ``peak_memory_mb``: the largest resident size one of its processes reached (on YARN, which
    reports no peak: the application's average allocation, memory MB-seconds over elapsed
    seconds). docs/api.md "What a job used" says where each figure comes from."""

    cpu_seconds: float | None = None
    peak_memory_mb: int | None = None


class EngineAdapter:
    """One engine family (Spark, Flink, MapReduce, DistCp...): the base every adapter extends.

    Every hook the supervisor calls is declared here with a typed no-op default, so an adapter
    overrides only what its engine has and a type checker sees any drift. The supervisor calls
    the hooks through :func:`call_hook`, the one place that catches and logs a failing hook, so
    a hook may raise: its failure costs the pass nothing but a log line.
    """

    #: The MRS job types this engine runs.
    job_types: frozenset[str] = frozenset()
    #: Files (or directories) of a job directory that may hold secrets: removed once the job
    #: has ended (the launch record is always among them).
    secret_files: tuple[str, ...] = ()

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        """Build the launch; raise EngineRefused with a user-facing reason when impossible."""
        raise NotImplementedError

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        """Read app id / progress of a running job; must be cheap."""
        return Observation()

    def status(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        launcher_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> RemoteStatus | None:
        """State of a detached application (``launch.detached``) once its launcher exited;
        ``app_id``/``launcher_id`` are those the supervisor recorded from ``observe`` (e.g. a
        standalone driver id as launcher_id). None when the engine cannot be reached right now
        (asked again next pass). ``cluster`` (as configured now) says where to ask; prefer it
        to files in ``workdir``, which the job's user may write."""
        return None

    def cancel(
        self, job: JobSpec, workdir: Path, launch: LaunchSpec, cluster: ClusterSpec | None = None
    ) -> bool:
        """Cancel the application in its engine (remote clusters); True when asked."""
        return False

    def available(self) -> bool:
        """Whether the engine is installed here; else submit answers with the component's
        code."""
        return True

    def housekeeping(self, live_jobs: dict[str, set[str]], idle_seconds: float) -> None:
        """Periodic upkeep (stop idle services): ``live_jobs`` maps a cluster id to the types
        of its live jobs."""

    def diagnostics(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> str | None:
        """Why an ended job failed, in the engine's words; None: nothing. By default what
        :func:`~mrs_jobs.domain.diagnostics.engine_error` finds at the end of its logs (the
        caller masks secrets and caps the text)."""
        for name in (jobdir.STDERR, jobdir.STDOUT):
            found = engine_error(read_tail(workdir / name, _LOG_TAIL))
            if found:
                return found
        return None

    def engine_logs(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> str | None:
        """The ended application's own log from its cluster (a remote driver's or application
        master's, a remote jobmanager's exceptions), at most about :data:`ENGINE_LOG_CAP`
        bytes; None when there is nothing to add. Called once, when a detached application
        has ended; the caller masks secrets and appends it to the job's ``stderr.log``."""
        return None

    def ended_tracking_url(
        self,
        job_id: str,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> str | None:
        """Where the ended job's application can still be seen, once its live UI is gone (a
        local Spark driver's event log kept for the cluster's history server); None keeps the
        tracking URL the job had. Called once, before its ending is recorded."""
        return None

    def forget(self, job_id: str, workdir: Path, app_id: str | None, cluster_id: str) -> None:
        """Drop what the engine kept of a purged job outside its directory (a history link);
        called before the job's directory is removed."""

    def usage(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None = None,
        cluster: ClusterSpec | None = None,
        local: Usage | None = None,
    ) -> Usage:
        """What the job consumed, asked once as it ends. ``local`` is what its processes here
        used (the shim measured it); by default that is the answer. An engine whose
        application runs on a cluster answers with the cluster's figures (Usage() when the
        cluster tells none)."""
        return local or Usage()

    @property
    def follows_detached(self) -> bool:
        """True when the engine can follow a detached application (it has ``status``)."""
        return type(self).status is not EngineAdapter.status

    def refuse_other_types(self, job: JobSpec, what: str) -> None:
        """EngineRefused unless ``job`` is of one of this engine's types."""
        if job.job_type not in self.job_types:
            raise EngineRefused(f"the {what} engine does not run {job.job_type} jobs")


_reported: set[tuple[str, str | None]] = set()


def call_hook(
    hook: Callable[..., T], *args: Any, default: T, job_id: str | None = None, **kwargs: Any
) -> T:
    """``hook(*args, **kwargs)``, or ``default`` when it raises: the one place an engine hook's
    failure is caught, logged (once per hook and job, with its traceback) and survived."""
    try:
        return hook(*args, **kwargs)
    except Exception:
        key = (hook.__qualname__, job_id)
        if key not in _reported:
            if len(_reported) > 10_000:
                _reported.clear()
            _reported.add(key)
            log.exception("engine.hook_failed", extra={"hook": key[0], "job_id": job_id})
        return default
