"""Run one DAG file with ``dag.test()`` and print how it went (run by the Airflow venv's Python).

``python support_airflow_run.py <dag file> <run conf as JSON>``: loads the file as Airflow's
DAG processor would (under another module name, so its ``if __name__ == "__main__"`` block does
not run), runs one DAG run in this process (deferred tasks' triggers run inline with asyncio,
Airflow's own ``_run_inline_trigger``), then prints one line ``AIRFLOW-RESULT {json}``: the
run's state and, per task, its state and what it pushed to XCom (the submit result).

Not a test module and not imported by the tests: it needs Airflow, which lives in its own venv
(tests/support_airflow.py).
"""

from __future__ import annotations

import importlib.util
import json
import sys

from airflow.models.dag import DAG


def main(dag_file: str, conf: str) -> None:
    spec = importlib.util.spec_from_file_location("mrs_jobs_recipe_dag", dag_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [v for v in vars(module).values() if isinstance(v, DAG)]
    assert len(dags) == 1, f"expected one DAG in {dag_file}, found {len(dags)}"
    run = dags[0].test(run_conf=json.loads(conf))
    tasks = {
        ti.task_id: {"state": ti.state, "xcom": ti.xcom_pull(task_ids=ti.task_id)}
        for ti in run.get_task_instances()
    }
    print("AIRFLOW-RESULT " + json.dumps({"state": run.state, "tasks": tasks}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
