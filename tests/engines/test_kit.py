"""The engines' shared launch plumbing (engines/kit.py) and the hook base (engines/base.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineAdapter,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    Observation,
    RemoteStatus,
    Usage,
    call_hook,
)
from mrs_jobs.engines.kit import (
    DEFAULT_PATH,
    RemoteEngine,
    job_dirs,
    launch_env,
    require_java,
    require_spark,
)

JOB = JobSpec("j1", "Toy", "toy", [], {})
CLUSTER = ClusterSpec("c1")


class Toy(EngineAdapter):
    job_types = frozenset({"Toy"})

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        self.refuse_other_types(job, "toy")
        return LaunchSpec(["/bin/true"], launch_env(workdir, workdir), str(workdir))


def test_a_toy_engine_has_every_hook_with_its_default(tmp_path: Path) -> None:
    toy = Toy()
    launch = toy.build(JOB, CLUSTER, tmp_path)
    assert toy.observe(JOB, tmp_path, launch) == Observation()
    assert toy.status(JOB, tmp_path, launch, None, None) is None
    assert toy.cancel(JOB, tmp_path, launch) is False
    assert toy.available() is True
    assert toy.housekeeping({}, 0.0) is None
    assert toy.diagnostics(JOB, tmp_path, launch) is None
    assert toy.usage(JOB, tmp_path, launch) == Usage()
    assert toy.follows_detached is False
    with pytest.raises(EngineRefused, match="the toy engine does not run Other jobs"):
        toy.build(JobSpec("j2", "Other", "o", [], {}), CLUSTER, tmp_path)


def test_a_failing_hook_is_logged_once_and_survived(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Toy):
        def cancel(self, job, workdir, launch, cluster=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    engine = Broken()
    launch = LaunchSpec([], {}, "/")
    with caplog.at_level(logging.ERROR, logger="mrs_jobs.engines.base"):
        for _ in range(3):
            done = call_hook(
                engine.cancel, JOB, Path("/"), launch, None, default=False, job_id="jx"
            )
            assert done is False
    failed = [r for r in caplog.records if "engine.hook_failed" in r.getMessage()]
    assert len(failed) == 1 and "Broken.cancel" in failed[0].hook  # type: ignore[attr-defined]
    assert failed[0].job_id == "jx"  # type: ignore[attr-defined]


def test_remote_engine_asks_its_application(tmp_path: Path) -> None:
    class App:
        def status(self, app_id: str | None, launcher_id: str | None) -> RemoteStatus:
            return RemoteStatus("running", app_id=app_id)

        def cancel(self) -> bool:
            return True

    class Remote(Toy, RemoteEngine):
        def application(self, job, workdir, launch, cluster):  # type: ignore[no-untyped-def]
            return App() if job.job_id == "j1" else None

    engine, launch = Remote(), LaunchSpec([], {}, "/")
    assert engine.follows_detached
    assert engine.status(JOB, tmp_path, launch, "a1", None) == RemoteStatus("running", "a1")
    assert engine.cancel(JOB, tmp_path, launch) is True
    other = JobSpec("j2", "Toy", "t", [], {})
    assert engine.status(other, tmp_path, launch, "a1", None) is None
    assert engine.cancel(other, tmp_path, launch) is False


def test_launch_env_is_built_from_scratch(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MRS_JOBS_DATABASE_URL", "postgresql://secret")
    env = launch_env(tmp_path, tmp_path / "tmp", "/opt/jdk", "/opt/py/bin")
    assert env["PATH"].split(":")[:2] == ["/opt/jdk/bin", "/opt/py/bin"]
    assert env["PATH"].endswith(DEFAULT_PATH)
    assert env == env | {"HOME": str(tmp_path), "TMPDIR": str(tmp_path / "tmp")}
    assert env["JAVA_HOME"] == "/opt/jdk" and env["LANG"] == "C.UTF-8"
    assert set(env) == {"PATH", "LANG", "HOME", "TMPDIR", "JAVA_HOME"}
    assert "JAVA_HOME" not in launch_env(tmp_path, tmp_path)


def test_job_dirs_makes_private_ones_0700(tmp_path: Path) -> None:
    (tmp_path / "w" / "conf").mkdir(parents=True, mode=0o755)
    workdir = job_dirs(tmp_path / "w", "tmp", private=("conf",))
    assert workdir == (tmp_path / "w").resolve() and (workdir / "tmp").is_dir()
    assert (workdir / "conf").stat().st_mode & 0o777 == 0o700


def test_missing_homes_are_refused_with_a_reason(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(EngineRefused, match="Java was not found"):
        require_java(ClusterSpec("c", java_home=str(tmp_path)), None)
    with pytest.raises(EngineRefused, match="the jars were not found: set spark_home"):
        require_spark(ClusterSpec("c", spark_home=str(tmp_path)), None, "the jars were not found")
