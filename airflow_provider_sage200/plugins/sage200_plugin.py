"""Airflow plugin: the Sage 200 token page in the API server (``/sage200``) and its Admin menu entry."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_sage200.version_compat import AIRFLOW_V_3_1_PLUS


class Sage200Plugin(AirflowPlugin):
    name = "sage200"
    # External views (UI menu entries) exist from Airflow 3.1.
    external_views = (
        [
            {
                "name": "Sage 200 tokens",
                "href": "/sage200/",
                "destination": "nav",
                "category": "admin",
                "url_route": "sage200",
            }
        ]
        if AIRFLOW_V_3_1_PLUS
        else []
    )

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        # Built only when the API server asks for it: every task process loads plugins too (for lineage readers),
        # and importing FastAPI and Airflow's API security there cost ~2 s per task.
        from airflow_provider_sage200.plugins.token_page import create_app

        return [{"app": create_app(), "url_prefix": "/sage200", "name": "Sage 200 tokens"}]
