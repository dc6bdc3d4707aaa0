"""The cluster's input roots: where local file arguments of a job may live (contract §5)."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

from mrs_jobs.engines.base import EngineRefused

__all__ = ["URL_RE", "InputRoots", "file_url_path"]

# ``scheme://...``: group 1 is the scheme.
URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def file_url_path(value: str) -> str:
    """The local path a ``file://`` URL names (``file:///a``, ``file://localhost/a``), unquoted;
    EngineRefused when it is not an absolute path."""
    m = URL_RE.match(value)
    path = value[m.end() :] if m else value
    if path.startswith("localhost/"):
        path = path[len("localhost") :]
    if not path.startswith("/"):
        raise EngineRefused(f"a file:// URL must name an absolute local path: {value}")
    return urllib.parse.unquote(path)


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
