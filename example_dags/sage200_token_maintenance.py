"""Keep the Sage 200 tokens fresh, and warn people well before the refresh token's fixed expiry.

* ``sage200_token_maintenance`` runs every 15 minutes and refreshes the access token when less than 30 minutes
  remain (the Magento module's cron, done properly: rotation-safe, one run and one task instance at a time).
* ``sage200_token_health`` runs daily: its sensor fails when the refresh token has fewer than 10 days left (or
  the token is missing or expired), and the failure notifies by e-mail with the sensor's exact message.
  Any notifier works in place of ``SmtpNotifier`` (Slack, Teams, a webhook).

Nothing to create first: ``max_active_runs=1`` and ``max_active_tis_per_dag=1`` serialise the refreshes (a task in
a pool that does not exist is never scheduled, so the DAG uses none); refreshes from other DAGs and workers are
made single-use by the hook itself.
The alert address comes from the ``sage200_alert_email`` Variable.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG
from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from airflow_provider_sage200.operators.sage200 import Sage200RefreshTokenOperator
from airflow_provider_sage200.sensors.sage200 import Sage200TokenSensor

with DAG(
    dag_id="sage200_token_maintenance",
    description="Refresh the Sage 200 access token before it expires",
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sage200", "example"],
):
    Sage200RefreshTokenOperator(
        task_id="refresh_token",
        min_remaining=timedelta(minutes=30),
        max_active_tis_per_dag=1,
        retries=3,
        retry_delay=timedelta(minutes=1),
    )

with DAG(
    dag_id="sage200_token_health",
    description="Alert before the Sage 200 refresh token's fixed expiry",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sage200", "example"],
):
    Sage200TokenSensor(
        task_id="refresh_token_has_10_days",
        min_refresh_token_ttl=timedelta(days=10),
        min_access_token_ttl=timedelta(minutes=1),
        mode="reschedule",
        poke_interval=600,
        timeout=3600,
        on_failure_callback=SmtpNotifier(
            to="{{ var.value.get('sage200_alert_email', 'data-team@example.com') }}",
            subject="Sage 200 connection needs attention: {{ ti.task_id }}",
            html_content="<p>{{ exception }}</p><p>Run <code>sage200 auth login</code> to consent again.</p>",
        ),
    )
