"""What the runtime starts: an argv vector, its environment and working directory."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LaunchSpec"]


@dataclass(frozen=True)
class LaunchSpec:
    """An argv vector (never a shell line), its environment and working directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    notes: list[str] = field(default_factory=list)  # lines written to the job's log before launch
    # True when the launcher exits as soon as the engine has accepted the application
    # (spark-submit --deploy-mode cluster, flink run -d, ...): the job's state then comes from
    # the engine (``status()``) and a restart re-attaches by application id, not by pid.
    detached: bool = False
    # Host paths the job names (its app, jars, scripts, copy sources) and those it writes (a
    # copy's target): its box shows them even where the rest of the host is hidden.
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    # Directories of the service's own that the engine shares between the runs of one cluster
    # (never a path a tenant named): writable in the box even inside the data directory.
    shared: tuple[str, ...] = ()
