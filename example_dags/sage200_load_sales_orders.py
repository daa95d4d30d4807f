"""Load each exported sales-order file as it arrives: the downstream half of ``sage200_export_sales_orders``.

The DAG is scheduled on the ``file:///sage200/sop_orders`` Asset. Each export's Asset event carries what it wrote in
its ``extra`` (``path``, ``format``, ``records``, ``bytes``, ``data_interval_start``, ``data_interval_end``,
``endpoint``), so the load needs no listing of the bucket: it opens exactly the files that arrived, checks each
holds the number of records the export announced, and upserts them by ``id`` into a SQLite table standing in
for your warehouse (``sage200_warehouse_path`` Variable, default ``/tmp/sage200_warehouse.sqlite``). A manual
run loads the latest export again.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Asset, ObjectStoragePath, Variable, task

# The Asset the export DAG declares as its outlet (same name and URI).
SOP_ORDERS = Asset(uri="file:///sage200/sop_orders")  # a Dataset on Airflow 2, which has no name


def read_records(path: str, fmt: str) -> list[dict]:
    location = ObjectStoragePath(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with location.open("rb") as handle:
            return pq.read_table(handle).to_pylist()
    with location.open("r") as handle:
        return [json.loads(line) for line in handle] if fmt == "jsonl" else json.load(handle)


with DAG(
    dag_id="sage200_load_sales_orders",
    description="Upsert each day's exported Sage 200 sales orders into the warehouse",
    schedule=[SOP_ORDERS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sage200", "example"],
):

    @task(inlets=[SOP_ORDERS])
    def load_sales_orders(*, triggering_asset_events=None, inlet_events=None) -> dict:
        events = list(triggering_asset_events[SOP_ORDERS]) if triggering_asset_events else []
        if not events:  # a manual run: the latest export
            events = [inlet_events[SOP_ORDERS][-1]]
        warehouse = sqlite3.connect(Variable.get("sage200_warehouse_path", "/tmp/sage200_warehouse.sqlite"))
        warehouse.execute("CREATE TABLE IF NOT EXISTS sop_orders (id INTEGER PRIMARY KEY, record TEXT)")
        loaded = []
        for event in events:
            arrived = event.extra
            records = read_records(arrived["path"], arrived["format"])
            if len(records) != arrived["records"]:
                raise ValueError(
                    f"{arrived['path']} holds {len(records)} records, the export wrote {arrived['records']}"
                )
            warehouse.executemany(
                "INSERT OR REPLACE INTO sop_orders (id, record) VALUES (?, ?)",
                [(r["id"], json.dumps(r, default=str)) for r in records],
            )
            loaded.append(
                {key: arrived[key] for key in ("path", "records", "data_interval_start", "data_interval_end")}
            )
        warehouse.commit()
        total = warehouse.execute("SELECT count(*) FROM sop_orders").fetchone()[0]
        warehouse.close()
        return {"loaded": loaded, "warehouse_rows": total}

    load_sales_orders()
