"""Extra DAGs for the end-to-end deployment: the deferrable token sensor (waited on by the real triggerer) and the
multi-worker refresh soak."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_sage200.operators.sage200 import Sage200GetOperator, Sage200RefreshTokenOperator
from airflow_provider_sage200.sensors.sage200 import Sage200TokenSensor

with DAG("e2e_deferrable_sensor", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    Sage200TokenSensor(
        task_id="token_ok_deferred",
        min_access_token_ttl=timedelta(minutes=1),
        min_refresh_token_ttl=timedelta(days=10),
        deferrable=True,
        poke_interval=2,
        timeout=240,
    )


@task
def hammer(worker: int, seconds: str) -> dict:
    """Call the API continuously through one hook, as a long-running export task would."""
    import time

    from airflow_provider_sage200.hooks.sage200 import Sage200Hook

    hook = Sage200Hook()
    calls = records = 0
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        if calls % 20 == 0:  # now and then a parallel paged read, as Sage200GetOperator does
            records += sum(
                len(p) for p in hook.iter_pages("sop_orders", {"$select": "id"}, 250, max_concurrency=2)
            )
        else:
            records += len(hook.send("sop_orders", query={"$top": 5, "$select": "id"}))
        calls += 1
        time.sleep(0.05)
    return {"worker": worker, "calls": calls, "records": records}


with DAG(
    "e2e_soak",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks=32,
    params={"seconds": Param(60, type="number")},
):
    hammer.partial(seconds="{{ params.seconds }}").expand(worker=list(range(16)))
    Sage200GetOperator(
        task_id="export_during_soak",
        endpoint="sop_orders",
        output_uri="{{ var.value.sage200_export_base_uri }}/soak/{{ run_id | replace(':', '_') }}.jsonl",
    )
    Sage200RefreshTokenOperator(task_id="maintenance_during_soak", min_remaining=timedelta(seconds=4))


MASKING_PROBE = "probe-secret-7c1e9f0a2b4d"


@task
def masked_on_a_real_worker() -> None:
    """What the provider's masking relies on: inside a task, the Task SDK's masker alone hides a secret everywhere."""
    import logging

    from airflow_provider_sage200.masking import mask

    mask(MASKING_PROBE)
    logging.getLogger("some.library").warning("a library logs %s", MASKING_PROBE)
    print(f"task code prints {MASKING_PROBE}")


with DAG("e2e_masking", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    masked_on_a_real_worker()
