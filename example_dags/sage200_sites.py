"""List the Sage 200 sites and companies the connection's user can reach (to fill in X-Site / X-Company)."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, task

with DAG(
    dag_id="sage200_sites",
    description="List the site/company pairs reachable with the sage200 connection",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    params={"sage200_conn_id": "sage200_default"},
    tags=["sage200", "example"],
):

    @task
    def list_sites(params: dict | None = None) -> list[dict]:
        from airflow_provider_sage200.hooks.sage200 import Sage200Hook

        sites = Sage200Hook(params["sage200_conn_id"]).get_sites()
        for site in sites:
            print(f"X-Site {site['site_id']}  X-Company {site['company_id']}  {site['company_name']}")
        return sites

    list_sites()
