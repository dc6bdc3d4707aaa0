"""job_counts: exact through every writer, back-filled by the migration; free-slot scheduling."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from jobrows import insert_jobs, job_row
from sqlalchemy import func, insert, select

from mrs_jobs.domain.states import JobState
from mrs_jobs.domain.validation import ListQuery
from mrs_jobs.errors import JobNotFound
from mrs_jobs.services.batch_delete import BatchDeleteService
from mrs_jobs.services.cluster_admin import ClusterAdmin
from mrs_jobs.services.context import Caller
from mrs_jobs.services.jobs import JobService
from mrs_jobs.services.projects import ProjectService
from mrs_jobs.store import Store, supervision
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.migrate import alembic_config
from mrs_jobs.store.tables import job_counts, jobs, metadata

TYPES = ("SparkSubmit", "SparkSql")


def stored_counts(store: Store) -> dict[tuple[str, str, str, str], int]:
    with store.read() as conn:
        rows = conn.execute(select(job_counts).where(job_counts.c.n != 0)).all()
    return {(r.cluster_id, r.project_id, r.state, r.job_type): r.n for r in rows}


def true_counts(store: Store) -> dict[tuple[str, str, str, str], int]:
    key = (jobs.c.cluster_id, jobs.c.project_id, jobs.c.state, jobs.c.job_type)
    with store.read() as conn:
        rows = conn.execute(
            select(*key, func.count()).where(jobs.c.deleted_ms == 0).group_by(*key)
        ).all()
    return {tuple(r[:4]): r[4] for r in rows}  # type: ignore[misc]


def assert_exact(store: Store, project_id: str, cluster_id: str) -> None:
    """The table equals a count of the jobs, and so does every total it answers."""
    want = true_counts(store)
    assert stored_counts(store) == want
    queries = [ListQuery()]
    queries += [ListQuery(job_state=s.value) for s in JobState]
    queries += [ListQuery(job_type=t) for t in TYPES]
    queries += [ListQuery(job_state="SUBMITTED", job_type="SparkSql")]
    with store.read() as conn:
        for q in queries:
            total, _ = job_store.list_visible(conn, project_id, cluster_id, q)
            expected = sum(
                n
                for (c, p, s, t), n in want.items()
                if (c, p) == (cluster_id, project_id)
                and q.job_state in (None, s)
                and q.job_type in (None, t)
            )
            assert total == expected, q


@pytest.fixture
def tenant(store: Store) -> tuple[str, str]:
    project = ProjectService(store).create_project("counts")
    cluster = ClusterAdmin(store).create_cluster(
        project,
        "c",
        components=["Spark", "Hive"],
        config={},
        max_running=3,
        max_queued=100,
    )
    return project, cluster


def test_counts_stay_exact_through_submit_transition_delete_purge(store, tenant) -> None:
    project, cluster = tenant
    caller = Caller(project_id=project, credential_id=None, user_name="u")
    jobs_svc = JobService(store, runnable_types=frozenset(TYPES), wake=lambda: None)
    deleter = BatchDeleteService(store, wake=lambda: None)

    submitted = [
        jobs_svc.submit(
            caller, cluster, job_type=TYPES[i % 2], job_name="j", arguments=["a"], properties={}
        ).id
        for i in range(8)
    ]
    assert_exact(store, project, cluster)
    assert stored_counts(store) == {
        (cluster, project, "SUBMITTED", "SparkSubmit"): 4,
        (cluster, project, "SUBMITTED", "SparkSql"): 4,
    }
    # An idempotent retry adds nothing.
    first = jobs_svc.submit(
        caller,
        cluster,
        job_type="SparkSql",
        job_name="k",
        arguments=[],
        properties={},
        idempotency_key="key-1",
    )
    again = jobs_svc.submit(
        caller,
        cluster,
        job_type="SparkSql",
        job_name="k",
        arguments=[],
        properties={},
        idempotency_key="key-1",
    )
    assert again.id == first.id
    assert_exact(store, project, cluster)

    with store.write() as conn:  # the supervisor's claim, then a run to its end
        claimed = supervision.claim(conn, project, cluster, "sup", 1, lambda i: f"/w/{i}", False)
    assert len(claimed) == 3
    assert_exact(store, project, cluster)
    with store.write() as conn:
        job_store.transition(conn, claimed[0].id, JobState.RUNNING)
        job_store.transition(conn, claimed[1].id, JobState.RUNNING)
        job_store.transition(conn, claimed[1].id, JobState.FINISHED, values={"result": "FAILED"})
        supervision.set_fields(conn, claimed[0].id, progress=0.5, pid=1)  # no count change
    assert_exact(store, project, cluster)

    jobs_svc.kill(caller, cluster, submitted[-1])  # a queued job ends at once
    assert_exact(store, project, cluster)

    with pytest.raises(JobNotFound):  # all or nothing: one unknown id changes no count
        deleter.delete(caller, cluster, [submitted[-2], claimed[0].id, "no-such-job"])
    assert_exact(store, project, cluster)
    before = sum(stored_counts(store).values())
    deleter.delete(caller, cluster, [submitted[-2], claimed[0].id, claimed[1].id])
    assert sum(stored_counts(store).values()) == before - 3
    assert_exact(store, project, cluster)

    with store.write() as conn:
        doomed = [j.id for j in supervision.deleted_jobs(conn)]
        job_store.purge(conn, doomed)  # deleted rows were no longer counted
        job_store.purge(conn, [submitted[0]])  # a visible one (not a path the service takes)
    assert_exact(store, project, cluster)

    # Bulk writers outside the services (a load, an operator's SQL) are counted too.
    insert_jobs(store, [job_row(project, cluster, state="FINISHED") for _ in range(5)])
    insert_jobs(store, [job_row(project, cluster, state="FAILED", deleted_ms=9)])
    assert_exact(store, project, cluster)


def test_queued_clusters_lists_only_clusters_with_a_free_slot(store) -> None:
    project = ProjectService(store).create_project("slots")

    def cluster(max_running: int) -> str:
        return ClusterAdmin(store).create_cluster(
            project,
            "c",
            components=["Spark"],
            config={},
            max_running=max_running,
            max_queued=10,
        )

    full, free, none_queued, zero = cluster(1), cluster(2), cluster(5), cluster(0)
    insert_jobs(
        store,
        [
            job_row(project, full, state="SUBMITTED"),
            job_row(project, full, state="RUNNING"),
            job_row(project, free, state="SUBMITTED"),
            job_row(project, free, state="ACCEPTED"),
            job_row(project, none_queued, state="FINISHED"),
            job_row(project, none_queued, state="SUBMITTED", deleted_ms=4),
            job_row(project, zero, state="SUBMITTED"),
        ],
    )
    with store.read() as conn:
        assert supervision.queued_clusters(conn) == [(project, free)]
    # A deleted job still running holds its slot until it is killed.
    insert_jobs(store, [job_row(project, free, state="RUNNING", deleted_ms=7)])
    with store.read() as conn:
        assert supervision.queued_clusters(conn) == []


# -- the migration from a store created at 0001 ----------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def store_at_0001(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store whose schema was made by revision 0001 alone (as users' stores were)."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'old.db'}")
        cleanup = None
    else:
        from support_db import PG_URL, pg_or_skip

        pg_or_skip()
        import sqlalchemy

        schema = "t_" + uuid.uuid4().hex[:12]
        admin = sqlalchemy.create_engine(PG_URL)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in PG_URL else "?"
        store = Store(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")

        def cleanup() -> None:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()

    cfg = alembic_config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    try:
        yield store
    finally:
        store.dispose()
        if cleanup is not None:
            cleanup()


def test_store_at_0001_upgrades_with_jobs_intact_and_counts_backfilled(store_at_0001) -> None:
    store = store_at_0001
    rows = [
        job_row("p", "c", state=s, job_type=t)
        for s in ("FINISHED", "SUBMITTED")
        for t in TYPES
        for _ in range(3)
    ]
    rows += [job_row("p", "c", state="RUNNING", deleted_ms=5), job_row("p", "c2")]
    with store.engine.begin() as conn:  # the 0001 table, not today's metadata
        conn.execute(insert(jobs), rows)
        old_columns = [jobs.c[c["name"]] for c in sqlalchemy.inspect(conn).get_columns("jobs")]

    def as_stored() -> dict[str, dict]:
        """The rows as the 0001 columns hold them (later revisions add columns)."""
        with store.engine.connect() as conn:
            found = conn.execute(select(*old_columns).where(jobs.c.id.in_([r["id"] for r in rows])))
            return {r.id: dict(r._mapping) for r in found}

    before = as_stored()
    assert len(before) == len(rows)

    store.migrate()

    assert as_stored() == before
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert stored_counts(store) == true_counts(store)
    assert stored_counts(store)[("c", "p", "SUBMITTED", "SparkSql")] == 3
    assert_exact(store, "p", "c")
    # The triggers run from now on.
    insert_jobs(store, [job_row("p", "c", state="SUBMITTED", job_type="SparkSql")])
    assert stored_counts(store)[("c", "p", "SUBMITTED", "SparkSql")] == 4
    assert_exact(store, "p", "c")
