"""Run one DAG with ``dag.test()`` in a fresh process, with its own DAGs folder and settings.

For tests that need configuration read once per process (the OpenLineage transport) or another DAGs folder
(the example DAGs): ``python -m tests.dag_runner <out.json> <dag_id> '<conf json>' [logical date]`` writes
``{task_id: [state, return value]}`` to ``out.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def run_dag_in_process(
    dag_folder: Path,
    dag_id: str,
    conf: dict | None = None,
    logical_date: datetime | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, list[Any]]:
    """``dag.test()`` of ``dag_id`` from ``dag_folder`` in a subprocess sharing this test's metastore."""
    return run_dag_in_process_with_output(dag_folder, dag_id, conf, logical_date, env)[0]


def run_dag_in_process_with_output(
    dag_folder: Path,
    dag_id: str,
    conf: dict | None = None,
    logical_date: datetime | None = None,
    env: dict[str, str] | None = None,
) -> tuple[dict[str, list[Any]], str]:
    """:func:`run_dag_in_process`, also returning what the process wrote to stdout and stderr (its log)."""
    out = Path(tempfile.mkdtemp(prefix="dag-runner-")) / "results.json"
    args = [sys.executable, "-m", "tests.dag_runner", str(out), dag_id, json.dumps(conf or {})]
    if logical_date is not None:
        args.append(logical_date.isoformat())
    result = subprocess.run(
        args,
        cwd=REPO,
        env=os.environ | {"AIRFLOW__CORE__DAGS_FOLDER": str(dag_folder)} | (env or {}),
        capture_output=True,
        text=True,
        timeout=900,  # a loaded 2-core machine has taken over 5 minutes for one run
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text())
    shutil.rmtree(out.parent)
    return results, result.stdout + result.stderr


def main() -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from tests.compat import dag_test, dagbag, xcom_return_value

    out, dag_id, conf = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    logical_date = datetime.fromisoformat(sys.argv[4]) if len(sys.argv) > 4 else None
    dag = dagbag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag(dag_id)
    run = dag_test(dag, conf, logical_date)
    results: dict[str, list[Any]] = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run.run_id):
            value = xcom_return_value(session, dag_id, run.run_id, ti.task_id)
            results[ti.task_id] = [str(ti.state), value]
    out.write_text(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
