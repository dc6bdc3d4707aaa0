"""List (ours): ``job_name_contains``, a name search by substring, any case, matched literally."""

from __future__ import annotations

import pytest
from api_helpers import assert_error, new_cluster, other_project
from jobrows import insert_jobs, job_row


def ids_of(r) -> list[str]:  # type: ignore[no-untyped-def]
    assert r.status_code == 202, r.text
    return [j["job_id"] for j in r.json()["job_list"]]


def test_name_search_finds_a_middle_part_in_scope_only(api, subtests) -> None:
    other_cluster = new_cluster(api)
    other = other_project(api)
    p, c = api.project_id, api.cluster_id
    insert_jobs(
        api.store,
        [  # the same names elsewhere or deleted never show up
            job_row(p, other_cluster, job_name="nightly-etl-load", submitted_ms=9_000),
            job_row(other.project_id, other.cluster_id, job_name="nightly-etl-load"),
            job_row(p, c, job_name="nightly-etl-load", submitted_ms=9_000, deleted_ms=5),
        ],
    )
    rows = [
        job_row(p, c, job_name="nightly-etl-load", submitted_ms=1_000),
        job_row(p, c, job_name="hourly_ETL_check", submitted_ms=2_000, state="FAILED"),
        job_row(p, c, job_name="etl", submitted_ms=3_000),
        job_row(p, c, job_name="adhoc-report", submitted_ms=4_000),
        job_row(p, c, job_name="axb", submitted_ms=5_000),
        job_row(p, c, job_name="a_b", submitted_ms=6_000),
        job_row(p, c, job_name="50%off", submitted_ms=7_000),  # not a submittable name
        job_row(p, c, job_name="500ff", submitted_ms=8_000),
    ]
    night, hourly, etl, adhoc, axb, a_b, pct, five = insert_jobs(api.store, rows)
    cases: list[tuple[dict[str, object], list[str]]] = [
        ({"job_name_contains": "etl"}, [etl, hourly, night]),  # middle, whole, any case
        ({"job_name_contains": "ETL"}, [etl, hourly, night]),
        ({"job_name_contains": "ly-etl-lo"}, [night]),
        ({"job_name_contains": "nightly-etl-load"}, [night]),
        ({"job_name_contains": "nightly-etl-loads"}, []),
        ({"job_name_contains": "port"}, [adhoc]),
        ({"job_name_contains": "a_b"}, [a_b]),  # _ is not a wildcard
        ({"job_name_contains": "_"}, [a_b, hourly]),
        ({"job_name_contains": "%"}, [pct]),  # % is not a wildcard
        ({"job_name_contains": "0%o"}, [pct]),
        ({"job_name_contains": "\\"}, []),
        ({"job_name_contains": "/"}, []),  # the LIKE escape character, also literal
        ({"job_name_contains": ""}, [five, pct, a_b, axb, adhoc, etl, hourly, night]),
        ({"job_name_contains": "etl", "job_state": "FAILED"}, [hourly]),
        ({"job_name_contains": "etl", "job_name": "etl"}, [etl]),
        ({"job_name_contains": "etl", "submitted_time_begin": 2_000}, [etl, hourly]),
        ({"job_name_contains": "etl", "sort_by": "asc"}, [night, hourly, etl]),
    ]
    for params, expected in cases:
        with subtests.test(params=params):
            r = api.client.get(api.base, params={**params, "limit": 100})
            assert ids_of(r) == expected
            assert r.json()["total_record"] == len(expected)
    # The total counts every match, not only the page.
    r = api.client.get(api.base, params={"job_name_contains": "etl", "limit": 1, "offset": 2})
    assert ids_of(r) == [hourly] and r.json()["total_record"] == 3


@pytest.mark.parametrize(
    "value",
    ["x" * 65, "é" * 65, "a\x00b", "\x01", "etl\x7f"],
    ids=["65-chars", "65-non-ascii", "nul", "control", "del"],
)
def test_name_search_refuses_bad_values(api, value: str) -> None:
    r = api.client.get(api.base, params={"job_name_contains": value})
    assert "job_name_contains" in assert_error(r, 400, "12000002")


def test_name_search_of_the_longest_name(api) -> None:
    name = "n" * 64
    (job,) = insert_jobs(api.store, [job_row(api.project_id, api.cluster_id, job_name=name)])
    assert ids_of(api.client.get(api.base, params={"job_name_contains": name})) == [job]
    assert ids_of(api.client.get(api.base, params={"job_name_contains": "N" * 64})) == [job]
