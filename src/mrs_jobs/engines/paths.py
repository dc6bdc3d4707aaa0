"""The cluster's roots: where local file arguments of a job may live (contract §5), and the
service's own files, which no job may name."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

from mrs_jobs.engines.base import ClusterSpec, EngineRefused

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


# Hadoop glob characters: a path holding one may reach anything below its fixed prefix.
_GLOB_CHARS = frozenset("*?[]{}")
# ...except {a/b,c} alternatives: Hadoop expands those in the text before it normalises the
# path, so "{/..,x}" climbs out of the prefix.
_BRACE_SLASH_RE = re.compile(r"\{[^}]*/")


def _real(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def _glob_base(real: Path) -> Path:
    """``real`` up to (not including) its first component with a glob character."""
    parts = real.parts
    for i, part in enumerate(parts):
        if _GLOB_CHARS.intersection(part):
            return Path(*parts[:i]) if i else Path("/")
    return real


class InputRoots:
    """Where a job's local paths may be, checked on resolved (symlink-free) paths.

    * Never at, inside or above a path of the service (its data directory, key files,
      database): ``forbidden``, whatever the roots. The job's own working directory (``own``,
      inside the data directory) may still be read.
    * A cluster with input or output roots: reads under either, writes under the output roots
      only (none when it has only input roots). With neither: any other path (the single-user
      default).

    A path with glob characters is checked by its fixed prefix, which is all it may reach;
    ``{...}`` alternatives holding a ``/`` are refused.
    """

    def __init__(
        self,
        roots: tuple[str, ...] | list[str] = (),
        *,
        output_roots: tuple[str, ...] | list[str] = (),
        forbidden: tuple[str, ...] | list[str] = (),
        own: str | Path | None = None,
    ) -> None:
        self.inputs = [_real(r) for r in roots]
        self.outputs = [_real(r) for r in output_roots]
        self.forbidden = [_real(f) for f in forbidden]
        self.own = _real(own) if own is not None else None

    @classmethod
    def of(cls, cluster: ClusterSpec, workdir: str | Path | None = None) -> InputRoots:
        """The cluster's roots and the service's forbidden paths; ``workdir``: the job's own."""
        return cls(
            cluster.input_roots,
            output_roots=cluster.output_roots,
            forbidden=cluster.forbidden,
            own=workdir,
        )

    @property
    def rooted(self) -> bool:
        return bool(self.inputs or self.outputs)

    @property
    def roots(self) -> list[Path]:
        """The roots a job may read under (empty: any path but the forbidden ones)."""
        return self.inputs + [o for o in self.outputs if o not in self.inputs]

    def reserved(self, real: Path) -> bool:
        """True when ``real`` is, lies in or contains a path of the service."""
        return any(real.is_relative_to(f) or f.is_relative_to(real) for f in self.forbidden)

    def check(self, real: Path, shown: str, what: str, *, write: bool = False) -> None:
        """EngineRefused unless ``what`` (``shown`` as the user gave it) may be read, or
        written with ``write``; the message names only what the user gave and the roots."""
        if _BRACE_SLASH_RE.search(shown) or _BRACE_SLASH_RE.search(str(real)):
            raise EngineRefused(f"{what} {shown}: {{...}} alternatives holding '/' are refused")
        base = _glob_base(Path(real))
        mine = not write and self.own is not None and base.is_relative_to(self.own)
        if not mine and self.reserved(base):
            raise EngineRefused(
                f"{what} {shown} is not allowed: it reaches the service's own files"
            )
        if not self.rooted and not write:
            return
        allowed = self.outputs if write else self.roots
        if any(base.is_relative_to(r) for r in allowed):
            return
        if write and not self.outputs:
            # Jobs run boxed: without output roots a job writes only its own directory.
            raise EngineRefused(
                f"{what} {shown} cannot be written: the cluster has no output roots "
                f"(local paths are read-only on it; an operator sets output_roots)"
            )
        kind = "output" if write else "input"
        raise EngineRefused(
            f"{what} {shown} is not under an allowed {kind} root "
            f"({', '.join(str(r) for r in allowed)})"
        )
