"""What the supervisor's housekeeping reads: each cluster's live job types, from job_counts for
visible jobs and the jobs awaiting purge for deleted ones (never every queued job)."""

from __future__ import annotations

from jobrows import insert_jobs, job_row

from mrs_jobs.services.cluster_admin import ClusterAdmin
from mrs_jobs.services.projects import ProjectService
from mrs_jobs.store import supervision


def test_live_types_come_from_counts_and_deleted_live_jobs(store) -> None:
    project = ProjectService(store).create_project("housekeeping")
    admin = ClusterAdmin(store)
    first, second, third = (
        admin.create_cluster(
            project, n, components=["Spark"], config={}, max_running=1, max_queued=9
        )
        for n in "abc"
    )
    insert_jobs(
        store,
        [
            job_row(project, first, state="SUBMITTED", job_type="SparkSql"),
            job_row(project, first, state="RUNNING", job_type="SparkSubmit"),
            job_row(project, first, state="FINISHED", job_type="HiveSql"),  # ended
            job_row(project, second, state="ACCEPTED", job_type="Flink", deleted_ms=5),
            job_row(project, second, state="KILLED", job_type="SparkSql", deleted_ms=5),
            job_row(project, third, state="FAILED", job_type="SparkSql"),
        ],
    )
    with store.read() as conn:
        live = supervision.live_types_by_cluster(conn)
    assert live == {first: {"SparkSql", "SparkSubmit"}, second: {"Flink"}}
