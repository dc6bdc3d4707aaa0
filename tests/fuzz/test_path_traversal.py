"""Path traversal in SparkSubmit file arguments, checked where it is enforced: the engine.

Submit accepts any path (files are checked at launch, contract section 5), so this drives
``SparkSubmitEngine().build()`` with a cluster whose ``input_roots`` are set. The application
and the basic escapes of it (``root/../x``, a symlinked file) are covered in
tests/engines/test_spark_engine.py; here: every file option, relative paths, ``~``, symlinked
directories, ``file://`` and ``local:`` forms, and percent-encoded dots.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec
from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.spark import SparkSubmitEngine

pytestmark = pytest.mark.skipif(
    find_java_home(None) is None or find_spark_home(None) is None,
    reason="build() needs Java and Spark homes",
)

FILE_OPTIONS = ["--files", "--jars", "--py-files", "--archives", "--properties-file", "--keytab"]


def job(arguments: list[str]) -> JobSpec:
    return JobSpec("j1", "SparkSubmit", "t", arguments, {})


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "root"
        (self.root / "sub").mkdir(parents=True)
        self.app = self.root / "app.py"
        self.app.write_text("print(1)\n")
        self.inside = self.root / "sub" / "data.txt"
        self.inside.write_text("ok\n")
        self.outside_dir = tmp / "outside"
        self.outside_dir.mkdir()
        self.outside = self.outside_dir / "passwd"
        self.outside.write_text("secret\n")
        (self.outside_dir / "evil.py").write_text("print(2)\n")
        # A directory inside the root that is a symlink to one outside it.
        (self.root / "linkdir").symlink_to(self.outside_dir, target_is_directory=True)
        self.cluster = ClusterSpec("c", input_roots=(str(self.root),))
        self.n = 0

    def build(self, arguments: list[str]) -> list[str]:
        self.n += 1
        return SparkSubmitEngine().build(job(arguments), self.cluster, self.tmp / f"w{self.n}").argv

    def escapes(self) -> list[str]:
        """Ways to name ``outside/passwd`` that start inside the root or look harmless."""
        rel = os.path.relpath(self.outside, Path.cwd())
        depth = len(Path.cwd().resolve().parts) - 1
        return [
            f"{self.root}/../outside/passwd",
            f"{self.root}/sub/../../outside/passwd",
            f"{self.root}/./sub/./../../outside/passwd",
            f"{self.root}//..//outside/passwd",
            f"{self.root}/linkdir/passwd",
            f"file://{self.root}/../outside/passwd",
            f"file://{self.root}/%2e%2e/outside/passwd",
            f"file://{self.root}/linkdir/passwd",
            f"file:{self.root}/../outside/passwd",
            f"local:{self.root}/../outside/passwd",
            rel,  # relative to the service's working directory
            "../" * depth + str(self.outside).lstrip("/"),
            "/root/../etc/passwd",
            "../../etc/passwd",
            "~/../../etc/passwd",
        ]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_in_root_files_are_accepted(world: World) -> None:
    argv = world.build(["--files", f"{world.inside}#alias", str(world.app)])
    assert f"{world.inside.resolve()}#alias" in argv
    argv = world.build([str(world.root / "sub" / ".." / "app.py")])
    assert argv[-1] == str(world.app.resolve())


@pytest.mark.parametrize("option", FILE_OPTIONS)
def test_every_file_option_refuses_every_escape(world: World, option: str, subtests) -> None:  # type: ignore[no-untyped-def]
    for bad in world.escapes():
        with subtests.test(path=bad):
            with pytest.raises(EngineRefused, match="not under an allowed input root"):
                world.build([option, bad, str(world.app)])
    if option in ("--files", "--jars", "--py-files", "--archives"):
        with subtests.test(path="in a list"):
            with pytest.raises(EngineRefused, match="not under an allowed input root"):
                world.build(
                    [option, f"{world.inside},{world.root}/../outside/passwd", str(world.app)]
                )
        with subtests.test(path="with an alias"):
            with pytest.raises(EngineRefused, match="not under an allowed input root"):
                world.build([option, f"{world.root}/../outside/passwd#x", str(world.app)])


def test_the_application_refuses_every_escape(world: World, subtests) -> None:  # type: ignore[no-untyped-def]
    for bad in [p.replace("passwd", "evil.py") for p in world.escapes()]:
        with subtests.test(path=bad):
            with pytest.raises(EngineRefused, match="not under an allowed input root"):
                world.build([bad])


def test_refusal_comes_before_existence(world: World) -> None:
    # Outside the roots is refused whether or not the file exists: no probing of the disk.
    for name in ("passwd", "no-such-file"):
        with pytest.raises(EngineRefused, match="not under an allowed input root"):
            world.build(["--files", f"{world.root}/../outside/{name}", str(world.app)])


@pytest.mark.parametrize("option", ["--files", "--jars", "--py-files", "--archives"])
def test_percent_encoded_dots_with_an_alias_are_refused(world: World, option: str) -> None:
    # Spark reads "<root>/%2e%2e/outside/passwd#x" as <root>/../outside/passwd (verified with
    # org.apache.spark.util.Utils.resolveURI), which is outside the root; the engine checks
    # the literal directory "%2e%2e" inside the root and lets it through.
    with pytest.raises(EngineRefused):
        world.build([option, f"{world.root}/%2e%2e/outside/passwd#x", str(world.app)])
