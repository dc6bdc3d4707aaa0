"""SparkScript/HiveScript files: read only from the cluster's input roots, never via a URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrs_jobs.engines.base import ClusterSpec, EngineRefused
from mrs_jobs.engines.sql import SqlEngine


def _read(path: str, roots: tuple[str, ...]) -> str:
    return SqlEngine._read_script(path, ClusterSpec(cluster_id="c", input_roots=roots))


def test_script_inside_a_root_is_read(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "q.sql").write_text("SELECT 1;")
    assert _read(str(root / "q.sql"), (str(root),)) == "SELECT 1;"
    assert _read(f"file://{root / 'q.sql'}", (str(root),)) == "SELECT 1;"


def test_outside_the_roots_or_through_a_symlink_is_refused(tmp_path: Path) -> None:
    root, other = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    other.mkdir()
    (other / "secret.sql").write_text("SELECT 2;")
    (root / "link.sql").symlink_to(other / "secret.sql")
    for path in (other / "secret.sql", root / "link.sql", root / ".." / "out" / "secret.sql"):
        with pytest.raises(EngineRefused, match="not under an allowed input root"):
            _read(str(path), (str(root),))


def test_missing_and_remote_scripts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineRefused, match="not found"):
        _read(str(tmp_path / "nope.sql"), ())
    with pytest.raises(EngineRefused, match="not a local file"):
        _read("obs://bucket/q.sql", ())
