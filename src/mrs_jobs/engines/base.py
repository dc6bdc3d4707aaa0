"""The contract every engine adapter satisfies.

Engines know nothing of HTTP or the database: they turn a job's MRS arguments into an argv
vector and an environment, and read an application id and progress back from a running job's
working directory or the engine's own status endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mrs_jobs.runtime.launch import LaunchSpec

__all__ = [
    "REMOTE_TERMINAL",
    "ClusterSpec",
    "Engine",
    "EngineRefused",
    "JobSpec",
    "LaunchSpec",
    "Observation",
    "RemoteStatus",
]


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
    extra: dict[str, str] = field(default_factory=dict)


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


class Engine(Protocol):
    """One engine family (Spark, Flink, MapReduce, DistCp)."""

    job_types: frozenset[str]

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        """Build the launch; raise EngineRefused with a user-facing reason when impossible."""
        ...

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        """Read app id / progress of a running job; must be cheap and never raise."""
        ...

    # Optional, looked up with getattr by the supervisor:
    #
    # def cancel(
    #     self, job: JobSpec, workdir: Path, launch: LaunchSpec, cluster: ClusterSpec | None = None
    # ) -> bool:
    #     """Cancel the application in its engine (remote clusters); True when asked.
    #     ``cluster`` (as configured now) says where to ask; prefer it to files in ``workdir``,
    #     which the job's user may write."""
    #
    # def status(
    #     self,
    #     job: JobSpec,
    #     workdir: Path,
    #     launch: LaunchSpec,
    #     app_id: str | None,
    #     launcher_id: str | None,
    #     cluster: ClusterSpec | None = None,
    # ) -> RemoteStatus | None:
    #     """State of a detached application (``launch.detached``) once its launcher exited;
    #     ``app_id``/``launcher_id`` are those the supervisor recorded from ``observe`` (e.g.
    #     a standalone driver id as launcher_id). None when the engine cannot be reached right
    #     now (asked again next pass). Never raises."""
