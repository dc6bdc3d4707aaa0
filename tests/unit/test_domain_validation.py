"""Pure validation: submit bodies, list queries, batch-delete id lists."""

from __future__ import annotations

import pytest

from mrs_jobs.domain.jobtypes import COMPONENT_ERRORS, SQL_JOB_TYPES, JobType, component_of
from mrs_jobs.domain.validation import (
    MAX_ARGUMENTS_CHARS,
    MAX_BATCH_IDS,
    MAX_PROPERTIES_CHARS,
    ListQuery,
    validate_cluster_id,
    validate_project_id,
    validate_submission,
)
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.services.batch_delete import normalise_ids


def test_limits_are_the_contracts() -> None:
    assert (MAX_ARGUMENTS_CHARS, MAX_PROPERTIES_CHARS, MAX_BATCH_IDS) == (150_000, 2_048, 1_000)


def test_job_types_and_components() -> None:
    assert {t.value for t in JobType} == {
        "MapReduce",
        "SparkSubmit",
        "HiveScript",
        "HiveSql",
        "DistCp",
        "SparkScript",
        "SparkSql",
        "Flink",
        "SparkPython",
    }
    assert {t.value for t in SQL_JOB_TYPES} == {"SparkSql", "SparkScript", "HiveSql", "HiveScript"}
    assert COMPONENT_ERRORS == {"Spark": "0057", "Hive": "0168", "Flink": "0169"}
    assert component_of(JobType.SPARK_SQL) == "Spark"
    assert component_of(JobType.HIVE_SCRIPT) == "Hive"
    assert component_of(JobType.FLINK) == "Flink"
    assert component_of(JobType.DISTCP) == "Hadoop"


def test_valid_submission() -> None:
    parsed = validate_submission(
        "SparkSql", "n-1_x", ["--conf", "k=v", "SELECT 1;\nSELECT 2"], {"k": "v"}
    )
    assert parsed is JobType.SPARK_SQL
    assert validate_submission("Flink", "x" * 64, [], {}) is JobType.FLINK


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("sparksubmit", "n", [], {}), "job_type"),
        (("SparkSubmit", "", [], {}), "job_name"),
        (("SparkSubmit", "x" * 65, [], {}), "job_name"),
        (("SparkSubmit", "a b", [], {}), "job_name"),
        (("SparkSubmit", "abc\n", [], {}), "job_name"),
        (("SparkSubmit", "n", ["ok", "a\x00"], {}), "arguments[1]"),
        (("SparkSubmit", "n", ["\x1b"], {}), "arguments[0]"),
        (("SparkSubmit", "n", ["\x7f"], {}), "arguments[0]"),
        (("SparkSubmit", "n", ["a" * 100_000, "b" * 50_001], {}), "arguments"),
        (("SparkSubmit", "n", [], {"": "v"}), "properties"),
        (("SparkSubmit", "n", [], {"k\x00": "v"}), "properties"),
        (("SparkSubmit", "n", [], {"k": "\x08"}), "properties[k]"),
        (("SparkSubmit", "n", [], {"k": "v" * 2048}), "properties"),
    ],
)
def test_invalid_submission(args: tuple, field: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        validate_submission(*args)
    assert field in info.value.message


def test_size_limits_are_inclusive() -> None:
    ok = JobType.SPARK_SUBMIT
    assert validate_submission("SparkSubmit", "n", ["a" * 100_000, "b" * 50_000], {}) is ok
    assert validate_submission("SparkSubmit", "n", [], {"k": "v" * 2047}) is ok
    many = {f"k{i:03d}": "v" * 8 for i in range(170)}  # 170 * 12 = 2,040 characters
    assert validate_submission("SparkSubmit", "n", [], many) is ok


def test_path_ids() -> None:
    assert validate_project_id("a" * 64) == "a" * 64
    assert validate_cluster_id("c_1-x") == "c_1-x"
    for bad in ("", "a" * 65, "a-b", "a_b", "ä"):
        with pytest.raises(InvalidParameter):
            validate_project_id(bad)
    for bad in ("", "c" * 65, "c.d", "c/d", "c d"):
        with pytest.raises(InvalidParameter):
            validate_cluster_id(bad)


def test_list_query_defaults() -> None:
    q = ListQuery.parse({})
    assert (q.limit, q.page, q.ascending) == (10, 1, False)
    assert q.job_name is q.job_state is q.submitted_time_begin is None


def test_list_query_values() -> None:
    q = ListQuery.parse(
        {
            "job_name": "n",
            "job_id": "i",
            "user": "u",
            "queue": "q",
            "job_type": "HiveSql",
            "job_state": "RUNNING",
            "job_result": "UNDEFINED",
            "submitted_time_begin": "5",
            "submitted_time_end": "5",
            "limit": "1000",
            "offset": "3",
            "sort_by": "asc",
        }
    )
    assert (q.job_name, q.job_id, q.user, q.queue) == ("n", "i", "u", "q")
    assert (q.job_type, q.job_state, q.job_result) == ("HiveSql", "RUNNING", "UNDEFINED")
    assert (q.submitted_time_begin, q.submitted_time_end) == (5, 5)
    assert (q.limit, q.page, q.ascending) == (1000, 3, True)
    assert ListQuery.parse({"offset": "0"}).page == 1
    assert ListQuery.parse({"offset": "1"}).page == 1
    assert ListQuery.parse({"sort_by": "desc"}).ascending is False


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"limit": "1_0"},
        {"limit": " 5"},
        {"limit": "+5"},
        {"limit": "5.0"},
        {"limit": "\u0663"},
        {"offset": "-1"},
        {"offset": str(2**63)},
        {"submitted_time_begin": str(2**63)},
        {"submitted_time_end": "9" * 5000},
        {"submitted_time_begin": "2", "submitted_time_end": "1"},
        {"sort_by": "sideways"},
        {"job_state": "Running"},
        {"job_result": "SUCCESS"},
        {"job_type": "Pig"},
        {"bogus": "1"},
        {"job_name": "a\x00"},
    ],
)
def test_list_query_refusals(params: dict[str, str]) -> None:
    with pytest.raises(InvalidParameter) as info:
        ListQuery.parse(params)
    assert any(name in info.value.message for name in params)
    assert len(info.value.message) < 300


def test_list_query_accepts_the_largest_values() -> None:
    q = ListQuery.parse({"submitted_time_end": str(2**63 - 1), "offset": str((2**63 - 1) // 1000)})
    assert q.submitted_time_end == 2**63 - 1
    assert (q.page - 1) * 1000 < 2**63


def test_normalise_ids() -> None:
    assert normalise_ids(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
    assert normalise_ids(["x"] * 1000) == ["x"]
    assert len(normalise_ids([str(i) for i in range(1000)])) == 1000
    for bad, word in [
        ([], "at least one"),
        ([str(i) for i in range(1001)], "1001"),
        (["a", 1], "job_id_list[1]"),
        ([None], "job_id_list[0]"),
    ]:
        with pytest.raises(InvalidParameter) as info:
            normalise_ids(bad)
        assert word in info.value.message
