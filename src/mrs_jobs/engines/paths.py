"""The cluster's input roots: where local file arguments of a job may live (contract §5)."""

from __future__ import annotations

from pathlib import Path

from mrs_jobs.engines.base import EngineRefused

__all__ = ["InputRoots"]


class InputRoots:
    """Checks resolved (symlink-free) paths against the roots; no roots = any readable path."""

    def __init__(self, roots: tuple[str, ...]) -> None:
        self.roots = [Path(r).expanduser().resolve() for r in roots]

    def check(self, real: Path, shown: str, what: str) -> None:
        if self.roots and not any(real.is_relative_to(r) for r in self.roots):
            raise EngineRefused(
                f"{what} {shown} is not under an allowed input root "
                f"({', '.join(str(r) for r in self.roots)})"
            )
