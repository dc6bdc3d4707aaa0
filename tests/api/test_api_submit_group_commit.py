"""Submits arriving together are committed together (services/group_commit.py,
services/submits.py): fewer transactions than submits, every job whole (its row, its three
events in cursor order, its audit row), and each submit judged alone."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from api_helpers import new_cluster, other_project
from jobrows import audit_rows, events_of
from support import SigV4Auth

from mrs_jobs.domain.states import JobState
from mrs_jobs.errors import ClusterNotFound, ComponentMissing, QueueFull
from mrs_jobs.services.context import Caller
from mrs_jobs.services.submits import Submitted
from mrs_jobs.store import events as events_store
from mrs_jobs.store import jobs as job_store

SUBMIT_PATH = ("NEW", "NEW_SAVING", "SUBMITTED")


async def _submit_many(api, n: int) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=api.client.app)
    auth = SigV4Auth(api.ak, api.sk, api.project_id)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8080", auth=auth
    ) as client:
        body = {"job_type": "SparkSubmit", "arguments": ["/opt/a.py", "1"]}
        return await asyncio.gather(
            *(client.post(api.base, json={**body, "job_name": f"g{i}"}) for i in range(n))
        )


def test_concurrent_submits_share_transactions_and_every_job_is_whole(api) -> None:
    new_cluster(api)  # (a second cluster: the counts below are this one's alone)
    commits: list[int] = []
    stop = api.store.listen_commits(lambda: commits.append(1))
    try:
        answers = asyncio.run(_submit_many(api, 40))
    finally:
        stop()
    assert [r.status_code for r in answers] == [200] * 40, answers[0].text
    ids = [r.json()["job_submit_result"]["job_id"] for r in answers]
    assert len(set(ids)) == 40
    assert len(commits) < 40  # one transaction per submit before group commit
    with api.store.read() as conn:
        counts = job_store.count_states(conn, api.cluster_id, [JobState.SUBMITTED])
        names = {
            job_store.get_visible(conn, api.project_id, api.cluster_id, i).job_name for i in ids
        }
        page = events_store.list_feed(conn, api.project_id, after=0, limit=1000)
    assert counts == 40 and names == {f"g{i}" for i in range(40)}
    for job_id in ids:
        assert [to for _, to in events_of(api.store, job_id)] == list(SUBMIT_PATH)
    seqs = [e.seq for e in page]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) == 120
    audited = {row["detail"]["job_id"] for row in audit_rows(api.store, "submit")}
    assert audited == set(ids)


def test_each_submit_of_a_batch_is_judged_alone(api) -> None:
    """One batch: a full queue's overflow, a missing component, an unknown cluster and another
    project's cluster are refused one by one; the rest are queued."""
    jobs = api.client.app.state.ctx.jobs
    small = new_cluster(api, max_queued=2)
    flink_less = new_cluster(api, components=["Spark"])
    theirs = other_project(api).cluster_id
    mine = jobs.write_submits  # the group commit's write, given one mixed batch
    caller = _caller(api)

    def pending(cluster_id: str, job_type: str = "SparkSubmit"):
        return jobs.prepare_submit(
            caller,
            cluster_id,
            job_type=job_type,
            job_name="b",
            arguments=["/opt/a.py"] if job_type == "SparkSubmit" else ["/opt/a.jar"],
            properties={},
        )

    batch = [
        pending(small),
        pending(small),
        pending(small),  # the third: the queue holds 2
        pending(flink_less, "Flink"),
        pending(str(uuid.uuid4())),
        pending(theirs),
        pending(api.cluster_id),
    ]
    outcomes = mine(batch)
    assert [type(o) for o in outcomes] == [
        Submitted,
        Submitted,
        QueueFull,
        ComponentMissing,
        ClusterNotFound,
        ClusterNotFound,
        Submitted,
    ]
    with api.store.read() as conn:
        assert job_store.count_states(conn, small, [JobState.SUBMITTED]) == 2
        written = [job_store.get_job(conn, p.job_id) is not None for p in batch]
    assert written == [True, True, False, False, False, False, True]
    for p, o in zip(batch, outcomes, strict=True):
        assert len(events_of(api.store, p.job_id)) == (3 if isinstance(o, Submitted) else 0)


def _caller(api) -> Caller:
    return Caller(project_id=api.project_id, credential_id=None, user_name="admin")
