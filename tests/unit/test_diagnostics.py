"""domain/diagnostics.py: an engine's own words for a failure, found in the end of its log."""

from __future__ import annotations

from mrs_jobs.domain.diagnostics import MAX_DIAGNOSTICS, compose, engine_error, scrub

SPARK_INFO = "\n".join(
    f"26/12/07 06:00:{i:02d} INFO SparkContext: line {i} with a java.io.IOException inside"
    for i in range(20)
)

PYTHON_DRIVER = f"""{SPARK_INFO}
Traceback (most recent call last):
  File "/work/job/app.py", line 9, in <module>
    raise ValueError("boom-41c2")
ValueError: boom-41c2
26/12/07 06:00:30 INFO SparkContext: Invoking stop() from shutdown hook
26/12/07 06:00:30 INFO ShutdownHookManager: Deleting directory /tmp/spark-1
"""

PYSPARK_TASK = f"""{SPARK_INFO}
Traceback (most recent call last):
  File "/work/job/app.py", line 12, in <module>
    sc.parallelize(range(4), 2).map(f).count()
py4j.protocol.Py4JJavaError: An error occurred while calling o45.collectAndServe.
: org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 0.0 failed 1 times, most recent failure: Lost task 0.0 in stage 0.0 (TID 0) (10.0.0.1 executor driver): org.apache.spark.api.python.PythonException: Traceback (most recent call last):
  File "/work/job/app.py", line 6, in f
    raise KeyError("boom-task")
KeyError: 'boom-task'

\tat org.apache.spark.api.python.BasePythonRunner$ReaderIterator.handlePythonException(PythonRunner.scala:572)
"""  # noqa: E501

JAVA_MAIN = """26/12/07 06:00:01 INFO Main: starting
Exception in thread "main" java.lang.IllegalStateException: could not start
\tat example.Main.main(Main.java:10)
Caused by: java.io.FileNotFoundException: /data/in/missing.csv (No such file or directory)
\tat java.base/java.io.FileInputStream.open0(Native Method)
"""

MAPREDUCE = """2026-12-07 06:00:01,000 INFO mapreduce.JobSubmitter: Cleaning up the staging area
Exception in thread "main" org.apache.hadoop.mapreduce.lib.input.InvalidInputException: Input path does not exist: file:/data/in/nope-9d1
\tat org.apache.hadoop.mapreduce.lib.input.FileInputFormat.singleThreadedListStatus(FileInputFormat.java:340)
"""  # noqa: E501

FLINK = """------------------------------------------------------------
 The program finished with the following exception:

org.apache.flink.client.program.ProgramInvocationException: The main method caused an error: boom-flink-5
\tat org.apache.flink.client.program.PackagedProgram.callMainMethod(PackagedProgram.java:373)
Caused by: java.lang.RuntimeException: boom-flink-5
\tat Job.main(Job.java:7)
"""  # noqa: E501


def test_a_python_drivers_last_exception() -> None:
    assert engine_error(PYTHON_DRIVER) == "ValueError: boom-41c2"


def test_a_spark_stage_failure_and_the_python_error_of_its_task() -> None:
    found = engine_error(PYSPARK_TASK)
    assert found is not None
    first, second = found.splitlines()
    assert first.startswith("Job aborted due to stage failure: Task 0 in stage 0.0 failed")
    assert second == "KeyError: 'boom-task'"


def test_a_java_root_cause() -> None:
    assert engine_error(JAVA_MAIN) == (
        "java.io.FileNotFoundException: /data/in/missing.csv (No such file or directory)"
    )


def test_mapreduce_missing_input() -> None:
    found = engine_error(MAPREDUCE)
    assert found is not None and "Input path does not exist: file:/data/in/nope-9d1" in found


def test_flink_root_exception_not_its_wrapper() -> None:
    assert engine_error(FLINK) == "java.lang.RuntimeException: boom-flink-5"


def test_our_runners_error_lines_come_first() -> None:
    sql = (
        "[mrs-jobs] statement 0: SELECT 1\n"
        "[mrs-jobs] statement 1 failed: [PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'.\n"
    )
    assert engine_error(sql) == (
        "statement 1 failed: [PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'."
    )
    copy = "distcp: warning: slow\ndistcp: error: source does not exist: /data/in/gone-3\n"
    assert engine_error(copy) == "source does not exist: /data/in/gone-3"


def test_no_error_in_a_quiet_log() -> None:
    assert engine_error(SPARK_INFO) is None
    assert engine_error("") is None


def test_scrub_masks_secret_values_pairs_and_tokens() -> None:
    text = "failed: fs.s3a.secret.key=abcd1234 user=bob Authorization: Bearer tok.en-1 hunter22"
    out = scrub(text, secrets=["hunter22"])
    assert out is not None
    assert "abcd1234" not in out and "tok.en-1" not in out and "hunter22" not in out
    assert "user=bob" in out


def test_compose_joins_and_caps() -> None:
    assert compose("the engine exited with code 1", None) == "the engine exited with code 1"
    assert compose("r", "ValueError: x") == "r\nValueError: x"
    quoted = "Flink job FAILED: java.lang.IllegalStateException: boom"
    assert compose(quoted, "java.lang.IllegalStateException: boom") == quoted
    long = compose("r", "x" * 10_000)
    assert len(long) <= MAX_DIAGNOSTICS and long.endswith("...")


def test_a_java_message_on_the_next_line() -> None:
    log = (
        "Caused by: org.apache.spark.sql.catalyst.parser.ParseException: \n"
        "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601\n"
        "\n== SQL ==\nSELEC 2\n"
        "\tat org.apache.spark.sql.catalyst.parser.ParseException.withCommand(parsers.scala:267)\n"
    )
    assert engine_error(log) == (
        "org.apache.spark.sql.catalyst.parser.ParseException: "
        "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601"
    )
    frames = "java.lang.NullPointerException\n\tat a.B.c(B.java:1)\n"
    assert engine_error(frames) == "java.lang.NullPointerException"
