"""List (contract §6): 202, exact totals, every filter, paging by page number, sort and ties."""

from __future__ import annotations

import uuid

import pytest
from api_helpers import assert_error, base_of, new_cluster, other_project
from jobrows import insert_jobs, job_row


def ids_of(r) -> list[str]:  # type: ignore[no-untyped-def]
    assert r.status_code == 202, r.text
    return [j["job_id"] for j in r.json()["job_list"]]


@pytest.fixture
def noise(api):  # type: ignore[no-untyped-def]
    """Jobs that must never show up: another cluster, another project, a deleted one."""
    other_cluster = new_cluster(api)
    other = other_project(api)
    insert_jobs(
        api.store,
        [
            job_row(api.project_id, other_cluster, submitted_ms=2_000),
            job_row(other.project_id, other.cluster_id, submitted_ms=2_000),
            job_row(api.project_id, api.cluster_id, submitted_ms=2_000, deleted_ms=5),
        ],
    )
    return other


def test_list_shape_total_and_default_paging(api, noise) -> None:
    rows = [job_row(api.project_id, api.cluster_id, submitted_ms=1_000 + i) for i in range(25)]
    ids = insert_jobs(api.store, rows)
    r = api.client.get(api.base)
    assert r.status_code == 202
    assert set(r.json()) == {"total_record", "job_list"}
    assert r.json()["total_record"] == 25
    # Default: limit 10, newest first.
    assert ids_of(r) == ids[::-1][:10]
    # total_record is independent of the page.
    for params in ({"limit": 3}, {"limit": 10, "offset": 3}, {"limit": 1000}, {"offset": 99}):
        r = api.client.get(api.base, params=params)
        assert r.json()["total_record"] == 25, params
    assert len(ids_of(api.client.get(api.base, params={"limit": 10, "offset": 3}))) == 5
    assert ids_of(api.client.get(api.base, params={"offset": 99})) == []


def test_offset_is_a_one_based_page_number(api) -> None:
    rows = [job_row(api.project_id, api.cluster_id, submitted_ms=1_000 + i) for i in range(25)]
    ids = insert_jobs(api.store, rows)  # ids[i] is the (i+1)-th oldest
    asc = {"sort_by": "asc", "limit": 10}
    assert ids_of(api.client.get(api.base, params={**asc, "offset": 2})) == ids[10:20]
    assert ids_of(api.client.get(api.base, params={**asc, "offset": 1})) == ids[0:10]
    assert ids_of(api.client.get(api.base, params={**asc, "offset": 0})) == ids[0:10]
    assert ids_of(api.client.get(api.base, params={**asc, "offset": 3})) == ids[20:25]
    assert ids_of(api.client.get(api.base, params={"sort_by": "asc"})) == ids[0:10]
    pages = [
        ids_of(api.client.get(api.base, params={"sort_by": "asc", "limit": 4, "offset": p}))
        for p in range(1, 8)
    ]
    assert [i for page in pages for i in page] == ids
    desc = ids_of(api.client.get(api.base, params={"sort_by": "desc", "limit": 10, "offset": 2}))
    assert desc == ids[::-1][10:20]


def test_sort_ties_on_submitted_time_are_broken_by_job_id(api) -> None:
    tied = [str(uuid.uuid4()) for _ in range(8)]
    rows = [job_row(api.project_id, api.cluster_id, id=i, submitted_ms=5_000) for i in tied]
    rows.append(job_row(api.project_id, api.cluster_id, id="0" * 36, submitted_ms=6_000))
    rows.append(job_row(api.project_id, api.cluster_id, id="f" * 36, submitted_ms=4_000))
    insert_jobs(api.store, rows)
    asc = ids_of(api.client.get(api.base, params={"sort_by": "asc", "limit": 100}))
    assert asc == ["f" * 36, *sorted(tied), "0" * 36]
    desc = ids_of(api.client.get(api.base, params={"sort_by": "desc", "limit": 100}))
    assert desc == ["0" * 36, *sorted(tied, reverse=True), "f" * 36]
    default = ids_of(api.client.get(api.base, params={"limit": 100}))
    assert default == desc
    # Paging through the ties neither repeats nor skips a job.
    for sort in ("asc", "desc"):
        paged = []
        for page in range(1, 5):
            params = {"sort_by": sort, "limit": 3, "offset": page}
            paged += ids_of(api.client.get(api.base, params=params))
        assert paged == (asc if sort == "asc" else desc)


def test_every_filter(api, noise, subtests) -> None:
    rows = [
        job_row(api.project_id, api.cluster_id, job_name="alpha", submitted_ms=1_000),
        job_row(api.project_id, api.cluster_id, job_name="alpha1", submitted_ms=2_000),
        job_row(
            api.project_id,
            api.cluster_id,
            job_name="beta",
            user_name="alice",
            queue="etl",
            submitted_ms=3_000,
            state="RUNNING",
        ),
        job_row(
            api.project_id,
            api.cluster_id,
            job_name="gamma",
            job_type="SparkSql",
            submitted_ms=4_000,
            state="FAILED",
        ),
        job_row(
            api.project_id,
            api.cluster_id,
            job_name="alpha",
            job_type="HiveSql",
            user_name="alice",
            submitted_ms=5_000,
            state="FINISHED",
        ),
        job_row(
            api.project_id, api.cluster_id, job_name="delta", state="KILLED", submitted_ms=6_000
        ),
    ]
    a, a1, b, g, a2, d = insert_jobs(api.store, rows)
    cases: list[tuple[dict[str, object], list[str]]] = [
        ({"job_name": "alpha"}, [a2, a]),  # exact, not a prefix
        ({"job_name": "alph"}, []),
        ({"job_name": "ALPHA"}, []),
        ({"job_id": b}, [b]),
        ({"job_id": str(uuid.uuid4())}, []),
        ({"user": "alice"}, [a2, b]),
        ({"user": "admin"}, [d, g, a1, a]),
        ({"queue": "etl"}, [b]),
        ({"queue": "default"}, [d, a2, g, a1, a]),
        ({"job_type": "SparkSql"}, [g]),
        ({"job_type": "HiveSql"}, [a2]),
        ({"job_type": "Flink"}, []),
        ({"job_state": "RUNNING"}, [b]),
        ({"job_state": "SUBMITTED"}, [a1, a]),
        ({"job_state": "FINISHED"}, [a2]),
        ({"job_result": "UNDEFINED"}, [b, a1, a]),
        ({"job_result": "FAILED"}, [g]),
        ({"job_result": "KILLED"}, [d]),
        ({"job_result": "SUCCEEDED"}, [a2]),
        ({"submitted_time_begin": 3_000}, [d, a2, g, b]),  # inclusive
        ({"submitted_time_end": 3_000}, [b, a1, a]),  # inclusive
        ({"submitted_time_begin": 2_000, "submitted_time_end": 4_000}, [g, b, a1]),
        ({"submitted_time_begin": 4_000, "submitted_time_end": 4_000}, [g]),
        ({"submitted_time_begin": 2_001, "submitted_time_end": 2_999}, []),
        ({"job_name": "alpha", "user": "alice"}, [a2]),
        ({"job_name": "alpha", "job_state": "SUBMITTED", "submitted_time_end": 1_000}, [a]),
    ]
    for params, expected in cases:
        with subtests.test(params=params):
            r = api.client.get(api.base, params={**params, "limit": 100})
            assert ids_of(r) == expected
            assert r.json()["total_record"] == len(expected)
    # Filters and paging together: the total is all matches.
    r = api.client.get(api.base, params={"user": "admin", "limit": 1, "offset": 2})
    assert ids_of(r) == [g] and r.json()["total_record"] == 4


def test_limit_bounds(api, subtests) -> None:
    insert_jobs(
        api.store, [job_row(api.project_id, api.cluster_id, submitted_ms=i) for i in range(3)]
    )
    assert len(ids_of(api.client.get(api.base, params={"limit": 1}))) == 1
    assert len(ids_of(api.client.get(api.base, params={"limit": 1000}))) == 3
    for bad in ["0", "1001", "-1", "abc", "1.5", "1e3", "", " 5", "1_0", "٣", "0x10", "9" * 30]:
        if bad == "":
            continue  # an empty value is "not given" (the SDK never sends one)
        with subtests.test(limit=bad):
            assert "limit" in assert_error(
                api.client.get(api.base, params={"limit": bad}), 400, "12000002"
            )


def test_invalid_query_values(api, subtests) -> None:
    cases = [
        {"offset": "-1"},
        {"offset": "x"},
        {"offset": str(10**18)},
        {"offset": str(10**30)},
        {"sort_by": "up"},
        {"sort_by": "ascending"},
        {"job_state": "running"},
        {"job_state": "DONE"},
        {"job_result": "OK"},
        {"job_type": "Spark"},
        {"submitted_time_begin": "yesterday"},
        {"submitted_time_begin": "-5"},
        {"submitted_time_end": str(2**63)},
        {"submitted_time_begin": str(10**30)},
        {"submitted_time_begin": "10", "submitted_time_end": "9"},
        {"job_id": "a\x00b"},
        {"job_name": "x\x00"},
        {"user": "\x01"},
    ]
    for params in cases:
        with subtests.test(params=params):
            msg = assert_error(api.client.get(api.base, params=params), 400, "12000002")
            assert any(name in msg for name in params), msg
    # The largest values that fit are fine.
    r = api.client.get(api.base, params={"submitted_time_end": str(2**63 - 1)})
    assert r.status_code == 202, r.text


def test_unknown_query_parameter_is_refused(api, subtests) -> None:
    for name in ["page", "status", "cluster_id", "LIMIT", "jobName"]:
        with subtests.test(name=name):
            msg = assert_error(api.client.get(api.base, params={name: "1"}), 400, "12000002")
            assert name in msg


def test_list_of_unknown_cluster(api) -> None:
    r = api.client.get(base_of(api.project_id, "nope"))
    assert "nope" in assert_error(r, 400, "12000003")
