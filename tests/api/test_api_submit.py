"""Submit (contract §5, §12): response shape, job types, validation, sizes, queue limit."""

from __future__ import annotations

import json
import uuid

from api_helpers import assert_error, base_of, new_cluster
from jobrows import audit_rows, count_jobs, events_of, raw_job

ALL_TYPES = [
    "MapReduce",
    "SparkSubmit",
    "HiveScript",
    "HiveSql",
    "DistCp",
    "SparkScript",
    "SparkSql",
    "Flink",
]


def body(**over: object) -> dict[str, object]:
    b: dict[str, object] = {
        "job_type": "SparkSubmit",
        "job_name": "demo",
        "arguments": ["/opt/a.py", "1"],
        "properties": {},
    }
    b.update(over)
    return {k: v for k, v in b.items() if v is not ...}


def test_submit_response_is_exactly_the_mrs_shape(api) -> None:
    r = api.client.post(api.base, json=body())
    assert r.status_code == 200, r.text
    data = r.json()
    assert list(data) == ["job_submit_result"]
    result = data["job_submit_result"]
    assert set(result) == {"job_id", "state"}
    assert result["state"] == "COMPLETE"
    assert str(uuid.UUID(result["job_id"])) == result["job_id"]
    assert r.headers["x-request-id"]
    assert api.wakes, "submit must nudge the supervisor"
    # The job really exists, queued, and went NEW -> NEW_SAVING -> SUBMITTED.
    row = raw_job(api.store, result["job_id"])
    assert row is not None and row["state"] == "SUBMITTED"
    assert events_of(api.store, result["job_id"]) == [
        (None, "NEW"),
        ("NEW", "NEW_SAVING"),
        ("NEW_SAVING", "SUBMITTED"),
    ]
    (audit,) = audit_rows(api.store, "submit")
    assert audit["detail"]["job_id"] == result["job_id"]
    assert audit["request_id"] == r.headers["x-request-id"]


def test_minimal_body_and_duplicate_names(api) -> None:
    a = api.client.post(api.base, json={"job_type": "SparkSubmit", "job_name": "same"})
    b = api.client.post(api.base, json={"job_type": "SparkSubmit", "job_name": "same"})
    assert a.status_code == b.status_code == 200, (a.text, b.text)
    ids = {a.json()["job_submit_result"]["job_id"], b.json()["job_submit_result"]["job_id"]}
    assert len(ids) == 2
    d = api.client.get(f"{api.base}/{ids.pop()}").json()["job_detail"]
    assert d["arguments"] == "[]" and d["properties"] == "{}"


def test_unknown_job_type_is_refused(api, subtests) -> None:
    for job_type in ["Spark", "sparksubmit", "SPARKSUBMIT", "", "Hive", "Pig", 3, None]:
        with subtests.test(job_type=job_type):
            r = api.client.post(api.base, json=body(job_type=job_type))
            assert "job_type" in assert_error(r, 400, "12000002")
    assert count_jobs(api.store) == 0


def test_component_missing_codes(api) -> None:
    spark_only = new_cluster(api, components=["Spark"])
    spark_base = base_of(api.project_id, spark_only)
    for job_type, code in [("HiveSql", "0168"), ("HiveScript", "0168"), ("Flink", "0169")]:
        msg = assert_error(api.client.post(spark_base, json=body(job_type=job_type)), 400, code)
        assert spark_only in msg
    # A cluster created without Spark refuses every Spark type with 0057.
    no_spark = new_cluster(api, components=["Hive", "Flink"])
    for job_type in ("SparkSubmit", "SparkSql", "SparkScript"):
        r = api.client.post(base_of(api.project_id, no_spark), json=body(job_type=job_type))
        assert_error(r, 400, "0057")
    # Hadoop types have no MRS-specific code: a plain invalid parameter (ours).
    for job_type in ("MapReduce", "DistCp"):
        r = api.client.post(spark_base, json=body(job_type=job_type))
        assert "Hadoop" in assert_error(r, 400, "12000002")
    assert count_jobs(api.store) == 0


def test_types_without_an_engine_yet_are_refused_clearly(api) -> None:
    full = new_cluster(api, components=["Spark", "Hive", "Flink", "Hadoop"])
    base = base_of(api.project_id, full)
    for job_type in ALL_TYPES:
        r = api.client.post(base, json=body(job_type=job_type))
        if job_type == "SparkSubmit":
            assert r.status_code == 200, r.text
            continue
        if job_type in ("HiveSql", "HiveScript", "Flink"):
            # The whole component is missing from this service: its MRS code, with a hint.
            code = "0168" if job_type.startswith("Hive") else "0169"
            assert "not installed" in assert_error(r, 400, code)
            continue
        msg = assert_error(r, 400, "12000002")
        assert job_type in msg and "no engine" in msg, msg
        assert "SparkSubmit" in msg  # says what can run
    assert count_jobs(api.store) == 1


def test_spark_sql_on_spark_cluster_has_no_engine_yet(api) -> None:
    msg = assert_error(api.client.post(api.base, json=body(job_type="SparkSql")), 400, "12000002")
    assert "SparkSql" in msg and "no engine" in msg


def test_job_names(api, subtests) -> None:
    for name in ["a", "Z", "0", "A-z_09", "x" * 64, "-_-"]:
        with subtests.test(valid=name):
            r = api.client.post(api.base, json=body(job_name=name))
            assert r.status_code == 200, r.text
            job_id = r.json()["job_submit_result"]["job_id"]
            d = api.client.get(f"{api.base}/{job_id}").json()["job_detail"]
            assert d["job_name"] == name
    bad = ["", "x" * 65, "has space", "dot.ted", "a/b", "ünï", "tab\t", "nl\n", "a;b", 7, None]
    for name in bad:
        with subtests.test(invalid=name):
            r = api.client.post(api.base, json=body(job_name=name))
            assert "job_name" in assert_error(r, 400, "12000002")
    assert count_jobs(api.store) == 6


def test_required_and_unknown_fields(api, subtests) -> None:
    for missing in ["job_type", "job_name"]:
        with subtests.test(missing=missing):
            r = api.client.post(api.base, json=body(**{missing: ...}))
            assert missing in assert_error(r, 400, "12000002")
    for field in ["cluster_id", "job_id", "Job_Name", "extra"]:
        with subtests.test(unknown=field):
            r = api.client.post(api.base, json=body(**{field: "x"}))
            assert field in assert_error(r, 400, "12000002")
    assert count_jobs(api.store) == 0


def test_arguments_must_be_an_array_of_strings(api, subtests) -> None:
    cases: list[object] = ["a b", {"a": "b"}, 5, None, True]
    cases += [[1], ["a", None], [["x"]], [True], ["a", {"b": "c"}], [1.5]]
    for arguments in cases:
        with subtests.test(arguments=arguments):
            r = api.client.post(api.base, json=body(arguments=arguments))
            assert "arguments" in assert_error(r, 400, "12000002")
    assert count_jobs(api.store) == 0


def test_properties_must_be_an_object_of_strings(api, subtests) -> None:
    cases: list[object] = [["a"], "k=v", None, 3, [["k", "v"]], {"": "v"}]
    cases += [{"ok": "v", "k": value} for value in (1, None, True, {"a": "b"}, ["x"], 2.5)]
    for properties in cases:
        with subtests.test(properties=properties):
            r = api.client.post(api.base, json=body(properties=properties))
            assert "properties" in assert_error(r, 400, "12000002")
    assert count_jobs(api.store) == 0


def test_arguments_size_limit(api) -> None:
    # 150,000 characters in total is allowed, one more is not.
    ok = ["a" * 1000] * 150
    r = api.client.post(api.base, json=body(arguments=ok))
    assert r.status_code == 200, r.text[:300]
    job_id = r.json()["job_submit_result"]["job_id"]
    assert json.loads(raw_job(api.store, job_id)["arguments"]) == ok
    msg = assert_error(api.client.post(api.base, json=body(arguments=[*ok, "b"])), 400, "12000002")
    assert "arguments" in msg and "150000" in msg
    assert count_jobs(api.store) == 1


def test_properties_size_limit(api) -> None:
    # Keys and values count (ours): "k" + 2,047 characters is 2,048, the limit.
    r = api.client.post(api.base, json=body(properties={"k": "v" * 2047}))
    assert r.status_code == 200, r.text[:300]
    r = api.client.post(api.base, json=body(properties={"k": "v" * 2048}))
    assert "properties" in assert_error(r, 400, "12000002")
    many = {f"k{i:03d}": "v" * 10 for i in range(160)}  # 160 * 14 = 2,240 characters
    assert "2048" in assert_error(
        api.client.post(api.base, json=body(properties=many)), 400, "12000002"
    )
    assert count_jobs(api.store) == 1


def test_nul_and_control_characters_are_refused(api, subtests) -> None:
    cases: list[dict[str, object]] = [
        {"arguments": ["a\x00b"]},
        {"arguments": ["ok", "\x1b[31mred"]},
        {"arguments": ["del\x7f"]},
        {"arguments": ["bell\x07"]},
        {"properties": {"k": "v\x00"}},
        {"properties": {"k\x01": "v"}},
        {"job_name": "a\x00"},
    ]
    for over in cases:
        with subtests.test(over=over):
            field = next(iter(over))
            assert field in assert_error(
                api.client.post(api.base, json=body(**over)), 400, "12000002"
            )
    assert count_jobs(api.store) == 0


def test_multi_line_sql_text_is_accepted(api) -> None:
    """Tab, newline and carriage return are whitespace a SQL text needs (ours, see report)."""
    args = ["SELECT 1;\nSELECT\t2;\r\n"]
    r = api.client.post(api.base, json=body(arguments=args))
    assert r.status_code == 200, r.text
    job_id = r.json()["job_submit_result"]["job_id"]
    assert json.loads(raw_job(api.store, job_id)["arguments"]) == args


SHELL = [
    "; rm -rf /",
    "$(whoami)",
    "`id`",
    "a|b",
    "x && y",
    "'single'",
    '"double"',
    "*",
    "~",
    "$HOME",
    ">out 2>&1",
    "a b",
    "\\",
    "{k=v}",
    "[x, y]",
    "ünïcödé ✓",
]


def test_shell_metacharacters_are_kept_verbatim(api) -> None:
    r = api.client.post(api.base, json=body(arguments=SHELL, properties={"conf": "$(x); `y` | z"}))
    assert r.status_code == 200, r.text
    job_id = r.json()["job_submit_result"]["job_id"]
    d = api.client.get(f"{api.base}/{job_id}").json()["job_detail"]
    assert d["arguments"] == "[" + ", ".join(SHELL) + "]"
    assert d["properties"] == "{conf=$(x); `y` | z}"
    row = raw_job(api.store, job_id)
    assert json.loads(row["arguments"]) == SHELL  # stored as a vector, not a joined string


def test_bad_bodies(api, subtests) -> None:
    raws = [b"", b"   ", b"{", b"not json", b"[]", b'["job_type"]', b'"s"', b"null", b"42"]
    for raw in [*raws, b"\xff\xfe", b'{"job_type": "SparkSubmit", "job_name": "a"} trailing']:
        with subtests.test(raw=raw):
            r = api.client.post(api.base, content=raw, headers={"Content-Type": "application/json"})
            assert_error(r, 400, "12000002")
    assert count_jobs(api.store) == 0


def test_unknown_cluster(api) -> None:
    r = api.client.post(base_of(api.project_id, "no-such-cluster"), json=body())
    assert "no-such-cluster" in assert_error(r, 400, "12000003")


def test_queue_limit(api) -> None:
    small = new_cluster(api, max_queued=2)
    base = base_of(api.project_id, small)
    ids = []
    for _ in range(2):
        r = api.client.post(base, json=body())
        assert r.status_code == 200, r.text
        ids.append(r.json()["job_submit_result"]["job_id"])
    r = api.client.post(base, json=body())
    msg = assert_error(r, 429, "0202")
    assert small in msg
    assert int(r.headers["retry-after"]) > 0
    assert count_jobs(api.store, cluster_id=small) == 2
    # Other clusters have their own queue.
    assert api.client.post(api.base, json=body()).status_code == 200
    # A launched job leaves the queue: room for one more.
    from jobrows import transition_path

    transition_path(api.store, ids[0], "ACCEPTED")
    assert api.client.post(base, json=body()).status_code == 200
    assert_error(api.client.post(base, json=body()), 429, "0202")


def test_queue_room_comes_back_after_kill_and_batch_delete(api) -> None:
    small = new_cluster(api, max_queued=2)
    base = base_of(api.project_id, small)
    a, b = (
        api.client.post(base, json=body()).json()["job_submit_result"]["job_id"] for _ in range(2)
    )
    assert_error(api.client.post(base, json=body()), 429, "0202")
    assert api.client.post(f"{base}/{a}/kill").status_code == 202
    assert api.client.post(base, json=body()).status_code == 200
    assert_error(api.client.post(base, json=body()), 429, "0202")
    # A batch-deleted job is gone at once, even before the supervisor purges it.
    r = api.client.post(f"{base}/batch-delete", json={"job_id_list": [b]})
    assert r.status_code == 202, r.text
    assert api.client.post(base, json=body()).status_code == 200


def test_zero_queue_refuses_everything(api) -> None:
    closed = new_cluster(api, max_queued=0)
    r = api.client.post(base_of(api.project_id, closed), json=body())
    assert_error(r, 429, "0202")
    assert r.headers["retry-after"].isdigit()
