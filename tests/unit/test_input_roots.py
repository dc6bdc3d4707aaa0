"""engines/paths.InputRoots: read and write roots, the service's files, globs, the own workdir."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrs_jobs.engines.base import ClusterSpec, EngineRefused
from mrs_jobs.engines.paths import InputRoots


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for d in ("in", "out", "other", "data/jobs/j1", "data/jobs/j2"):
        (tmp_path / d).mkdir(parents=True)
    return tmp_path


def roots(tree: Path, *, inputs=("in",), outputs=("out",), own: str | None = None) -> InputRoots:
    return InputRoots.of(
        ClusterSpec(
            "c",
            input_roots=tuple(str(tree / r) for r in inputs),
            output_roots=tuple(str(tree / r) for r in outputs),
            forbidden=(str(tree / "data"),),
        ),
        tree / own if own else None,
    )


def ok(r: InputRoots, path: Path, *, write: bool = False) -> bool:
    try:
        r.check(path.resolve(), str(path), "file", write=write)
    except EngineRefused:
        return False
    return True


def test_reads_under_either_root_writes_under_output_roots(tree: Path) -> None:
    r = roots(tree)
    assert ok(r, tree / "in/x") and ok(r, tree / "out/x") and not ok(r, tree / "other/x")
    assert ok(r, tree / "out/x", write=True)
    assert not ok(r, tree / "in/x", write=True) and not ok(r, tree / "other/x", write=True)
    assert r.roots == [(tree / "in").resolve(), (tree / "out").resolve()]


def test_input_roots_only_means_read_only(tree: Path) -> None:
    r = roots(tree, outputs=())
    assert ok(r, tree / "in/x") and not ok(r, tree / "in/x", write=True)
    with pytest.raises(EngineRefused, match="no output roots"):
        r.check(tree / "in/x", "/in/x", "file", write=True)


def test_unrooted_reads_all_but_the_service_files_and_writes_nothing(tree: Path) -> None:
    r = roots(tree, inputs=(), outputs=())
    assert ok(r, tree / "other/x") and not ok(r, tree / "other/x", write=True)
    for p in (tree / "data", tree / "data/secret.key", tree / "data/jobs/j2/stderr.log", tree):
        assert not ok(r, p) and not ok(r, p, write=True)
    assert not ok(r, Path("/"))


def test_the_service_files_win_over_the_roots(tree: Path) -> None:
    r = roots(tree, inputs=("",), outputs=("",))  # the roots hold the data directory
    assert ok(r, tree / "other/x", write=True)
    assert not ok(r, tree / "data/secret.key") and not ok(r, tree / "data", write=True)


def test_symlinks_are_resolved_by_the_caller(tree: Path) -> None:
    (tree / "in/link").symlink_to(tree / "data", target_is_directory=True)
    assert not ok(roots(tree), tree / "in/link/secret.key")


def test_globs_are_checked_by_their_fixed_prefix(tree: Path) -> None:
    r = roots(tree, inputs=(), outputs=())
    assert ok(r, tree / "other/*.csv")
    assert not ok(r, tree / "*/secret.key")  # the prefix holds the data directory
    assert not ok(r, tree / "da[t]a/secret.key")
    rooted = roots(tree)
    assert ok(rooted, tree / "in/part-*") and not ok(rooted, tree / "i*/x")


def test_the_own_workdir_is_readable_not_writable(tree: Path) -> None:
    r = roots(tree, inputs=(), outputs=(), own="data/jobs/j1")
    assert ok(r, tree / "data/jobs/j1/extra.txt")
    assert not ok(r, tree / "data/jobs/j1/extra.txt", write=True)
    assert not ok(r, tree / "data/jobs/j2/stderr.log")
    assert not ok(r, tree / "data/jobs")


def test_messages_name_what_the_user_gave(tree: Path) -> None:
    r = roots(tree, inputs=(), outputs=())
    with pytest.raises(EngineRefused) as err:
        r.check((tree / "data/secret.key").resolve(), "/given/path", "the thing")
    assert str(err.value) == (
        "the thing /given/path is not allowed: it reaches the service's own files"
    )


def test_alternatives_with_a_slash_are_refused(tree: Path) -> None:
    # Hadoop expands {a/b,c} in the text, then removes "..": it would climb out of the prefix.
    r = roots(tree, inputs=(), outputs=())
    for shown in (f"{tree}/other/{{/..,/x}}/data/k", f"{tree}/other/{{x/../..}}/data/k"):
        with pytest.raises(EngineRefused, match="alternatives"):
            r.check(Path(shown).resolve(), shown, "file")
    assert ok(r, tree / "other/{a,b}.csv")
