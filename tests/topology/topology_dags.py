"""DAGs of the production-topology tests: a full and an incremental parallel export, run by a worker host and
written to the shared output location (the ``sage200_export_base_uri`` Variable)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, CronDataIntervalTimetable

from airflow_provider_sage200.operators.sage200 import Sage200GetOperator

OUTPUT = "{{ var.value.sage200_export_base_uri }}/topology/{{ dag.dag_id }}"

with DAG("topology_full_export", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    Sage200GetOperator(
        task_id="export",
        endpoint="sop_orders",
        query={"$select": "id,date_time_updated"},
        output_uri=OUTPUT + "/{{ run_id | replace(':', '_') }}.jsonl",
        page_size=500,
        max_concurrency=4,
    )

with DAG(
    "topology_incremental_export",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
):
    Sage200GetOperator(
        task_id="export",
        endpoint="sop_orders",
        query={"$select": "id,date_time_updated"},
        incremental_field="date_time_updated",
        output_uri=OUTPUT + "/{{ ds }}.jsonl",
        page_size=200,
        max_concurrency=4,
    )
