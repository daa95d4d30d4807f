"""Airflow plugin: the "Sage 200 tokens" page under ``/sage200`` and its Admin menu entry.

On Airflow 3 the page is a FastAPI app in the API server (menu entry from 3.1); on 2.11 a Flask-AppBuilder view
in the webserver (Admin → Sage 200 tokens). :data:`~airflow_provider_sage200.version_compat.TOKEN_PAGE_KIND`
says which; the other kind is never imported.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_sage200.version_compat import AIRFLOW_V_3_1_PLUS, TOKEN_PAGE_KIND


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
        if TOKEN_PAGE_KIND != "fastapi":
            return []
        from airflow_provider_sage200.plugins.token_page import create_app

        return [{"app": create_app(), "url_prefix": "/sage200", "name": "Sage 200 tokens"}]

    @cached_property
    def appbuilder_views(self) -> list[dict[str, Any]]:  # type: ignore[override]
        # Airflow 2.11's webserver asks for it when it builds its Flask app; no other process imports Flask here.
        if TOKEN_PAGE_KIND != "flask":
            return []
        from airflow_provider_sage200.plugins.token_page_fab import appbuilder_view

        return [appbuilder_view()]
