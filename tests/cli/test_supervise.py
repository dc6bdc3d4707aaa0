"""`mrs-jobs supervise`: the supervisor alone launches and ends jobs queued by others, and stops
cleanly on SIGTERM/SIGINT. Real subprocesses on a real store (SQLite file and PostgreSQL);
the engine is tests/fake_engine.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support import SigV4Auth
from support_server import ServerProcess
from support_supervisor import marked_pids

from mrs_jobs.domain.job import Job
from mrs_jobs.secretbox import load_secret_box
from mrs_jobs.services.bootstrap import bootstrap
from mrs_jobs.services.context import Caller
from mrs_jobs.services.jobs import JobService
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store

HELPER = Path(__file__).resolve().parent / "supervise_fake.py"
TERMINAL = {"FINISHED", "FAILED", "KILLED"}


class Supervise:
    """One `mrs-jobs supervise` process (fake engine) on a store and a data directory."""

    def __init__(self, data_dir: Path, database_url: str, **env: str) -> None:
        self.data_dir = data_dir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")},
            "MRS_JOBS_DATA_DIR": str(data_dir),
            "MRS_JOBS_DATABASE_URL": database_url,
            "MRS_JOBS_POLL_INTERVAL": "0.1",
            "MRS_JOBS_KILL_GRACE_SECONDS": "2",
            **env,
        }
        self.log = data_dir.parent / f"{data_dir.name}-supervise.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Supervise:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPER)],
            env=self.env,
            stdout=open(self.log, "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            if "mrs-jobs supervisor is running as" in text:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"supervise exited: {text[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError("supervise did not start")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            tail = self.log.read_text()[-3000:]
            raise AssertionError(f"supervise ignored {sig!r}: {tail}") from None


@pytest.fixture
def queue(store: Store, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Queue fake-engine jobs through the service layer, as an API-only server would."""
    settings = Settings(data_dir=tmp_path / "api", database_url=store.url)
    boot = bootstrap(store, load_secret_box(settings), max_running=4, max_queued=100, parallelism=1)
    assert boot is not None
    caller = Caller(boot.project_id, None, "tester", "req-1")
    service = JobService(store, runnable_types=frozenset({"SparkSubmit"}), wake=lambda: None)

    def submit(*args: str) -> str:
        job = service.submit(
            caller,
            boot.cluster_id,
            job_type="SparkSubmit",
            job_name="sup",
            arguments=list(args),
            properties={},
        )
        return job.id

    yield submit


def _job(store: Store, job_id: str) -> Job:
    with store.read() as conn:
        job = job_store.get_job(conn, job_id)
    assert job is not None
    return job


def _wait(store: Store, job_id: str, states: set[str], timeout: float = 30.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _job(store, job_id)
        if job.state in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} is {_job(store, job_id).state}, not in {states}")


def _no_processes(job_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while marked_pids(job_id):
        assert time.monotonic() < deadline, f"processes of {job_id} left: {marked_pids(job_id)}"
        time.sleep(0.1)


def test_supervise_runs_queued_jobs_and_sigterm_kills_them_when_asked(
    store: Store, queue: Callable[..., str], tmp_path: Path
) -> None:
    ok = queue("--sleep", "0.3", "--print", "from supervise")
    bad = queue("--exit", "3")
    sup = Supervise(tmp_path / "sup", store.url, MRS_JOBS_KILL_JOBS_ON_SHUTDOWN="true").start()
    try:
        done = _wait(store, ok, TERMINAL)
        assert (done.state, done.result) == ("FINISHED", "SUCCEEDED")
        assert done.app_id == f"fake-{ok[:8]}"
        assert done.workdir is not None and done.workdir.startswith(str(tmp_path / "sup"))
        assert "from supervise" in (Path(done.workdir) / "stdout.log").read_text()
        failed = _wait(store, bad, TERMINAL)
        assert (failed.state, failed.result) == ("FINISHED", "FAILED")

        # A job queued while it runs is picked up by polling (nobody wakes it).
        long = queue("--sleep", "120", "--ignore-term", "--spawn-child")
        _wait(store, long, {"RUNNING"})
        assert marked_pids(long)
    finally:
        code = sup.stop(signal.SIGTERM)
    assert code == 0
    assert "supervisor.stopped" in sup.log.read_text()
    killed = _job(store, long)
    assert (killed.state, killed.result) == ("KILLED", "KILLED")
    _no_processes(long)


def test_sigint_leaves_jobs_running_for_the_next_start_to_reattach(
    store: Store, queue: Callable[..., str], tmp_path: Path
) -> None:
    job_id = queue("--sleep", "4", "--print", "survived")
    sup = Supervise(tmp_path / "sup", store.url).start()
    try:
        _wait(store, job_id, {"RUNNING"})
    finally:
        assert sup.stop(signal.SIGINT) == 0
    assert _job(store, job_id).state == "RUNNING"
    assert marked_pids(job_id), "kill_jobs_on_shutdown is off: the engine keeps running"
    sup.start()  # same data dir and store: same supervisor id, it re-attaches the job
    try:
        done = _wait(store, job_id, TERMINAL)
        assert (done.state, done.result) == ("FINISHED", "SUCCEEDED")
        assert "survived" in (Path(done.workdir or "") / "stdout.log").read_text()
    finally:
        assert sup.stop() == 0
    _no_processes(job_id)


def test_one_supervisor_per_data_dir(store: Store, tmp_path: Path) -> None:
    first = Supervise(tmp_path / "sup", store.url).start()
    try:
        second = Supervise(tmp_path / "sup", store.url)
        with pytest.raises(RuntimeError, match="another (supervisor|server)"):
            second.start()
        assert second.proc is not None and second.proc.returncode != 0
    finally:
        assert first.stop() == 0


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_api_only_server_and_separate_supervisor_on_postgresql(
    store: Store, tmp_path: Path
) -> None:
    api = ServerProcess(
        tmp_path / "api",
        MRS_JOBS_DATABASE_URL=store.url,
        MRS_JOBS_RUN_SUPERVISOR="false",
    ).start()
    sup = Supervise(tmp_path / "sup", store.url, MRS_JOBS_KILL_JOBS_ON_SHUTDOWN="true")
    try:
        boot = api.bootstrap
        client = httpx.Client(
            base_url=f"{api.endpoint}/v2/{boot['project_id']}/clusters/{boot['cluster_id']}",
            auth=SigV4Auth(boot["ak"], boot["sk"], boot["project_id"]),
            timeout=10,
        )

        def submit(*args: str) -> str:
            body = {"job_type": "SparkSubmit", "job_name": "split", "arguments": list(args)}
            r = client.post("/job-executions", json=body)
            assert r.status_code == 200, r.text
            return str(r.json()["job_submit_result"]["job_id"])

        def state(job_id: str) -> dict[str, object]:
            r = client.get(f"/job-executions/{job_id}")
            assert r.status_code == 202, r.text  # MRS answers a show with 202
            return dict(r.json()["job_detail"])

        ok = submit("--sleep", "0.3", "--print", "split roles")
        time.sleep(1.0)
        assert state(ok)["job_state"] == "SUBMITTED", "an API-only server launches nothing"
        sup.start()
        deadline = time.monotonic() + 30
        while state(ok)["job_state"] not in TERMINAL:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert state(ok)["job_result"] == "SUCCEEDED"
        assert "split roles" in (tmp_path / "sup" / "jobs" / ok / "stdout.log").read_text()

        long = submit("--sleep", "120", "--ignore-term")
        _wait(store, long, {"RUNNING"})
        assert sup.stop() == 0
        assert state(long)["job_state"] == "KILLED"
        _no_processes(long)
        assert api.proc is not None and api.proc.poll() is None
    finally:
        if sup.proc is not None and sup.proc.poll() is None:
            sup.stop()
        api.stop()
