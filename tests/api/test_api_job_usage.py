"""``GET /v2/{project_id}/clusters/{cluster_id}/job-usage`` (ours): the roll-up of what a
cluster's ended jobs used, by user, job type and day, against jobs whose figures are known
(SQLite and PostgreSQL)."""

from __future__ import annotations

import random

import pytest
from api_helpers import assert_error, new_cluster, other_project
from jobrows import insert_jobs, job_row

DAY = 86_400_000
T0 = 1_764_547_200_000  # 2025-12-01T00:00Z


def usage_url(api, cluster_id: str | None = None, project_id: str | None = None) -> str:  # type: ignore[no-untyped-def]
    return f"/v2/{project_id or api.project_id}/clusters/{cluster_id or api.cluster_id}/job-usage"


def rollup(api, **params):  # type: ignore[no-untyped-def]
    r = api.client.get(usage_url(api), params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"since", "until", "group_by", "groups", "total"}
    return body


def _ended(api, rng: random.Random, n: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """n ended jobs over three days, of two users and three types, some without usage."""
    rows = []
    for i in range(n):
        finished = T0 + rng.randrange(0, 3 * DAY)
        measured = i % 5 != 0
        rows.append(
            job_row(
                api.project_id,
                api.cluster_id,
                state=rng.choice(["FINISHED", "FAILED", "KILLED"]),
                user_name=rng.choice(["ana", "ben"]),
                job_type=rng.choice(["SparkSubmit", "MapReduce", "HiveSql"]),
                started_ms=finished - 10_000,
                finished_ms=finished,
                cpu_seconds=round(rng.uniform(0, 50), 3) if measured else None,
                peak_memory_mb=rng.randrange(10, 4000) if measured else None,
            )
        )
    return rows


def _expected(rows: list[dict], key) -> dict:  # type: ignore[no-untyped-def]
    out: dict = {}
    for row in rows:
        g = out.setdefault(key(row), {"job_count": 0, "measured_job_count": 0, "cpu": 0.0})
        g["job_count"] += 1
        if row["cpu_seconds"] is not None:
            g["measured_job_count"] += 1
            g["cpu"] += row["cpu_seconds"]
            g["peak"] = max(g.get("peak", 0), row["peak_memory_mb"])
            g["memory"] = g.get("memory", 0.0) + row["peak_memory_mb"] * 10.0
    return out


def _day(row: dict) -> str:
    return ["2025-12-01", "2025-12-02", "2025-12-03"][(row["finished_ms"] - T0) // DAY]


@pytest.mark.parametrize(
    ("group_by", "key"),
    [
        ("user", lambda r: r["user_name"]),
        ("job_type", lambda r: r["job_type"]),
        ("day", _day),
    ],
)
def test_the_sums_match_the_jobs(api, group_by: str, key) -> None:  # type: ignore[no-untyped-def]
    rows = _ended(api, random.Random(group_by), 60)
    # Not counted: live jobs, a batch-deleted one, an SQL execution, another cluster's.
    other = new_cluster(api)
    noise = [
        job_row(api.project_id, api.cluster_id, state="RUNNING", cpu_seconds=99.0),
        job_row(api.project_id, api.cluster_id, state="FINISHED", finished_ms=T0 + 5,
                deleted_ms=T0 + 6, cpu_seconds=99.0),
        job_row(api.project_id, api.cluster_id, state="FINISHED", finished_ms=T0 + 5,
                deleted_ms=-1, cpu_seconds=99.0),
        job_row(api.project_id, other, state="FINISHED", finished_ms=T0 + 5, cpu_seconds=99.0),
    ]  # fmt: skip
    insert_jobs(api.store, rows)
    for row in noise:
        insert_jobs(api.store, [row])
    body = rollup(api, since=str(T0), until=str(T0 + 3 * DAY), group_by=group_by)
    assert (body["since"], body["until"], body["group_by"]) == (T0, T0 + 3 * DAY, group_by)
    want = _expected(rows, key)
    assert [g["group"] for g in body["groups"]] == sorted(want)
    for g in body["groups"]:
        w = want[g["group"]]
        assert g["job_count"] == w["job_count"]
        assert g["measured_job_count"] == w["measured_job_count"]
        assert g["cpu_seconds"] == pytest.approx(w["cpu"], abs=0.01)
        assert g["peak_memory_mb"] == w.get("peak")
        assert g["memory_mb_seconds"] == pytest.approx(w.get("memory", 0.0), abs=0.01)
    total = body["total"]
    assert total["job_count"] == len(rows)
    assert total["cpu_seconds"] == pytest.approx(sum(r["cpu_seconds"] or 0 for r in rows), abs=0.01)
    assert total["peak_memory_mb"] == max(r["peak_memory_mb"] or 0 for r in rows)


def test_since_is_inclusive_and_until_exclusive(api) -> None:  # type: ignore[no-untyped-def]
    at = [T0 - 1, T0, T0 + DAY - 1, T0 + DAY]
    insert_jobs(
        api.store,
        [
            job_row(api.project_id, api.cluster_id, state="FINISHED", finished_ms=ms,
                    started_ms=ms - 1000, cpu_seconds=float(i + 1), peak_memory_mb=100)
            for i, ms in enumerate(at)
        ],
    )  # fmt: skip
    body = rollup(api, since=str(T0), until=str(T0 + DAY), group_by="day")
    assert body["groups"] == [
        {
            "group": "2025-12-01",
            "job_count": 2,
            "measured_job_count": 2,
            "cpu_seconds": 5.0,  # the jobs at T0 (2.0) and T0 + DAY - 1 (3.0)
            "peak_memory_mb": 100,
            "memory_mb_seconds": 200.0,
        }
    ]
    nothing = rollup(api, since=str(T0 + 2 * DAY), until=str(T0 + 3 * DAY))
    assert nothing["groups"] == []
    assert nothing["total"] == {
        "job_count": 0,
        "measured_job_count": 0,
        "cpu_seconds": 0.0,
        "peak_memory_mb": None,
        "memory_mb_seconds": 0.0,
    }


def test_ages_and_the_default_window(api) -> None:  # type: ignore[no-untyped-def]
    from mrs_jobs.store.jobs import now_ms

    now = now_ms()
    insert_jobs(
        api.store,
        [
            job_row(api.project_id, api.cluster_id, state="FINISHED", finished_ms=now - 2 * DAY,
                    cpu_seconds=1.0),
            job_row(api.project_id, api.cluster_id, state="FINISHED", finished_ms=now - 9 * DAY,
                    cpu_seconds=10.0),
        ],
    )  # fmt: skip
    default = rollup(api)  # the last 7 days, by job type
    assert default["group_by"] == "job_type"
    assert default["total"]["cpu_seconds"] == 1.0
    assert now - 7 * DAY - 60_000 <= default["since"] <= now - 7 * DAY + 60_000
    assert rollup(api, since="2w")["total"]["cpu_seconds"] == 11.0
    assert rollup(api, since="240h", until="3d")["total"]["cpu_seconds"] == 10.0
    assert rollup(api, since="30m")["total"]["job_count"] == 0


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"group_by": "queue"}, "group_by must be one of user, job_type, day"),
        ({"since": "yesterday"}, "since must be epoch milliseconds or an age"),
        ({"until": "7x"}, "until must be epoch milliseconds or an age"),
        ({"since": "-5"}, "since must be"),
        ({"since": "1" * 16}, "since must be"),
        ({"since": "10", "until": "10"}, "since (10) must be before until (10)"),
        ({"since": "1d", "until": "2d"}, "must be before until"),
        ({"bogus": "1"}, "unknown query parameter(s): bogus"),
        ({"since": "1\x01d"}, "control characters"),
    ],
)
def test_bad_parameters_are_refused_clearly(api, params: dict, words: str) -> None:  # type: ignore[no-untyped-def]
    r = api.client.get(usage_url(api), params=params)
    assert words in assert_error(r, 400, "12000002")


def test_an_unknown_cluster(api) -> None:  # type: ignore[no-untyped-def]
    r = api.client.get(usage_url(api, cluster_id="no-such-cluster"))
    assert_error(r, 400, "12000003")


def test_another_projects_jobs_and_cluster_are_not_seen(api) -> None:  # type: ignore[no-untyped-def]
    them = other_project(api)
    insert_jobs(
        api.store,
        [job_row(them.project_id, them.cluster_id, state="FINISHED", finished_ms=T0,
                 cpu_seconds=7.0)],
    )  # fmt: skip
    # Their cluster through our project: unknown; our project's path with their credential: 403.
    r = api.client.get(usage_url(api, cluster_id=them.cluster_id))
    assert_error(r, 400, "12000003")
    r = them.client.get(usage_url(api), params={"since": str(T0)})
    assert_error(r, 403, "12000052")
    mine = them.client.get(
        usage_url(api, them.cluster_id, them.project_id), params={"since": str(T0 - 1)}
    )
    assert mine.status_code == 200 and mine.json()["total"]["cpu_seconds"] == 7.0
    assert rollup(api, since=str(T0 - 1))["total"]["job_count"] == 0


def test_unsigned_requests_are_refused(api) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    anonymous = TestClient(api.client.app, base_url="http://127.0.0.1:8080")
    assert_error(anonymous.get(usage_url(api)), 401, "APIGW.0301")
