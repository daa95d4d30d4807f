"""Module-level DAGs for the dag.test() integration tests (dag.test() needs DAGs from the DAGs folder).

Arguments arrive through ``dag_run.conf`` with native rendering, so one DAG serves many tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, Asset, task

from airflow_provider_sage200.operators.sage200 import (
    Sage200GetOperator,
    Sage200Operator,
    Sage200RefreshTokenOperator,
)
from airflow_provider_sage200.sensors.sage200 import Sage200TokenSensor
from airflow_provider_sage200.version_compat import CronDataIntervalTimetable

START = datetime(2026, 1, 1)
CONF = "{{ dag_run.conf['%s'] }}"

with DAG("t_hook_call", schedule=None, start_date=START, catchup=False):

    @task
    def call_api() -> dict:
        from airflow_provider_sage200.hooks.sage200 import Sage200Hook

        hook = Sage200Hook()
        orders = hook.send("sop_orders", query={"$top": 5, "$select": "id"})
        return {"orders": len(orders), "generation": hook.token_status().generation}

    call_api()


with DAG("t_log_connection", schedule=None, start_date=START, catchup=False):

    @task
    def log_connection() -> str:
        """What a task log makes of a line holding the connection's secrets: the masker must hide them all."""
        from airflow_provider_sage200.hooks.sage200 import Sage200Hook
        from tests.compat import redact

        hook = Sage200Hook()
        hook.send("sop_orders", query={"$top": 1, "$select": "id"})
        config = hook.config
        return redact(f"key {config.subscription_key} secret {config.client_secret}")

    log_connection()


with DAG("t_export", schedule=None, start_date=START, catchup=False, render_template_as_native_obj=True):
    for fmt in ("jsonl", "json", "csv", "parquet"):
        Sage200GetOperator(
            task_id=f"export_{fmt}",
            endpoint=CONF % "endpoint",
            query=CONF % "query",
            output_uri="{{ dag_run.conf['output_dir'] }}/out." + fmt,
            output_format=fmt,
            page_size=1000,
        )


with DAG("t_export_xcom", schedule=None, start_date=START, catchup=False, render_template_as_native_obj=True):
    Sage200GetOperator(
        task_id="to_xcom",
        endpoint=CONF % "endpoint",
        query=CONF % "query",
        xcom_record_limit=100,
        page_size=40,
    )


# The same incremental export under a data-interval timetable and under the quickstart's "@daily" (a trigger
# timetable on Airflow 3).
for _dag_id, _task_id, _schedule in (
    ("t_incremental", "export_interval", CronDataIntervalTimetable("@daily", timezone="UTC")),
    ("t_incremental_daily", "export_daily", "@daily"),
):
    with DAG(
        _dag_id, schedule=_schedule, start_date=START, catchup=False, render_template_as_native_obj=True
    ):
        Sage200GetOperator(
            task_id=_task_id,
            endpoint="sop_orders",
            query={"$select": "id,date_time_updated"},
            incremental_field="date_time_updated",
            output_uri="{{ dag_run.conf['output_dir'] }}/{{ sage200_window_start | ds }}.jsonl",
            page_size=500,
        )


with DAG("t_write", schedule=None, start_date=START, catchup=False, render_template_as_native_obj=True):
    Sage200Operator(task_id="write", endpoint=CONF % "endpoint", method="POST", json=CONF % "body")


with DAG("t_sensor", schedule=None, start_date=START, catchup=False):
    Sage200TokenSensor(
        task_id="healthy", min_refresh_token_ttl=timedelta(days=10), poke_interval=1, timeout=10
    )
    Sage200TokenSensor(
        task_id="healthy_deferred",
        min_refresh_token_ttl=timedelta(days=10),
        deferrable=True,
        poke_interval=1,
        timeout=10,
    )


with DAG("t_sensor_expiring", schedule=None, start_date=START, catchup=False):
    Sage200TokenSensor(
        task_id="needs_100_days", min_refresh_token_ttl=timedelta(days=100), poke_interval=1, timeout=3
    )


with DAG("t_sensor_deferred_expiring", schedule=None, start_date=START, catchup=False):
    Sage200TokenSensor(
        task_id="needs_100_days_deferred",
        min_refresh_token_ttl=timedelta(days=100),
        deferrable=True,
        poke_interval=1,
        timeout=3,
    )


with DAG("t_refresh", schedule=None, start_date=START, catchup=False):
    under_1m = Sage200RefreshTokenOperator(task_id="if_under_1m", min_remaining=timedelta(minutes=1))
    under_2h = Sage200RefreshTokenOperator(task_id="if_under_2h", min_remaining=timedelta(hours=2))
    under_1m >> under_2h


with DAG(
    "t_export_jsonl", schedule=None, start_date=START, catchup=False, render_template_as_native_obj=True
):
    Sage200GetOperator(
        task_id="export",
        endpoint="sop_orders",
        query={"$select": "id"},
        output_uri="{{ dag_run.conf['output_dir'] }}/orders.jsonl",
        page_size=50,  # many requests, so every kind of injected fault occurs
    )


with DAG("t_maintenance", schedule=None, start_date=START, catchup=False):
    # As example_dags/sage200_token_maintenance.py: refresh when less than 30 minutes remain.
    Sage200RefreshTokenOperator(task_id="refresh_token", min_remaining=timedelta(minutes=30))


with DAG("t_token_health", schedule=None, start_date=START, catchup=False):
    # As example_dags/sage200_token_maintenance.py's health DAG, with a short timeout.
    Sage200TokenSensor(
        task_id="refresh_token_has_10_days",
        min_refresh_token_ttl=timedelta(days=10),
        poke_interval=1,
        timeout=2,
    )
    Sage200TokenSensor(
        task_id="refresh_token_has_10_days_deferred",
        min_refresh_token_ttl=timedelta(days=10),
        deferrable=True,
        poke_interval=1,
        timeout=2,
    )


# Lineage and Asset events: an incremental export with an outlet, then a write.
LINEAGE_ORDERS = Asset(uri="file:///t_lineage/sop_orders")

with DAG(
    "t_lineage",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=START,
    catchup=False,
    render_template_as_native_obj=True,
):
    export = Sage200GetOperator(
        task_id="export",
        endpoint="sop_orders",
        query={"$select": "id,document_no,date_time_updated"},
        incremental_field="date_time_updated",
        output_uri="{{ dag_run.conf['output_dir'] }}/{{ ds }}.jsonl",
        page_size=100,
        max_concurrency=2,
        outlets=[LINEAGE_ORDERS],
    )
    write = Sage200Operator(
        task_id="write",
        endpoint="customers",
        method="POST",
        json={"reference": CONF % "reference", "name": "Lineage Ltd"},
    )
    export >> write


# One mapped task per resource, each with the catalogue's defaults (paging key, incremental field or none).
MAPPED_RESOURCES = [
    "customers",
    "sop_orders",
    "nominal_codes",
    "sales_transaction_views",
    "sales_aged_debtor_summary_views",
]

with DAG(
    "t_mapped_resources",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=START,
    catchup=False,
    render_template_as_native_obj=True,
):
    Sage200GetOperator.partial(
        task_id="export",
        incremental_field="auto",
        output_uri="{{ dag_run.conf['output_dir'] }}/{{ sage200_window_start | ds }}/{{ ti.map_index }}.jsonl",
        page_size=50,
    ).expand(endpoint=MAPPED_RESOURCES)
