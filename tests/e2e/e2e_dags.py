"""Extra DAG for the end-to-end deployment test: the deferrable token sensor, waited on by the real triggerer."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

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
