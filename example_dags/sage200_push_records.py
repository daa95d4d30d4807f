"""Push customers from a JSON Lines file into Sage 200, idempotently by natural key.

Sage 200 has no upsert, and a POST that times out may or may not have created the record, so the provider never
repeats one. Each customer is looked up by its ``reference`` first: found means PUT (update), not found means POST
(create). Running the DAG twice with the same file creates nothing new the second time.

Settings: the ``input_path`` Param (one JSON object per line with at least ``reference`` and ``name``).
"""

from __future__ import annotations

import json
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param, task

with DAG(
    dag_id="sage200_push_records",
    description="Create or update Sage 200 customers from a file, idempotently",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={
        "input_path": Param("/tmp/sage200_customers.jsonl", type="string"),
        "sage200_conn_id": Param("sage200_default", type="string"),
    },
    tags=["sage200", "example"],
):

    @task
    def upsert_customers(params: dict | None = None) -> dict:
        from airflow_provider_sage200.hooks.sage200 import Sage200Hook
        from airflow_provider_sage200.odata import eq

        hook = Sage200Hook(params["sage200_conn_id"])
        created = updated = 0
        with open(params["input_path"]) as lines:
            for line in lines:
                customer = json.loads(line)
                found = hook.send(
                    "customers",
                    query={"$filter": eq("reference", customer["reference"]), "$select": "id", "$top": 1},
                )
                if found:
                    changes = {k: v for k, v in customer.items() if k != "reference"}
                    hook.send(f"customers/{found[0]['id']}", "PUT", json=changes)
                    updated += 1
                else:
                    hook.send("customers", "POST", json=customer)
                    created += 1
        return {"created": created, "updated": updated}

    upsert_customers()
