"""What every part of the supervisor shares: its store, settings, engines, keys, box policy,
identity and process table. Built once by :class:`~mrs_jobs.supervisor.loop.Supervisor`."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.runtime.process import ProcessTable
from mrs_jobs.secretbox import SecretBox
from mrs_jobs.settings import Settings, installation_id
from mrs_jobs.store import Store
from mrs_jobs.supervisor.containment import Containment

__all__ = ["INSTANCE_VARIABLE", "SupervisorContext"]

#: Every process of a job launched here carries ``MRS_JOBS_INSTANCE=<installation id>``.
INSTANCE_VARIABLE = "MRS_JOBS_INSTANCE"


@dataclass
class SupervisorContext:
    store: Store
    settings: Settings
    registry: EngineRegistry
    secrets: SecretBox  # opens the jobs' sealed secret values for their engines
    boxes: Containment
    table: ProcessTable = field(default_factory=ProcessTable)
    instance: str = ""  # the installation id: the marker value on our jobs' processes
    id: str = ""  # this supervisor in the store: host-instance, stable across restarts

    def __post_init__(self) -> None:
        self.instance = self.instance or installation_id(self.settings)
        self.id = self.id or f"{socket.gethostname()}-{self.instance}"

    def workdir(self, job_id: str) -> Path:
        """Where a job claimed here runs (a job's own record says where it ran)."""
        return self.settings.jobs_dir / job_id
