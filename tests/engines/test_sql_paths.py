"""SqlEngine.build checks the files SQL statements name against the cluster's roots and the
service's own files, before any SQL server is asked for (no Spark runs here).

The cluster names an external SQL endpoint (``sql_thrift_endpoint``), so a build that passes
the checks writes its files without starting a server; a refused one never reaches it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec, LaunchSpec
from mrs_jobs.engines.sql import SqlEngine
from mrs_jobs.engines.thrift import ThriftServers


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data = tmp / "data"  # the service's data directory
        (self.data / "jobs").mkdir(parents=True)
        (self.data / "secret.key").write_text("KEY")
        self.inp = tmp / "in"
        self.out = tmp / "out"
        self.other = tmp / "other"
        for d in (self.inp, self.out, self.other):
            d.mkdir()
        (self.inp / "a.csv").write_text("1\n")
        self.engine = SqlEngine(ThriftServers(self.data / "clusters", "test-marker"))
        self.n = 0

    def cluster(self, *, inputs: bool = True, outputs: bool = True) -> ClusterSpec:
        return ClusterSpec(
            "c1",
            input_roots=(str(self.inp),) if inputs else (),
            output_roots=(str(self.out),) if outputs else (),
            forbidden=(str(self.data),),
            extra={"sql_thrift_endpoint": "127.0.0.1:1"},
        )

    def build(
        self, sql: str, cluster: ClusterSpec | None = None, job_type: str = "SparkSql", **kw: str
    ) -> LaunchSpec:
        self.n += 1
        args = [a for k, v in kw.items() for a in (f"--{k}", v)] + [sql]
        job = JobSpec(f"j{self.n}", job_type, "t", args, {})
        workdir = self.data / "jobs" / f"j{self.n}"
        return self.engine.build(job, cluster or self.cluster(), workdir)

    def refused(self, sql: str, cluster: ClusterSpec | None = None, **kw: str) -> str:
        with pytest.raises(EngineRefused) as err:
            self.build(sql, cluster, **kw)
        return str(err.value)


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


def test_reads_under_the_input_or_output_roots_and_writes_under_the_output_roots(
    w: World,
) -> None:
    sql = (
        f"ADD JAR {w.inp}/udf.jar;"
        f"SELECT * FROM text.`{w.out}/prev`;"
        f"INSERT OVERWRITE LOCAL DIRECTORY '{w.out}/d' SELECT * FROM csv.`file://{w.inp}/a.csv`;"
        f"CREATE TABLE t (a INT) LOCATION '{w.out}/t'"
    )
    launch = w.build(sql)
    spec = json.loads((Path(launch.cwd) / "sql.json").read_text())
    assert len(spec["statements"]) == 4
    assert "statement(s)" in launch.notes[-1]


def test_a_temporary_view_reads_unless_the_job_writes_tables(w: World) -> None:
    view = f"CREATE TEMPORARY VIEW v USING csv OPTIONS (path '{w.inp}/a.csv', header 'true')"
    w.build(f"{view}; SELECT count(*) FROM v")
    # A file-source view can be inserted into: with an INSERT in the job, it is a write.
    msg = w.refused(f"{view}; INSERT INTO v SELECT 1")
    assert msg.startswith(f"statement 0: output path {w.inp}/a.csv is not under an allowed")


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELECT * FROM text.`{other}/x`", "statement 0: path {other}/x is not under an allowed"),
        ("INSERT OVERWRITE DIRECTORY '{inp}/x' SELECT 1", "statement 0: output path {inp}/x"),
        ("INSERT OVERWRITE LOCAL DIRECTORY 'file://{other}/x' SELECT 1", "output root"),
        ("CREATE TABLE t (a INT) LOCATION '{inp}/t'", "output root"),
        ("LOAD DATA INPATH '{inp}/a.csv' INTO TABLE t", "output root"),  # moves the file
        ("ADD JAR {other}/evil.jar", "input root"),
        ("CREATE FUNCTION f AS 'x.F' USING JAR '{other}/f.jar'", "input root"),
        ("SELECT * FROM text.`{inp}/../other/x`", "input root"),
        ("SELECT * FROM text.`{inp}/*/../../other/x`", "input root"),
        ("SET spark.sql.streaming.checkpointLocation={inp}/ck", "output root"),
    ],
)
def test_outside_the_roots_is_refused(w: World, sql: str, needle: str) -> None:
    names = {"inp": w.inp, "out": w.out, "other": w.other}
    assert needle.format(**names) in w.refused(sql.format(**names))


def test_statement_index_is_named(w: World) -> None:
    msg = w.refused(f"SELECT 1; SELECT 2; SELECT * FROM text.`{w.other}/x`")
    assert msg.startswith(f"statement 2: path {w.other}/x ")


def test_a_symlink_out_of_a_root_is_resolved(w: World) -> None:
    (w.inp / "link").symlink_to(w.other, target_is_directory=True)
    assert "not under an allowed input root" in w.refused(f"SELECT * FROM text.`{w.inp}/link/x`")


def test_lexical_and_real_readings_are_both_checked(w: World) -> None:
    # Hadoop removes ".." before the system follows a symlink; the real path differs.
    (w.inp / "deep").mkdir()
    (w.out / "jump").symlink_to(w.inp / "deep", target_is_directory=True)
    # Real: in/deep/../x = in/x (a read is fine) but lexical: out/x; as a write, the real
    # reading (in/x) is outside the output roots.
    assert "output root" in w.refused(f"INSERT OVERWRITE DIRECTORY '{w.out}/jump/../x' SELECT 1")


def test_a_cluster_with_input_roots_only_writes_nothing_local(w: World) -> None:
    cluster = w.cluster(outputs=False)
    w.build(f"SELECT * FROM csv.`{w.inp}/a.csv`", cluster)
    msg = w.refused(f"INSERT OVERWRITE DIRECTORY '{w.inp}/o' SELECT 1", cluster)
    assert "no output roots" in msg
    # Remote file systems are not local paths: left to the engine.
    w.build("INSERT OVERWRITE DIRECTORY 'hdfs://nn:8020/o' SELECT 1", cluster)


def test_an_unrooted_cluster_reads_any_path_but_the_service_files_and_writes_none(
    w: World,
) -> None:
    cluster = w.cluster(inputs=False, outputs=False)
    w.build(f"SELECT * FROM text.`{w.other}/x`", cluster)
    assert "no output roots" in w.refused(
        f"INSERT OVERWRITE DIRECTORY '{w.other}/o' SELECT 1", cluster
    )
    for sql in (
        f"SELECT * FROM text.`{w.data}/secret.key`",
        f"INSERT OVERWRITE DIRECTORY '{w.data}/x' SELECT 1",
        f"INSERT OVERWRITE DIRECTORY '{w.tmp}' SELECT 1",  # would replace the data dir too
        f"SELECT * FROM binaryFile.`{w.tmp}/*`",
    ):
        assert "reaches the service's own files" in w.refused(sql, cluster)


def test_the_job_s_own_directory_is_no_exception_for_sql(w: World) -> None:
    # The SQL server would write it, not the job: its own files (sql.json, logs) stay off.
    msg = w.refused(f"INSERT OVERWRITE DIRECTORY '{w.data}/jobs/j1' SELECT 1")
    assert "reaches the service's own files" in msg


def test_variables_are_checked_after_substitution(w: World) -> None:
    w.build("SELECT * FROM csv.`${dir}/a.csv`", hivevar=f"dir={w.inp}")
    msg = w.refused("SELECT * FROM text.`${dir}/secret.key`", hivevar=f"dir={w.data}")
    assert "reaches the service's own files" in msg
    assert "'${'" in w.refused("SELECT * FROM text.`${hiveconf:d}/secret.key`")
    assert "'${'" in w.refused("SELECT 1", conf="x=${env:HOME}")


def test_session_settings_naming_paths_are_writes(w: World) -> None:
    w.build("SELECT 1", conf=f"spark.sql.streaming.checkpointLocation={w.out}/ck")
    msg = w.refused("SELECT 1", conf=f"spark.sql.streaming.checkpointLocation={w.data}/ck")
    assert msg.startswith("setting spark.sql.streaming.checkpointLocation: path ")


def test_uncheckable_statements_are_refused(w: World) -> None:
    for sql, needle in (
        ("SELECT * FROM text.`relative/x`", "not an absolute local path"),
        ("EXECUTE IMMEDIATE concat('SELECT * FROM text.`', '/x`')", "EXECUTE IMMEDIATE"),
        ("SELECT 1 -- then text.`/x`", "inside a comment"),
    ):
        assert needle in w.refused(sql)


def test_refusal_messages_show_only_what_the_user_gave(w: World) -> None:
    cluster = w.cluster(inputs=False, outputs=False)
    msg = w.refused(f"SELECT * FROM text.`file://{w.data}/secret.key`", cluster)
    assert msg == (
        f"statement 0: path file://{w.data}/secret.key is not allowed: it reaches the "
        "service's own files"
    )


def test_a_script_file_of_the_service_is_refused(w: World) -> None:
    cluster = w.cluster(inputs=False, outputs=False)
    (w.data / "q.sql").write_text("SELECT 1;")
    for path in (str(w.data / "q.sql"), f"file://{w.data}/q.sql"):
        with pytest.raises(EngineRefused, match="reaches the service's own files"):
            w.build(path, cluster, job_type="SparkScript")
    (w.other / "q.sql").write_text(f"SELECT * FROM text.`{w.data}/secret.key`;")
    with pytest.raises(EngineRefused, match="statement 0: path .* service's own files"):
        w.build(str(w.other / "q.sql"), cluster, job_type="HiveScript")


def test_glob_alternatives_cannot_climb_out(w: World) -> None:
    w.build(f"SELECT * FROM csv.`{w.inp}/{{a,b}}.csv`")
    for sql in (
        f"SELECT * FROM text.`{w.inp}/{{/..,/x}}/other/k`",
        f"SELECT * FROM text.`{w.inp}/{{x/../..}}/other/k`",
    ):
        assert "alternatives" in w.refused(sql)


def test_secret_values_are_handed_to_the_runner_for_masking(w: World) -> None:
    args = ["--conf", "fs.s3a.secret.key=Sk-conf-1", "-d", "db.password=Pw-var-2", "SELECT 1"]
    props = {"my.token": "Tok-prop-3", "spark.executor.cores": "1"}
    launch = w.engine.build(JobSpec("js", "SparkSql", "t", args, props), w.cluster(), w.tmp / "js")
    spec = json.loads((Path(launch.cwd) / "sql.json").read_text())
    assert spec["mask"] == ["Pw-var-2", "Sk-conf-1", "Tok-prop-3"]
