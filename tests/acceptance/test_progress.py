"""Progress moves between 0 and 100 while a longer Spark job runs (read through the SDK)."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.spark

SCRIPT = """
import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("progress").getOrCreate()
def slow(x):
    time.sleep(1.5)
    return x
print("total", spark.sparkContext.parallelize(range(12), 12).map(slow).sum())
"""


def test_progress_moves_while_running(server, tmp_path) -> None:
    script = tmp_path / "progress.py"
    script.write_text(SCRIPT)
    job_id = server.submit([str(script)], name="progress")
    seen: list[float] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        detail = server.show(job_id)
        seen.append(detail.job_progress)
        if detail.job_state in ("FINISHED", "FAILED", "KILLED"):
            break
        time.sleep(0.3)
    assert detail.job_result == "SUCCEEDED", detail
    assert seen[-1] == 100
    between = [p for p in seen if 0 < p < 100]
    assert between, seen
    assert between == sorted(between)  # never goes backwards
