"""SparkSql / SparkScript / HiveSql / HiveScript through the official SDK on a real server.

They run on the cluster's Spark Thrift Server (started by the first SQL job), so one module
shares one server and its metastore.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from huaweicloudsdkmrs.v2 import ShowSqlResultWithJobRequest, StopJobRequest
from mrs_acceptance import MRS_JOBS, expect_error, marked_processes, wait_until

pytestmark = pytest.mark.spark

DONE = frozenset({"FINISHED", "FAILED", "KILLED"})


def sql_results(server, job_id: str) -> dict:
    resp = server.client().show_sql_result_with_job(
        ShowSqlResultWithJobRequest(cluster_id=server.cluster_id, job_execution_id=job_id)
    )
    return resp.to_json_object()["sql_results"]


def run_sql(server, job_type: str, arguments: list[str], timeout: float = 180):
    job_id = server.submit(arguments, name="sql", job_type=job_type)
    return job_id, server.wait_state(job_id, DONE, timeout)


def test_contract_example_returns_per_statement_results(server) -> None:
    sql = (
        "CREATE TABLE IF NOT EXISTS src_wordcount (word string, cnt int);"
        "SHOW TABLES;"
        "INSERT INTO src_wordcount VALUES ('a', 1), ('b', 2);"
        "INSERT INTO src_wordcount VALUES ('c; d', 3);"
        "SELECT word, cnt FROM src_wordcount ORDER BY cnt"
    )
    job_id, detail = run_sql(server, "SparkSql", [sql])
    assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED")
    assert detail.job_progress == 100 and detail.app_id.startswith("local-")
    results = sql_results(server, job_id)
    assert set(results) == {"0", "1", "2", "3", "4"}
    assert results["0"] == [{"result": "succeed"}]
    assert {"namespace": "default", "tableName": "src_wordcount", "isTemporary": "false"} in (
        results["1"]
    )
    assert results["2"] == results["3"] == [{"result": "succeed"}]
    assert results["4"] == [
        {"word": "a", "cnt": "1"},
        {"word": "b", "cnt": "2"},
        {"word": "c; d", "cnt": "3"},
    ]


def test_hive_table_is_read_by_a_later_spark_sql_job_and_scripts_run(server, tmp_path) -> None:
    _, hive = run_sql(
        server,
        "HiveSql",
        [
            "--hivevar",
            "n=42",
            "CREATE TABLE IF NOT EXISTS hive_t (n int);"
            " INSERT OVERWRITE TABLE hive_t VALUES (${n})",
        ],
    )
    assert hive.job_result == "SUCCEEDED"
    script = tmp_path / "read.sql"
    script.write_text("-- a script\nSELECT n * 2 AS doubled FROM hive_t;\n")
    job_id, spark = run_sql(server, "SparkScript", [str(script)])
    assert spark.job_result == "SUCCEEDED"
    assert sql_results(server, job_id) == {"0": [{"doubled": "84"}]}
    job_id, spark_sql = run_sql(server, "SparkSql", ["SELECT n FROM hive_t"])
    assert spark_sql.job_result == "SUCCEEDED"
    assert sql_results(server, job_id) == {"0": [{"n": "42"}]}
    job_id, hive_script = run_sql(
        server, "HiveScript", ["--conf", "spark.sql.ansi.enabled=true", str(script)]
    )
    assert hive_script.job_result == "SUCCEEDED"


def test_failing_statement_fails_the_job_with_its_index_in_the_log(server) -> None:
    job_id, detail = run_sql(
        server, "SparkSql", ["SELECT 1; SELECT * FROM no_such_table; SELECT 3"]
    )
    assert detail.job_result == "FAILED"
    log = (server.job_dir(job_id) / "stderr.log").read_text()
    assert "statement 1 failed" in log and "no_such_table" in log.lower()
    results = sql_results(server, job_id)
    assert set(results) == {"0", "1"}  # what ran before the failure is kept, nothing after
    assert results["0"] == [{"1": "1"}]
    assert results["1"][0]["result"] == "failed"
    assert "no_such_table" in results["1"][0]["message"].lower()


def test_syntax_error_is_the_failed_statement_s_record_and_the_cli_exits_non_zero(
    server,
) -> None:
    job_id, detail = run_sql(server, "SparkSql", ["SELECT 1; SELEC 2; SELECT 3"])
    assert detail.job_result == "FAILED"
    results = sql_results(server, job_id)
    assert results["0"] == [{"1": "1"}]
    assert [r["result"] for r in results["1"]] == ["failed"]
    message = results["1"][0]["message"]
    assert "SELEC" in message and "syntax error" in message.lower(), message
    assert len(message.encode()) <= 4096 and "\tat org.apache" not in message  # no frames
    assert "2" not in results
    cli = subprocess.run(
        [str(MRS_JOBS), "sql-result", job_id],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 3, (cli.stdout, cli.stderr)
    assert "Statement 0" in cli.stdout and "Statement 1: failed" in cli.stdout
    assert "SELEC" in cli.stdout and "statement 1 failed" in cli.stderr
    found = server.assert_diagnosed(job_id, "statement 1 failed: ", "SELEC")
    assert "syntax error" in found.lower(), found


def test_concurrent_sql_jobs_neither_deadlock_nor_corrupt(server) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        job_id = server.submit(
            [
                f"CREATE TABLE IF NOT EXISTS conc_{i} (x int); INSERT INTO conc_{i} VALUES ({i});"
                f"SELECT x FROM conc_{i}"
            ],
            name=f"conc{i}",
            job_type="SparkSql",
        )
        with lock:
            ids.append(job_id)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for job_id in ids:
        detail = server.wait_state(job_id, DONE, 240)
        assert detail.job_result == "SUCCEEDED"
    values = sorted(sql_results(server, j)["2"][0]["x"] for j in ids)
    assert values == ["0", "1", "2", "3"]


def test_concurrent_inserts_into_one_table_take_turns(server) -> None:
    """Two jobs inserting into one table at once shared its _temporary directory and one
    failed ("Mkdirs failed to create .../_temporary/..."): writes to one table now take turns
    (domain/sqlwrites.py); every insert lands."""
    _, made = run_sql(server, "SparkSql", ["CREATE TABLE IF NOT EXISTS shared_t (x bigint)"])
    assert made.job_result == "SUCCEEDED"
    ids = [
        server.submit(
            [f"INSERT INTO shared_t SELECT id + {i * 1000} FROM range(0, 400, 1, 4)"],
            name=f"ins{i}",
            job_type="SparkSql",
        )
        for i in range(4)
    ]
    for job_id in ids:
        detail = server.wait_state(job_id, DONE, 240)
        assert detail.job_result == "SUCCEEDED", detail
    job_id, detail = run_sql(server, "SparkSql", ["SELECT count(*) AS n FROM shared_t"])
    assert sql_results(server, job_id)["0"] == [{"n": "1600"}]


def test_kill_a_long_sql_job(server) -> None:
    job_id = server.submit(
        ["SELECT count(*) FROM range(0, 100000000000, 1, 2) WHERE id % 7 = 3"],
        name="longsql",
        job_type="SparkSql",
    )
    server.wait_state(job_id, {"RUNNING"}, 120)
    time.sleep(2)
    server.client().stop_job(StopJobRequest(cluster_id=server.cluster_id, job_execution_id=job_id))
    detail = server.wait_state(job_id, {"KILLED"}, 30)
    assert detail.job_result == "KILLED"
    wait_until("the SQL client to be gone", lambda: not marked_processes(job_id), 10)
    # The server is still healthy for the next job.
    _, after = run_sql(server, "SparkSql", ["SELECT 1 AS one"])
    assert after.job_result == "SUCCEEDED"


def test_sql_result_of_unfinished_job_is_0180(server) -> None:
    job_id = server.submit(
        ["SELECT count(*) FROM range(0, 100000000000, 1, 2)"], name="slow", job_type="SparkSql"
    )
    expect_error(lambda: sql_results(server, job_id), 400, "0180")
    server.client().stop_job(StopJobRequest(cluster_id=server.cluster_id, job_execution_id=job_id))
    server.wait_state(job_id, {"KILLED"}, 60)


@pytest.mark.parametrize("job_type", ["HiveSql", "HiveScript", "SparkScript"])
def test_broken_variants_fail_with_the_cause_in_the_log(server, tmp_path, job_type) -> None:
    text = "SELECT 1; SELEC broken syntax here"
    if job_type.endswith("Script"):
        script = tmp_path / "broken.sql"
        script.write_text(text)
        args = [str(script)]
    else:
        args = [text]
    job_id, detail = run_sql(server, job_type, args)
    assert detail.job_result == "FAILED"
    log = (server.job_dir(job_id) / "stderr.log").read_text()
    assert "statement 1 failed" in log and "SELEC" in log
    server.assert_diagnosed(job_id, "statement 1 failed: ", "SELEC")


def _sql_server_pids(data_dir) -> list[int]:
    """Live processes of this installation's SQL servers (marked MRS_JOBS_SERVICE)."""
    from pathlib import Path

    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"MRS_JOBS_SERVICE=" in env and str(data_dir).encode() in cmd:
            pids.append(int(entry.name))
    return pids


def test_sql_server_stops_when_idle_and_with_the_service(tmp_path) -> None:
    from mrs_acceptance import start_server, stop_server

    srv = start_server(tmp_path / "idle", {"MRS_JOBS_ENGINE_IDLE_SECONDS": "1"})
    try:
        _, first = run_sql(srv, "SparkSql", ["SELECT 1 AS one"])
        assert first.job_result == "SUCCEEDED"
        wait_until("the idle SQL server to stop", lambda: not _sql_server_pids(srv.data_dir), 40)
        _, again = run_sql(srv, "SparkSql", ["SELECT 2 AS two"])  # started again on demand
        assert again.job_result == "SUCCEEDED"
    finally:
        stop_server(srv)
    wait_until(
        "no SQL server after the service stopped", lambda: not _sql_server_pids(srv.data_dir), 20
    )
