"""Batch delete under concurrency (§8): disjoint deletes with submits, overlapping deletes."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from typing import Any

from api_helpers import base_of, client_for, new_cluster, other_project
from jobrows import insert_jobs, job_row, raw_job
from support import SigV4Auth

from mrs_jobs.errors import DomainError, JobNotFound
from mrs_jobs.services.batch_delete import BatchDeleteService
from mrs_jobs.services.context import Caller
from mrs_jobs.services.jobs import JobService


def run_together(tasks: list[Callable[[], Any]], timeout: float = 60) -> list[Any]:
    """Start every task at the same instant; return each result or the exception raised."""
    barrier = threading.Barrier(len(tasks))
    results: list[Any] = [None] * len(tasks)

    def runner(i: int) -> None:
        barrier.wait()
        try:
            results[i] = tasks[i]()
        except Exception as exc:  # collected and checked by the caller
            results[i] = exc

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(len(tasks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a concurrent call hung"
    return results


def test_disjoint_deletes_and_submits_at_the_same_time(api) -> None:
    cluster = new_cluster(api, max_queued=1000)
    base = base_of(api.project_id, cluster)
    other = other_project(api)
    bystander = other.submit()
    ids = insert_jobs(api.store, [job_row(api.project_id, cluster) for _ in range(60)])
    to_delete = [ids[i * 10 : i * 10 + 10] for i in range(4)]  # 40 in 4 disjoint sets
    kept = ids[40:]
    app = api.client.app

    def deleter(chunk: list[str]) -> Callable[[], list[tuple[int, str]]]:
        def run() -> list[tuple[int, str]]:
            client = client_for(app, SigV4Auth(api.ak, api.sk, api.project_id))
            out = []
            for half in (chunk[:5], chunk[5:]):
                r = client.post(f"{base}/batch-delete", json={"job_id_list": half})
                out.append((r.status_code, r.text))
            return out

        return run

    def submitter(n: int) -> Callable[[], list[tuple[int, str]]]:
        def run() -> list[tuple[int, str]]:
            client = client_for(app, SigV4Auth(api.ak, api.sk, api.project_id))
            out = []
            for i in range(n):
                r = client.post(base, json={"job_type": "SparkSubmit", "job_name": f"s{i}"})
                out.append((r.status_code, r.text))
            return out

        return run

    def killer() -> list[tuple[int, str]]:
        client = client_for(app, SigV4Auth(api.ak, api.sk, api.project_id))
        return [(client.post(f"{base}/{k}/kill").status_code, k) for k in kept[:5]]

    tasks = [deleter(c) for c in to_delete] + [submitter(8), submitter(8), killer]
    results = run_together(tasks)
    for res in results:
        assert not isinstance(res, Exception), repr(res)
    for res in results[:4]:
        assert [s for s, _ in res] == [202, 202], res
    submitted = []
    for res in results[4:6]:
        assert [s for s, _ in res] == [200] * 8, res
        submitted += [__import__("json").loads(t)["job_submit_result"]["job_id"] for _, t in res]
    assert [s for s, _ in results[6]] == [202] * 5
    gone = [i for chunk in to_delete for i in chunk]
    for job_id in gone:
        assert raw_job(api.store, job_id)["deleted_ms"] > 0
        assert api.client.get(f"{base}/{job_id}").json()["error_code"] == "0176"
    r = api.client.get(base, params={"limit": 1000})
    assert r.json()["total_record"] == len(kept) + len(submitted)
    assert {j["job_id"] for j in r.json()["job_list"]} == set(kept) | set(submitted)
    for job_id in kept[:5]:
        assert raw_job(api.store, job_id)["state"] == "KILLED"
    assert other.client.get(f"{other.base}/{bystander}").status_code == 202


def _services(api) -> tuple[BatchDeleteService, Caller]:  # type: ignore[no-untyped-def]
    return BatchDeleteService(api.store, wake=lambda: None), Caller(
        project_id=api.project_id, credential_id=None, user_name="admin", request_id="t"
    )


def _check_one_winner(api, sets: list[list[str]], results: list[Any]) -> None:  # type: ignore[no-untyped-def]
    winners = [i for i, res in enumerate(results) if isinstance(res, int)]
    assert len(winners) == 1, results
    (w,) = winners
    loser = 1 - w
    assert isinstance(results[loser], JobNotFound), repr(results[loser])
    overlap = set(sets[0]) & set(sets[1])
    # The loser names exactly the jobs the winner took, not its own jobs that still exist.
    assert set(results[loser].job_ids) == overlap
    stamps = {raw_job(api.store, j)["deleted_ms"] for j in sets[w]}
    assert len(stamps) == 1 and stamps.pop() > 0, "the winner's set is hidden as one"
    for job_id in set(sets[loser]) - overlap:
        assert raw_job(api.store, job_id)["deleted_ms"] == 0, "the loser deleted nothing"


def test_overlapping_deletes_have_exactly_one_winner(api) -> None:
    service, caller = _services(api)
    for _ in range(6):
        ids = insert_jobs(api.store, [job_row(api.project_id, api.cluster_id) for _ in range(50)])
        sets = [ids[0:30], ids[20:50]]
        for s in sets:
            random.shuffle(s)
        results = run_together(
            [lambda s=s: service.delete(caller, api.cluster_id, s) for s in sets]
        )
        _check_one_winner(api, sets, results)


def test_large_overlapping_deletes_neither_deadlock_nor_half_delete(api) -> None:
    """Over 500 ids the store works in chunks; two lists in different orders must not
    lock rows in opposite orders (a deadlock would surface as a 500 0161)."""
    service, caller = _services(api)
    for _ in range(2):
        ids = insert_jobs(api.store, [job_row(api.project_id, api.cluster_id) for _ in range(1000)])
        sets = [ids[0:800], ids[200:1000]]
        sets[0].reverse()
        random.shuffle(sets[1])
        results = run_together(
            [lambda s=s: service.delete(caller, api.cluster_id, s) for s in sets]
        )
        _check_one_winner(api, sets, results)


def test_kill_and_delete_of_the_same_job_race_cleanly(api) -> None:
    jobs = JobService(api.store, runnable_types=frozenset({"SparkSubmit"}), wake=lambda: None)
    service, caller = _services(api)
    for _ in range(5):
        (job_id,) = insert_jobs(api.store, [job_row(api.project_id, api.cluster_id)])
        results = run_together(
            [
                lambda j=job_id: jobs.kill(caller, api.cluster_id, j),
                lambda j=job_id: service.delete(caller, api.cluster_id, [j]),
            ]
        )
        assert results[1] == 0, repr(results[1])  # the delete always wins its job
        kill = results[0]
        assert kill is None or isinstance(kill, JobNotFound), repr(kill)
        assert not isinstance(kill, DomainError) or kill.job_ids == [job_id]
        row = raw_job(api.store, job_id)
        assert row["deleted_ms"] > 0
        assert row["state"] in ("SUBMITTED", "KILLED")
        assert (row["state"] == "KILLED") == (kill is None)


def test_deletes_in_two_projects_do_not_touch_each_other(api) -> None:
    other = other_project(api)
    mine = insert_jobs(api.store, [job_row(api.project_id, api.cluster_id) for _ in range(30)])
    theirs = insert_jobs(
        api.store, [job_row(other.project_id, other.cluster_id) for _ in range(30)]
    )
    service, caller = _services(api)
    other_caller = Caller(other.project_id, None, "bob", str(uuid.uuid4()))
    results = run_together(
        [
            lambda: service.delete(caller, api.cluster_id, mine[:20]),
            lambda: service.delete(other_caller, other.cluster_id, theirs[10:]),
            # Someone trying to delete across projects fails without effect.
            lambda: service.delete(caller, api.cluster_id, [mine[25], theirs[0]]),
        ]
    )
    assert results[0] == 0 and results[1] == 0
    assert isinstance(results[2], JobNotFound) and results[2].job_ids == [theirs[0]]
    assert all(raw_job(api.store, j)["deleted_ms"] > 0 for j in mine[:20] + theirs[10:])
    assert all(raw_job(api.store, j)["deleted_ms"] == 0 for j in mine[20:] + theirs[:10])
