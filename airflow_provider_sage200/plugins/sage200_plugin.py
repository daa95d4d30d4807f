"""Airflow plugin: the Sage 200 token page in the API server (``/sage200``) and the Admin menu entry."""

from __future__ import annotations

import sys

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_sage200.version_compat import AIRFLOW_V_3_1_PLUS


def _running_api_server() -> bool:
    # The FastAPI app (and its imports) is only needed where it is served.
    return "api-server" in sys.argv or "api_server" in " ".join(sys.argv)


class Sage200Plugin(AirflowPlugin):
    name = "sage200"
    fastapi_apps = []
    external_views = []
    if _running_api_server():
        from airflow_provider_sage200.plugins.token_page import create_app

        fastapi_apps = [{"app": create_app(), "url_prefix": "/sage200", "name": "Sage 200 tokens"}]
    if AIRFLOW_V_3_1_PLUS:
        external_views = [
            {
                "name": "Sage 200 tokens",
                "href": "/sage200/",
                "destination": "nav",
                "category": "admin",
                "url_route": "sage200",
            }
        ]
