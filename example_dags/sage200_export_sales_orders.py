"""Daily incremental export of Sage 200 sales orders, one file per day.

Each run exports the orders whose ``date_time_updated`` falls in its data interval
``[data_interval_start, data_interval_end)`` to ``<base_uri>/sop_orders/<day>.<format>`` (named by
the day it exports, ``sage200_window_start``) (JSONL, or Parquet when
pyarrow is installed), after a token-health gate. Consecutive runs export every change once; ``catchup`` (or
``airflow dags backfill``) fills past days. The files are declared as the ``file:///sage200/sop_orders`` Asset: each
run's Asset event says in its ``extra`` which file arrived, with how many records and bytes, for which data
interval, and ``sage200_load_sales_orders`` (scheduled on the Asset) loads exactly that file.

Settings (no hard-coding): the ``base_uri`` Param, defaulting to the ``sage200_export_base_uri`` Variable.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, Asset, Param

from airflow_provider_sage200.operators.sage200 import Sage200GetOperator
from airflow_provider_sage200.sensors.sage200 import Sage200TokenSensor

OUTPUT_FORMAT = "parquet" if importlib.util.find_spec("pyarrow") else "jsonl"
SOP_ORDERS = Asset(uri="file:///sage200/sop_orders")  # a Dataset on Airflow 2, which has no name

with DAG(
    dag_id="sage200_export_sales_orders",
    description="Export Sage 200 sales orders changed in each day, to one file per day",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=4,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "base_uri": Param(
            None,
            type=["null", "string"],
            description="Directory or object-store prefix for the export files "
            "(default: the sage200_export_base_uri Variable, else /tmp/sage200_exports).",
        ),
    },
    tags=["sage200", "example"],
) as dag:
    token_ok = Sage200TokenSensor(
        task_id="token_ok",
        min_refresh_token_ttl=timedelta(days=1),
        mode="reschedule",
        poke_interval=300,
        timeout=3600,
    )
    export = Sage200GetOperator(
        task_id="export_sop_orders",
        endpoint="sop_orders",
        query={"$expand": "customer"},
        incremental_field="date_time_updated",
        output_uri="{{ params.base_uri or var.value.get('sage200_export_base_uri', '/tmp/sage200_exports') }}"
        "/sop_orders/{{ sage200_window_start | ds }}." + OUTPUT_FORMAT,
        output_format=OUTPUT_FORMAT,
        page_size=1000,
        outlets=[SOP_ORDERS],
    )
    token_ok >> export
