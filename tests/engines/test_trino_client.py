"""The Trino/Presto client REST protocol client (engines/runners/trino.py) and the presto runner's
statement (engines/runners/presto.py) against recorded exchanges (tests/fixtures/recorded/trino/):
paging through nextUri, the session headers of each dialect, the coordinator's error, cancel as
DELETE nextUri, gateway retries; rows, DDL, the row cap and the CSV archive as the runner
records them, over a real local HTTP server."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import pytest
from support_recorded import Replay, load, serve

from mrs_jobs.engines.runners import presto as runner
from mrs_jobs.engines.runners.trino import Session, TrinoClient, TrinoError

BASE = "http://coordinator.example:8080"  # the host the recorded documents name
ANALYST = Session(user="analyst", catalog="tpch", schema="tiny")
SELECT = ["select_post", "select_queued", "select_page_1", "select_page_2", "select_finished"]


def exchanges(*names: str) -> list[dict]:
    return [load(f"trino/{name}.json") for name in names]


def client(replay: Replay, session: Session = ANALYST) -> TrinoClient:
    return TrinoClient(BASE, session, transport=replay.transport)


def statement(name: str) -> str:
    return load(f"trino/{name}.json")["request"]["text"]


def test_rows_are_read_page_by_page_until_next_uri_is_absent() -> None:
    replay = Replay(*exchanges(*SELECT))
    with client(replay) as c:
        query = c.execute(statement("select_post"))
        assert query.id == "20261207_095012_00003_k7m2p" and query.state == "QUEUED"
        rows = list(query.rows())
    assert rows == [
        [1, "ARGENTINA", None],
        [2, "BRAZIL", None],
        [3, "CANADA", None],
        [17, "PERU", None],
        [24, "UNITED STATES", None],
    ]
    assert [c["name"] for c in query.columns or []] == ["nationkey", "name", "note"]
    assert query.state == "FINISHED" and query.next_uri is None
    assert query.info_uri.endswith("/ui/query.html?20261207_095012_00003_k7m2p")
    replay.done()
    post = replay.seen[0]
    assert post[3].decode() == statement("select_post")
    assert {k.lower(): v for k, v in post[2].items()}["x-trino-source"] == "mrs-jobs"
    # The session headers go with the POST only (the protocol's rule).
    for _, _, headers, _ in replay.seen[1:]:
        assert not [k for k in headers if k.lower().startswith("x-trino-")], headers


def test_wait_for_columns_stops_at_the_first_page_that_has_them() -> None:
    replay = Replay(*exchanges(*SELECT))
    with client(replay) as c:
        query = c.execute(statement("select_post"))
        first = query.wait_for_columns()
        assert len(first) == 3 and query.columns is not None
        assert len(replay.pending) == 2  # nothing read ahead
        assert len(list(query.rows())) == 2
    replay.done()


def test_a_failed_query_raises_the_coordinators_error() -> None:
    replay = Replay(*exchanges("syntax_error_post", "syntax_error_failed"))
    with client(replay) as c, pytest.raises(TrinoError) as caught:
        list(c.execute("SELEC 1").rows())
    assert caught.value.name == "SYNTAX_ERROR" and caught.value.error_type == "USER_ERROR"
    assert caught.value.message.startswith("line 1:1: mismatched input 'SELEC'")
    assert str(caught.value).startswith("SYNTAX_ERROR: line 1:1: mismatched input 'SELEC'")
    replay.done()


def test_cancel_deletes_the_next_uri() -> None:
    replay = Replay(*exchanges("long_post", "long_running", "long_cancel"))
    with client(replay) as c:
        query = c.execute(statement("long_post"))
        pages = query.pages()
        assert next(pages) == []  # QUEUED
        assert next(pages) == [] and query.state == "RUNNING"
        assert query.cancel() is True
    replay.done()
    method, url, _, _ = replay.seen[-1]
    assert method == "DELETE" and url.endswith(
        "/v1/statement/executing/20261207_095301_00005_k7m2p/c3f8a1e6b9d2047e/0"
    )


def test_ddl_has_no_columns_and_an_update_type() -> None:
    replay = Replay(*exchanges("ddl_post", "ddl_finished"))
    with client(replay) as c:
        query = c.execute(statement("ddl_post"))
        assert query.wait_for_columns() == []
    assert query.columns is None and query.update_type == "CREATE TABLE"
    assert query.cancel() is False  # ended: nothing to delete
    replay.done()


def test_the_presto_dialect_sends_x_presto_headers_and_follows_its_next_uri() -> None:
    replay = Replay(*exchanges("presto_post", "presto_finished"), absent_headers=("X-Trino-User",))
    session = Session(user="analyst", catalog="hive", schema="sales", dialect="presto")
    with client(replay, session) as c:
        assert list(c.execute("SHOW TABLES").rows()) == [["orders"], ["visits"]]
    replay.done()


def test_gateway_answers_are_retried_and_other_statuses_fail() -> None:
    calls: list[int] = []
    first = load("trino/ddl_finished.json")["response"]["body"]

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503) if len(calls) < 3 else httpx.Response(200, json=first)

    with TrinoClient(BASE, ANALYST, transport=httpx.MockTransport(flaky)) as c:
        assert c.execute("CREATE TABLE x (a bigint)").update_type == "CREATE TABLE"
    assert len(calls) == 3

    def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text="Unauthorized")

    with TrinoClient(BASE, ANALYST, transport=httpx.MockTransport(refused)) as c:
        with pytest.raises(TrinoError, match="HTTP 401: Unauthorized"):
            c.execute("SELECT 1")


def test_an_unreachable_coordinator_is_a_trino_error() -> None:
    with TrinoClient("http://127.0.0.1:9", ANALYST, timeout=2) as c:
        with pytest.raises(TrinoError, match="cannot reach the coordinator"):
            c.execute("SELECT 1")


# -- the runner's statement, over a real local HTTP server ---------------------------------


def run(replay: Replay, workdir: Path, **spec: object) -> tuple[int, dict]:
    with serve(replay) as base:
        replay.rebase(BASE, base)
        full = {
            "coordinator": base,
            "user": "analyst",
            "catalog": "tpch",
            "schema": "tiny",
            "row_cap": 1000,
        } | spec
        with runner.client_of(full) as c:
            code = runner.run_statement(c, full, workdir, [])
    replay.done()
    return code, json.loads((workdir / "sql_results.json").read_text())


def test_the_runner_records_the_rows_as_the_thrift_runner_does(tmp_path) -> None:
    code, results = run(
        Replay(*exchanges(*SELECT)), tmp_path, statements=[statement("select_post")]
    )
    assert code == 0
    assert results["0"][0] == {"nationkey": "1", "name": "ARGENTINA", "note": "NULL"}
    assert [r["name"] for r in results["0"]] == [
        "ARGENTINA",
        "BRAZIL",
        "CANADA",
        "PERU",
        "UNITED STATES",
    ]
    assert json.loads((tmp_path / "progress.json").read_text()) == {"done": 1, "total": 1}


def test_the_runner_records_a_failure_with_the_engines_message(tmp_path) -> None:
    replay = Replay(*exchanges("syntax_error_post", "syntax_error_failed"))
    code, results = run(replay, tmp_path, statements=["SELEC 1"])
    assert code == 1
    [record] = results["0"]
    assert record["result"] == "failed"
    assert record["message"].startswith("SYNTAX_ERROR: line 1:1: mismatched input 'SELEC'")


def test_the_runner_records_ddl_as_succeed(tmp_path) -> None:
    replay = Replay(*exchanges("ddl_post", "ddl_finished"))
    code, results = run(replay, tmp_path, statements=[statement("ddl_post")])
    assert code == 0 and results == {"0": [{"result": "succeed"}]}


def test_over_the_cap_the_rest_is_not_fetched_but_cancelled(tmp_path) -> None:
    names = ["select_post", "select_queued", "select_page_1"]
    cancel = load("trino/long_cancel.json")
    cancel["request"]["path"] = load("trino/select_page_2.json")["request"]["path"]
    replay = Replay(*exchanges(*names), cancel)
    code, results = run(replay, tmp_path, statements=[statement("select_post")], row_cap=2)
    assert code == 0 and [r["name"] for r in results["0"]] == ["ARGENTINA", "BRAZIL"]


def test_the_runner_archives_the_whole_result_as_csv(tmp_path) -> None:
    target = tmp_path / "out" / "r.csv"
    archive = {"location": str(target), "local": str(target)}
    code, results = run(
        Replay(*exchanges(*SELECT)),
        tmp_path,
        statements=[statement("select_post")],
        row_cap=2,
        archive=archive,
    )
    assert code == 0 and len(results["0"]) == 2  # inline: capped
    with open(target, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["nationkey", "name", "note"]
    assert rows[1:] == [
        ["1", "ARGENTINA", ""],
        ["2", "BRAZIL", ""],
        ["3", "CANADA", ""],
        ["17", "PERU", ""],
        ["24", "UNITED STATES", ""],
    ]


def test_the_password_and_secret_values_are_masked_in_a_failure(tmp_path) -> None:
    replay = Replay(*exchanges("syntax_error_post", "syntax_error_failed"))
    # Stand-ins that the coordinator's message happens to quote.
    code, results = run(
        replay, tmp_path, statements=["SELEC 1"], password="mismatched", mask=["ANALYZE"]
    )
    message = results["0"][0]["message"]
    assert code == 1 and "mismatched" not in message and "ANALYZE" not in message
    assert message.startswith("SYNTAX_ERROR: line 1:1: ****** input 'SELEC'")
