"""DistCp into and out of a real S3-compatible server, and a SparkSubmit whose script is obs://."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support_s3 import S3Store, running_s3

DONE = frozenset({"FINISHED", "FAILED", "KILLED"})


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Store]:
    with running_s3("accept") as store:
        yield store


def test_distcp_round_trip_through_obs(server, s3, tmp_path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    bucket = s3.new_bucket("dc")
    up = server.submit(
        [str(src), f"obs://{bucket}/data"], name="up", job_type="DistCp", properties=s3.props()
    )
    detail = server.wait_state(up, DONE, 60)
    assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED"), detail
    objects = s3.objects(bucket)
    assert objects["data/a.txt"] == b"alpha\n"
    assert objects["data/sub/b.bin"] == bytes(range(256)) * 4096
    assert s3.secret_key not in detail.properties  # masked in the record

    back = tmp_path / "back"
    down = server.submit(
        [f"s3a://{bucket}/data", str(back)], name="down", job_type="DistCp", properties=s3.props()
    )
    assert server.wait_state(down, DONE, 60).job_result == "SUCCEEDED"
    assert (back / "a.txt").read_text() == "alpha\n"
    assert (back / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 4096
    for job_id in (up, down):
        logs = "".join(
            (server.job_dir(job_id) / n).read_text() for n in ("stdout.log", "stderr.log")
        )
        assert s3.secret_key not in logs
        assert not (server.job_dir(job_id) / "distcp.json").exists()  # secrets removed


def test_distcp_with_a_wrong_secret_fails_clearly(server, s3, tmp_path) -> None:
    bucket = s3.new_bucket("bad")
    (tmp_path / "f.txt").write_text("x")
    job_id = server.submit(
        [str(tmp_path / "f.txt"), f"obs://{bucket}/f.txt"],
        name="bad",
        job_type="DistCp",
        properties=s3.props(**{"fs.obs.secret.key": "WRONG-SECRET-123"}),
    )
    detail = server.wait_state(job_id, DONE, 60)
    assert detail.job_result == "FAILED"
    log = (server.job_dir(job_id) / "stderr.log").read_text()
    assert "WRONG-SECRET-123" not in log and "access denied" in log.lower()
    found = server.assert_diagnosed(job_id, "the engine exited with code")
    assert "access denied" in found.lower() and "WRONG-SECRET-123" not in found


def test_distcp_from_a_missing_source_says_so(server, tmp_path) -> None:
    gone = tmp_path / "gone-7d2a"
    job_id = server.submit([str(gone), str(tmp_path / "to")], name="gone", job_type="DistCp")
    assert server.wait_state(job_id, DONE, 60).job_result == "FAILED"
    server.assert_diagnosed(job_id, f"source not found: {gone}")


@pytest.mark.spark
def test_spark_submit_of_an_obs_script(server, s3) -> None:
    bucket = s3.new_bucket("app")
    s3.client().put_object(
        Bucket=bucket,
        Key="jobs/hello.py",
        Body=b"from pyspark.sql import SparkSession\n"
        b"s = SparkSession.builder.getOrCreate()\n"
        b"print('OBS-SUM', s.sparkContext.parallelize(range(10)).sum())\n",
    )
    job_id = server.submit([f"obs://{bucket}/jobs/hello.py"], name="obsapp", properties=s3.props())
    detail = server.wait_state(job_id, DONE, 180)
    assert detail.job_result == "SUCCEEDED"
    assert "OBS-SUM 45" in (server.job_dir(job_id) / "stdout.log").read_text()
