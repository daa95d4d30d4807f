"""Daily export of the ledger: customers, suppliers, products, orders, nominal codes, transactions, stock levels.

One task per resource, each writing ``<base_uri>/<resource>/<day>.<format>`` (the day it exports) and declaring its own Asset
(``sage200_<resource>``) so downstream DAGs can be scheduled on exactly the resources they read. Every task
takes its per-resource behaviour from the catalogue (``docs/reference.md``): paging by its key (``id`` or a view's
own key, in parallel) or, for a view without one, by offset in the order of its first field, and
``incremental_field="auto"``, which
reads changes by ``date_time_updated`` where the resource has it and exports the whole resource where it has
not (the transaction views). A one-hour ``lookback`` re-reads records committed late; the files therefore
overlap (at-least-once): deduplicate on the resource's key, keeping the latest ``date_time_updated``.

At most ``MAX_ACTIVE_TASKS`` tasks run at once (each may itself send up to ``max_concurrency`` requests). To bound
the Sage calls of every DAG together, create a pool (``airflow pools set sage200 4 "Sage 200 API"``) and add
``"pool": "sage200"`` to ``default_args``: a task in a pool that does not exist is never scheduled, so the
example does not assume one.

Settings (no hard-coding): the ``base_uri`` Param, defaulting to the ``sage200_export_base_uri`` Variable.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, Asset, Param

from airflow_provider_sage200.operators.sage200 import Sage200GetOperator

OUTPUT_FORMAT = "parquet" if importlib.util.find_spec("pyarrow") else "jsonl"
MAX_ACTIVE_TASKS = 4
LEDGER = (
    "customers",
    "suppliers",
    "products",
    "sop_orders",
    "pop_orders",
    "nominal_codes",
    "sales_transaction_views",
    "purchase_transaction_views",
    "warehouse_holdings",
)
BASE_URI = "{{ params.base_uri or var.value.get('sage200_export_base_uri', '/tmp/sage200_exports') }}"

with DAG(
    dag_id="sage200_export_ledger",
    description="Export the Sage 200 ledger (one file and one Asset per resource per day)",
    schedule="@daily",  # each run exports the day that ended at it, on every Airflow line
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=MAX_ACTIVE_TASKS,
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
    for resource in LEDGER:
        Sage200GetOperator(
            task_id=f"export_{resource}",
            endpoint=resource,
            incremental_field="auto",
            lookback=timedelta(hours=1),
            output_uri=f"{BASE_URI}/{resource}/{{{{ sage200_window_start | ds }}}}.{OUTPUT_FORMAT}",
            output_format=OUTPUT_FORMAT,
            page_size=1000,
            outlets=[Asset(uri=f"file:///sage200/{resource}")],
        )
