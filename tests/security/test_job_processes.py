"""Issue 8: job processes run as a configured user, under resource limits, in a private
directory, and never see the service's own environment.

The user tests need root (to switch users) and skip otherwise; they use a dedicated system
user ``mrsjobs-test`` (created if missing and ``useradd`` exists) or else ``nobody``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support_supervisor import FakeEngine, World, drive

from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec, LaunchSpec
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.runtime.process import (
    ExitStatus,
    ProcessHandle,
    ProcessTable,
    kill_run,
    read_exit,
)
from mrs_jobs.services.batch_delete import BatchDeleteService
from mrs_jobs.services.bootstrap import bootstrap
from mrs_jobs.services.context import Caller
from mrs_jobs.services.jobs import JobService
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.supervisor import limits as limits_module
from mrs_jobs.supervisor.limits import (
    JobUser,
    ResourceLimits,
    job_process_options,
    resolve_user,
)
from mrs_jobs.supervisor.loop import Supervisor

pytestmark = pytest.mark.timeout(60)

FAKE_ENGINE = str(Path(__file__).resolve().parents[1] / "fake_engine.py")
TEST_USER = "mrsjobs-test"
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="switching users needs root")


# -- helpers ---------------------------------------------------------------------------------
def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(0.02)


def wait_exit(job_dir: Path, timeout: float = 10.0) -> ExitStatus:
    wait_for(lambda: (job_dir / "exit.json").exists(), timeout)
    status = read_exit(job_dir)
    assert status is not None
    return status


def spec(*options: str, cwd: str, python: str = sys.executable) -> LaunchSpec:
    env = {"PATH": "/usr/bin:/bin", "MRS_JOBS_INSTANCE": "sec-test", "MRS_JOBS_JOB_ID": "j"}
    return LaunchSpec(argv=[python, FAKE_ENGINE, *options], env=env, cwd=cwd)


def dump_of(job_dir: Path) -> dict:
    return json.loads((job_dir / "dump.json").read_text())


@pytest.fixture(scope="session")
def job_user() -> JobUser:
    if not IS_ROOT:
        pytest.skip("switching users needs root")
    try:
        return resolve_user(TEST_USER)
    except ValueError:
        pass
    useradd = shutil.which("useradd")
    if useradd:
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
            check=False,
            capture_output=True,
        )
        try:
            return resolve_user(TEST_USER)
        except ValueError:
            pass
    try:
        return resolve_user("nobody")
    except ValueError:
        pytest.skip("no unprivileged user available")


@pytest.fixture(scope="session")
def user_python(job_user: JobUser) -> str:
    """An interpreter the job user can run (this venv's may live under a 0700 /root)."""
    for candidate in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            done = subprocess.run(
                [candidate, "-c", "import resource, json"],
                user=job_user.uid,
                group=job_user.gid,
                extra_groups=[],
                cwd="/",
                capture_output=True,
                timeout=20,
            )
        except OSError:
            continue
        if done.returncode == 0:
            return candidate
    pytest.skip("no Python interpreter the job user can run")


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A directory every user can traverse (pytest's tmp_path is under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="mrs-jobs-sec-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def launch() -> Iterator[Callable[..., ProcessHandle]]:
    table = ProcessTable()
    handles: list[ProcessHandle] = []

    def _launch(job_dir: Path, launch_spec: LaunchSpec, **kwargs: object) -> ProcessHandle:
        handle = table.launch(job_dir, launch_spec, **kwargs)  # type: ignore[arg-type]
        handles.append(handle)
        return handle

    yield _launch
    for handle in handles:
        kill_run(handle, 0.2)
    table.reap()


# -- configuration ---------------------------------------------------------------------------
def test_options_from_cluster_config_override_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        job_limit_cpu_seconds=100,
        job_limit_open_files=256,
        job_limit_address_space_mb=4096,
    )
    cluster = ClusterSpec(
        "c1",
        extra={
            "limit_cpu_seconds": "30",
            "limit_open_files": "unlimited",
            "limit_processes": "64",
        },
    )
    options = job_process_options(cluster, settings)
    assert options.user is None
    assert options.limits.as_launch() == {
        "RLIMIT_AS": 4096 * 1024 * 1024,  # from the settings
        "RLIMIT_CPU": 30,  # the cluster wins
        "RLIMIT_NPROC": 64,
    }  # the cluster lifted the open files limit
    assert not job_process_options(ClusterSpec("c1"), Settings(data_dir=tmp_path)).limits


@pytest.mark.parametrize("value", ["lots", "-1", "1.5"])
def test_bad_limit_value_refuses_the_launch(value: str, tmp_path: Path) -> None:
    with pytest.raises(EngineRefused, match="limit_cpu_seconds"):
        job_process_options(
            ClusterSpec("c1", extra={"limit_cpu_seconds": value}), Settings(data_dir=tmp_path)
        )


def test_user_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, job_user="no-such-user-xyz")
    with pytest.raises(EngineRefused, match="does not exist"):
        job_process_options(ClusterSpec("c1"), settings)
    # The service's own user means no switch at all.
    me = str(os.geteuid())
    assert job_process_options(ClusterSpec("c1", extra={"run_as_user": me}), settings).user is None
    # The cluster's run_as_user wins over the setting.
    monkeypatch.setattr(limits_module.os, "geteuid", lambda: 0)
    nobody = resolve_user("nobody")
    options = job_process_options(ClusterSpec("c1", extra={"run_as_user": "nobody"}), settings)
    assert options.user == nobody
    # Another user cannot be named by a service that is not root.
    monkeypatch.setattr(limits_module.os, "geteuid", lambda: 12345)
    with pytest.raises(EngineRefused, match="needs the service to run as root"):
        job_process_options(ClusterSpec("c1", extra={"run_as_user": "nobody"}), settings)


# -- the process layer -----------------------------------------------------------------------
def test_job_dir_is_private_and_engine_umask_is_077(tmp_path: Path, launch) -> None:
    job_dir = tmp_path / "jobs" / "j1"
    job_dir.mkdir(parents=True, mode=0o755)
    job_dir.chmod(0o755)  # an existing, too open directory is tightened
    launch(job_dir, spec("--dump", "dump.json", cwd=str(job_dir)))
    status = wait_exit(job_dir)
    assert status.succeeded, (job_dir / "stderr.log").read_text()
    assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((job_dir / "launch.json").stat().st_mode) == 0o600
    assert dump_of(job_dir)["umask"] == 0o077
    assert stat.S_IMODE((job_dir / "dump.json").stat().st_mode) == 0o600  # made under 077


def test_limits_are_set_in_the_engine(tmp_path: Path, launch) -> None:
    job_dir = tmp_path / "j"
    limits = ResourceLimits(
        address_space_bytes=3 * 1024**3, cpu_seconds=300, open_files=64, processes=4096
    )
    launch(job_dir, spec("--dump", "dump.json", cwd=str(job_dir)), limits=limits)
    assert wait_exit(job_dir).succeeded, (job_dir / "stderr.log").read_text()
    assert json.loads((job_dir / "launch.json").read_text())["limits"] == limits.as_launch()
    got = dump_of(job_dir)["rlimits"]
    assert got["RLIMIT_AS"] == [3 * 1024**3] * 2
    assert got["RLIMIT_CPU"] == [300, 305]  # SIGXCPU first, SIGKILL 5 s of CPU later
    assert got["RLIMIT_NOFILE"] == [64, 64]
    assert got["RLIMIT_NPROC"] == [4096, 4096]


def test_cpu_limit_kills_a_busy_loop(tmp_path: Path, launch) -> None:
    job_dir = tmp_path / "j"
    launch(
        job_dir,
        spec("--burn-cpu", cwd=str(job_dir)),
        limits=ResourceLimits(cpu_seconds=1),
    )
    status = wait_exit(job_dir, timeout=20)
    assert status.returncode is None
    assert status.signal in (signal.SIGXCPU, signal.SIGKILL)
    assert not status.succeeded


def test_address_space_limit_stops_a_memory_hog(tmp_path: Path, launch) -> None:
    job_dir = tmp_path / "j"
    hog = "b = bytearray(1024 * 1024 * 1024)"  # 1 GiB under a 512 MiB limit
    launch(
        job_dir,
        LaunchSpec(argv=[sys.executable, "-c", hog], env={"PATH": "/usr/bin:/bin"}, cwd="/"),
        limits=ResourceLimits(address_space_bytes=512 * 1024 * 1024),
    )
    status = wait_exit(job_dir)
    assert status.returncode == 1
    assert "MemoryError" in (job_dir / "stderr.log").read_text()


def test_shim_never_writes_through_a_planted_symlink(tmp_path: Path, launch) -> None:
    job_dir = tmp_path / "j"
    job_dir.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (job_dir / "stderr.log").symlink_to(victim)
    (job_dir / "exit.json.tmp").symlink_to(victim)
    launch(job_dir, spec("--eprint", "oops", cwd=str(job_dir)))
    status = wait_exit(job_dir)
    assert status.returncode == 127 and "stderr.log" in (status.error or "")
    assert victim.read_text() == "precious\n"


@needs_root
def test_engine_runs_as_the_job_user(
    job_user: JobUser, user_python: str, reachable_dir: Path, launch
) -> None:
    job_dir = reachable_dir / "jobs" / "j1"
    (job_dir / "conf").mkdir(parents=True)
    (job_dir / "conf" / "site.xml").write_text("<configuration/>")  # as build() would
    (job_dir / "conf" / "site.xml").chmod(0o600)
    launch(
        job_dir,
        spec("--dump", "dump.json", cwd=str(job_dir), python=user_python),
        user=job_user,
        limits=ResourceLimits(open_files=128),
    )
    assert wait_exit(job_dir).succeeded, (job_dir / "stderr.log").read_text()
    got = dump_of(job_dir)
    assert (got["uid"], got["euid"]) == (job_user.uid, job_user.uid)
    assert (got["gid"], got["egid"]) == (job_user.gid, job_user.gid)
    assert got["groups"] in ([], [job_user.gid])  # root's supplementary groups are dropped
    assert got["rlimits"]["RLIMIT_NOFILE"] == [128, 128]
    st = job_dir.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (job_user.uid, 0o700)
    assert (job_dir / "conf" / "site.xml").stat().st_uid == job_user.uid
    assert (job_dir / "dump.json").stat().st_uid == job_user.uid
    # The shim's records and the environment file stay the service's.
    for name in ("launch.json", "exit.json", "stdout.log", "stderr.log"):
        assert (job_dir / name).stat().st_uid == 0, name


@needs_root
def test_job_user_cannot_read_other_jobs(
    job_user: JobUser, user_python: str, reachable_dir: Path, launch
) -> None:
    other = reachable_dir / "jobs" / "other"
    other.mkdir(parents=True)
    (other / "secret.txt").write_text("s3cr3t")
    job_dir = reachable_dir / "jobs" / "j2"
    reader = "import sys; print(open(sys.argv[1]).read())"
    launch(other, spec("--sleep", "0", cwd=str(other)))
    wait_exit(other)
    launch(
        job_dir,
        LaunchSpec(
            argv=[user_python, "-c", reader, str(other / "secret.txt")],
            env={"PATH": "/usr/bin:/bin"},
            cwd=str(job_dir),
        ),
        user=job_user,
    )
    status = wait_exit(job_dir)
    assert status.returncode == 1
    assert "PermissionError" in (job_dir / "stderr.log").read_text()


@needs_root
def test_process_limit_stops_a_fork_bomb(
    job_user: JobUser, user_python: str, reachable_dir: Path, launch
) -> None:
    job_dir = reachable_dir / "j"
    limit = 8
    launch(
        job_dir,
        spec(
            "--dump",
            "dump.json",
            "--spawn-until-failure",
            "200",
            cwd=str(job_dir),
            python=user_python,
        ),
        user=job_user,
        limits=ResourceLimits(processes=limit),
    )
    assert wait_exit(job_dir, timeout=30).succeeded, (job_dir / "stderr.log").read_text()
    got = dump_of(job_dir)
    assert got["rlimits"]["RLIMIT_NPROC"] == [limit, limit]
    assert got["spawn_error"] and "Resource temporarily unavailable" in got["spawn_error"]
    assert got["spawned"] < limit  # the engine itself counts against the limit


@needs_root
def test_unreachable_job_dir_is_refused_before_anything_runs(
    job_user: JobUser, tmp_path: Path, launch
) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    job_dir = private / "jobs" / "j"
    with pytest.raises(PermissionError, match="not searchable"):
        launch(job_dir, spec("--sleep", "0", cwd=str(job_dir)), user=job_user)
    assert not (job_dir / "launch.json").exists()
    assert job_dir.stat().st_uid == 0


# -- end to end through the supervisor -------------------------------------------------------
def _world(store: Store, tmp_path: Path, data_dir: Path, **overrides: object) -> World:
    settings = Settings(
        data_dir=data_dir,
        poll_interval=0.05,
        kill_grace_seconds=1.0,
        database_url=store.url,
        **overrides,  # type: ignore[arg-type]
    )
    from mrs_jobs.secretbox import load_secret_box

    boot = bootstrap(store, load_secret_box(settings), max_running=2, max_queued=100, parallelism=1)
    assert boot is not None
    return World(
        store,
        settings,
        JobService(store, runnable_types=frozenset({"SparkSubmit"}), wake=lambda: None),
        BatchDeleteService(store, wake=lambda: None),
        Caller(boot.project_id, None, "tester", "req-1"),
        boot.cluster_id,
        boot,
    )


class _EngineWithPython(FakeEngine):
    """The supervisor tests' fake engine, started by a given interpreter."""

    def __init__(self, python: str) -> None:
        self.python = python

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        built = super().build(job, cluster, workdir)
        return LaunchSpec([self.python, *built.argv[1:]], built.env, built.cwd, built.notes)


def _run_dump_job(world: World, python: str = sys.executable) -> dict:
    sup = Supervisor(world.store, world.settings, EngineRegistry([_EngineWithPython(python)]))
    job_id = world.submit("--dump", "dump.json")
    drive(sup, lambda: world.show(job_id).state in ("FINISHED", "FAILED"), timeout=30)
    job = world.show(job_id)
    assert job.result == "SUCCEEDED", (Path(job.workdir) / "stderr.log").read_text()
    got = json.loads((Path(job.workdir) / "dump.json").read_text())
    assert got["environ"]["MRS_JOBS_JOB_ID"] == job_id  # the markers do arrive
    return got


def test_service_environment_never_reaches_a_job(
    sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "canary-8c1f0e"
    monkeypatch.setenv("MRS_JOBS_DATABASE_URL", f"postgresql://u:{canary}@db/mrs")
    secret_key = base64.b64encode(canary.encode().ljust(32, b"!")).decode()
    monkeypatch.setenv("MRS_JOBS_SECRET_KEY", secret_key)
    monkeypatch.setenv("MRS_JOBS_TEST_CANARY", canary)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary)
    world = _world(sqlite_store, tmp_path, tmp_path / "data")
    got = _run_dump_job(world)
    env = got["environ"]
    for name in (
        "MRS_JOBS_DATABASE_URL",
        "MRS_JOBS_SECRET_KEY",
        "MRS_JOBS_TEST_CANARY",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert name not in env
    assert not any(canary in value or secret_key in value for value in env.values())


@needs_root
def test_supervised_job_runs_as_job_user_under_limits(
    sqlite_store: Store, tmp_path: Path, reachable_dir: Path, job_user: JobUser, user_python: str
) -> None:
    world = _world(
        sqlite_store,
        tmp_path,
        reachable_dir / "data",
        job_user=job_user.name,
        job_limit_open_files=100,
        job_limit_processes=500,
    )
    got = _run_dump_job(world, user_python)
    assert got["uid"] == job_user.uid
    assert got["rlimits"]["RLIMIT_NOFILE"] == [100, 100]
    assert got["rlimits"]["RLIMIT_NPROC"] == [500, 500]
    workdir = Path(got["cwd"])
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
    assert workdir.stat().st_uid == job_user.uid


@needs_root
def test_supervised_job_fails_cleanly_when_its_user_cannot_reach_the_data_dir(
    sqlite_store: Store, tmp_path: Path, job_user: JobUser
) -> None:
    tmp_path.chmod(0o700)
    world = _world(sqlite_store, tmp_path, tmp_path / "data", job_user=job_user.name)
    sup = world.supervisor()
    job_id = world.submit("--sleep", "0")
    drive(sup, lambda: world.show(job_id).state == "FAILED")
    assert "cannot reach the job directory" in world.show(job_id).reason
