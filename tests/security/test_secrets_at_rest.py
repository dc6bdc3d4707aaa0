"""Secrets at rest (issue 13): a private data directory, job secrets sealed until the job ends.

- A real ``mrs-jobs serve`` leaves the data directory 0700 and the store (with its -wal and
  -shm), secret.key, bootstrap.json and serve.lock 0600, and tightens a looser install (0755
  directory, 0644 files, an old 0755 job directory) on its next start.
- A submitted secret value is never in the store in plain text (the SQLite file and its -wal
  read as bytes, the properties column queried) while the job is queued or running; the engine
  still receives it; once the job ends the record holds the mask, not a sealed value. On
  SQLite and PostgreSQL.
- A sensitive argument (MRS's ``@`` mark) is sealed the same way while the job lives and
  masked (``@******``) once it ends; the engine gets its real value.
- Rows stored before values were sealed still run, are resealed at start-up when live and
  masked when ended; the idempotency hash and the API answers are those of the plain request.
"""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from support_server import ServerProcess
from support_supervisor import FakeEngine, World, drive

from mrs_jobs.domain.render import MASK
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec, LaunchSpec
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.secretbox import SecretBox, is_sealed, load_secret_box
from mrs_jobs.services.batch_delete import BatchDeleteService
from mrs_jobs.services.bootstrap import bootstrap
from mrs_jobs.services.context import Caller
from mrs_jobs.services.job_secrets import mask_ended_job_secrets, seal_live_job_secrets
from mrs_jobs.services.jobs import JobService
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import jobs
from mrs_jobs.supervisor.jobfiles import spec_of
from mrs_jobs.supervisor.loop import Supervisor

ENDED = ("FINISHED", "FAILED", "KILLED")
RUNNABLE = frozenset({"SparkSubmit"})


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _secrets() -> dict[str, str]:
    tag = uuid.uuid4().hex
    return {
        "fs.obs.secret.key": f"ObsSk{tag}",
        "fs.obs.access.key": f"ObsAk{tag}",
        "db.password": f"Pw{tag}",
    }


# -- the data directory ----------------------------------------------------------------------


def _private_files(data: Path) -> list[Path]:
    return [
        data / name
        for name in (
            "mrs-jobs.db",
            "mrs-jobs.db-wal",
            "mrs-jobs.db-shm",
            "secret.key",
            "bootstrap.json",
            "serve.lock",
        )
    ]


def test_a_real_start_leaves_the_data_dir_private_and_tightens_an_old_install(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data).start()  # the test process's umask (0022 here) is inherited
    try:
        server.bootstrap  # noqa: B018 - written before the server says it runs
        for path in _private_files(data):
            assert path.exists(), path  # WAL: -wal and -shm exist while the store is open
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
        assert _mode(data) == 0o700
    finally:
        server.stop()

    # An install from before: everything readable by all, an old job directory 0755.
    old_job = data / "jobs" / str(uuid.uuid4())
    old_job.mkdir(parents=True)
    (old_job / "stdout.log").write_text("old output\n")
    for path in [data, data / "jobs", old_job]:
        path.chmod(0o755)
    for path in _private_files(data):
        if path.exists():
            path.chmod(0o644)
    server = ServerProcess(data).start()
    try:
        for path in _private_files(data):
            assert path.exists(), path
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
        assert _mode(data) == 0o700
        assert _mode(data / "jobs") == 0o700
        assert _mode(old_job) == 0o700
    finally:
        server.stop()


# -- job secrets -----------------------------------------------------------------------------


class EnvEngine(FakeEngine):
    """The fake engine, given the job's properties in its environment (as the real engines
    pass keys), so its ``--dump`` shows what the engine received."""

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        built = super().build(job, cluster, workdir)
        env = dict(built.env)
        for i, (key, value) in enumerate(sorted(job.properties.items())):
            env[f"PROP_{i}"] = f"{key}={value}"
        return LaunchSpec(built.argv, env, built.cwd, built.notes)


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    """A service world whose submits are sealed, as the API's are."""
    settings = Settings(
        data_dir=tmp_path / "data",
        poll_interval=0.05,
        kill_grace_seconds=1.0,
        database_url=store.url,
    )
    box = load_secret_box(settings)
    boot = bootstrap(store, box, max_running=2, max_queued=100, parallelism=1)
    assert boot is not None
    yield World(
        store,
        settings,
        JobService(store, runnable_types=RUNNABLE, wake=lambda: None, secrets=box),
        BatchDeleteService(store, wake=lambda: None),
        Caller(boot.project_id, None, "tester", "req-1"),
        boot.cluster_id,
        boot,
    )


def _submit(world: World, secrets: dict[str, str], *args: str) -> str:
    props = {**secrets, "spark.executor.memory": "1g"}
    job = world.jobs.submit(
        world.caller,
        world.cluster_id,
        job_type="SparkSubmit",
        job_name="secrets",
        arguments=list(args),
        properties=props,
    )
    return job.id


def _stored(store: Store, job_id: str) -> dict[str, str]:
    with store.read() as conn:
        text = conn.execute(select(jobs.c.properties).where(jobs.c.id == job_id)).scalar_one()
    return json.loads(text)


def _raw_store_bytes(store: Store) -> bytes:
    """The SQLite file and its -wal as bytes (what a reader of the data dir would get)."""
    db = Path(store.url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


def _assert_not_stored_plain(
    store: Store, job_id: str, secrets: dict[str, str], raw: bool = True
) -> None:
    """``raw``: also in the SQLite file and -wal as bytes (not for a row once stored plain,
    whose old bytes stay in free space and old WAL frames until overwritten)."""
    stored = _stored(store, job_id)
    for key, value in secrets.items():
        assert stored[key] != value and is_sealed(stored[key]), (key, stored[key])
        assert value not in json.dumps(stored)
    assert stored["spark.executor.memory"] == "1g"
    if raw and store.url.startswith("sqlite"):
        raw = _raw_store_bytes(store)
        assert raw  # the store is really there
        for key, value in secrets.items():
            assert value.encode() not in raw, key


def _assert_masked(store: Store, job_id: str, secrets: dict[str, str]) -> None:
    stored = _stored(store, job_id)
    for key in secrets:
        assert stored[key] == MASK, (key, stored[key])
    assert stored["spark.executor.memory"] == "1g"


def test_secret_values_are_sealed_while_the_job_lives_and_masked_once_it_ends(
    world: World,
) -> None:
    secrets = _secrets()
    sup = Supervisor(world.store, world.settings, EngineRegistry([EnvEngine()]))
    job_id = _submit(world, secrets, "--dump", "dump.json", "--sleep", "2")
    _assert_not_stored_plain(world.store, job_id, secrets)  # queued

    drive(sup, lambda: world.show(job_id).state == "RUNNING")
    workdir = Path(world.show(job_id).workdir)
    drive(sup, lambda: (workdir / "dump.json").exists())
    _assert_not_stored_plain(world.store, job_id, secrets)  # running

    env = json.loads((workdir / "dump.json").read_text())["environ"]
    received = {v.split("=", 1)[0]: v.split("=", 1)[1] for k, v in env.items() if k[:5] == "PROP_"}
    assert received == {**secrets, "spark.executor.memory": "1g"}  # the real values

    drive(sup, lambda: world.show(job_id).state in ENDED)
    assert world.show(job_id).result == "SUCCEEDED"
    _assert_masked(world.store, job_id, secrets)
    if world.store.url.startswith("sqlite"):
        raw = _raw_store_bytes(world.store)
        assert not any(v.encode() in raw for v in secrets.values())


def _stored_arguments(store: Store, job_id: str) -> list[str]:
    with store.read() as conn:
        text = conn.execute(select(jobs.c.arguments).where(jobs.c.id == job_id)).scalar_one()
    return json.loads(text)


def test_sensitive_arguments_are_sealed_while_the_job_lives_and_masked_once_it_ends(
    world: World,
) -> None:
    value = "db.password=Zq8-at-rest"
    sup = Supervisor(world.store, world.settings, EngineRegistry([EnvEngine()]))
    job_id = _submit(world, {}, "--echo-args", "plain", "@" + value)
    stored = _stored_arguments(world.store, job_id)  # queued
    assert stored[:2] == ["--echo-args", "plain"]
    assert stored[2].startswith("@") and is_sealed(stored[2][1:]), stored
    assert value not in json.dumps(stored)
    if world.store.url.startswith("sqlite"):
        assert value.encode() not in _raw_store_bytes(world.store)
    assert spec_of(world.show(job_id), load_secret_box(world.settings)).arguments[-1] == value

    drive(sup, lambda: world.show(job_id).state in ENDED)
    job = world.show(job_id)
    assert job.result == "SUCCEEDED"
    out = (Path(job.workdir) / "stdout.log").read_text().strip().splitlines()[-1]
    assert json.loads(out) == ["plain", value]  # the engine got the real value
    assert _stored_arguments(world.store, job_id) == ["--echo-args", "plain", "@" + MASK]


def test_every_way_of_ending_masks_the_values(world: World) -> None:
    secrets = _secrets()
    sup = Supervisor(world.store, world.settings, EngineRegistry([EnvEngine()]))
    killed_queued = _submit(world, secrets, "--sleep", "30")
    world.jobs.kill(world.caller, world.cluster_id, killed_queued)  # before any launch
    running = _submit(world, secrets, "--sleep", "30")
    failed = _submit(world, secrets, "--exit", "3")
    refused = _submit(world, secrets, "--refuse")
    drive(
        sup,
        lambda: world.show(running).state == "RUNNING"
        and world.show(failed).state in ENDED
        and world.show(refused).state in ENDED,
    )
    _assert_not_stored_plain(world.store, running, secrets)
    world.jobs.kill(world.caller, world.cluster_id, running)
    drive(sup, lambda: world.show(running).state in ENDED)
    for job_id, result in (
        (killed_queued, "KILLED"),
        (running, "KILLED"),
        (failed, "FAILED"),
        (refused, "FAILED"),
    ):
        assert world.show(job_id).result == result, job_id
        _assert_masked(world.store, job_id, secrets)


def _store_plain(world: World, secrets: dict[str, str], *args: str) -> str:
    """A job as stored before values were sealed (a submit without the key)."""
    legacy = JobService(world.store, runnable_types=RUNNABLE, wake=lambda: None)  # no key
    job = legacy.submit(
        world.caller,
        world.cluster_id,
        job_type="SparkSubmit",
        job_name="legacy",
        arguments=list(args),
        properties={**secrets, "spark.executor.memory": "1g"},
    )
    assert _stored(world.store, job.id)["db.password"] == secrets["db.password"]
    return job.id


def test_rows_stored_in_plain_text_still_run_and_are_sealed_or_masked(world: World) -> None:
    secrets = _secrets()
    box = load_secret_box(world.settings)
    # A plain live row opens unchanged: its engine gets the values.
    live = _store_plain(world, secrets, "--dump", "dump.json")
    assert spec_of(world.show(live), box).properties["db.password"] == secrets["db.password"]
    # Start-up reseals it (once).
    assert seal_live_job_secrets(world.store, box) == 1
    assert seal_live_job_secrets(world.store, box) == 0
    _assert_not_stored_plain(world.store, live, secrets, raw=False)
    # An ended plain row: masked by the one-off pass (mrs-jobs admin reencrypt-secrets).
    ended = _store_plain(world, secrets)
    with world.store.write() as conn:
        conn.execute(
            update(jobs).where(jobs.c.id == ended).values(state="FINISHED", result="SUCCEEDED")
        )
    assert mask_ended_job_secrets(world.store) == 1
    assert mask_ended_job_secrets(world.store) == 0
    _assert_masked(world.store, ended, secrets)

    sup = Supervisor(world.store, world.settings, EngineRegistry([EnvEngine()]))
    drive(sup, lambda: world.show(live).state in ENDED)
    job = world.show(live)
    assert job.result == "SUCCEEDED"
    env = json.loads((Path(job.workdir) / "dump.json").read_text())["environ"]
    assert f"db.password={secrets['db.password']}" in env.values()
    _assert_masked(world.store, live, secrets)


def test_a_value_sealed_by_another_key_refuses_the_launch(world: World) -> None:
    secrets = _secrets()
    other = SecretBox(b"k" * 32)
    job_id = _submit(world, secrets, "--sleep", "1")
    with pytest.raises(EngineRefused) as refused:
        spec_of(world.show(job_id), other)
    assert not any(v in str(refused.value) for v in secrets.values())
    sup = Supervisor(world.store, world.settings, EngineRegistry([EnvEngine()]), secrets=other)
    drive(sup, lambda: world.show(job_id).state in ENDED)
    job = world.show(job_id)
    assert job.result == "FAILED" and "secret properties" in job.reason
    _assert_masked(world.store, job_id, secrets)


def test_a_job_value_copied_onto_another_job_does_not_open(world: World) -> None:
    box = load_secret_box(world.settings)
    first = _submit(world, _secrets(), "--sleep", "1")
    second = _submit(world, _secrets(), "--sleep", "1")
    sealed = _stored(world.store, first)["db.password"]
    props = {**_stored(world.store, second), "db.password": sealed}
    with world.store.write() as conn:
        conn.execute(update(jobs).where(jobs.c.id == second).values(properties=json.dumps(props)))
    with pytest.raises(EngineRefused):
        spec_of(world.show(second), box)


def test_store_scrub_masks_only_ended_jobs(world: World) -> None:
    secrets = _secrets()
    job_id = _submit(world, secrets, "--sleep", "1")
    with world.store.write() as conn:
        assert not job_store.scrub_secrets(conn, job_id)  # live: kept for the run
    _assert_not_stored_plain(world.store, job_id, secrets)


# -- the API answers and idempotency (in-process app) -----------------------------------------


def test_api_answers_stay_masked_and_a_retry_matches_the_plain_request(api) -> None:
    secrets = _secrets()
    body = {
        "job_type": "SparkSubmit",
        "job_name": "secrets",
        "arguments": ["/opt/a.py"],
        "properties": {**secrets, "spark.executor.memory": "1g"},
    }
    first = api.client.post(api.base, json=body, headers={"X-Idempotency-Key": "k-secrets"})
    again = api.client.post(api.base, json=body, headers={"X-Idempotency-Key": "k-secrets"})
    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == again.json()
    job_id = first.json()["job_submit_result"]["job_id"]
    other = dict(body, properties={**body["properties"], "db.password": "another"})
    refused = api.client.post(api.base, json=other, headers={"X-Idempotency-Key": "k-secrets"})
    assert refused.status_code == 400, refused.text

    _assert_not_stored_plain(api.store, job_id, secrets)
    expected = (
        "{fs.obs.secret.key=******, fs.obs.access.key=******, db.password=******, "
        "spark.executor.memory=1g}"
    )
    shown = api.client.get(f"{api.base}/{job_id}").json()["job_detail"]
    assert shown["properties"] == expected
    listed = api.client.get(api.base).json()["job_list"]
    assert [j["properties"] for j in listed if j["job_id"] == job_id] == [expected]
