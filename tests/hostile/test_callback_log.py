"""Defect 10: the authorization code in the API server's access log when the token page's OAuth callback is
refused (401 without a session, 403 for a viewer) before its handler runs.

The token page's FastAPI app is mounted as the API server mounts it, behind Airflow's own access-log middleware,
with the real auth manager; the access log's records are captured as the API server would write them.
"""

from __future__ import annotations

import pytest

from airflow_provider_sage200.version_compat import AIRFLOW_V_3_0_PLUS

pytestmark = pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="the token page is an Airflow 3 plugin")

CODE = "auth-code-Zq8/x+y=7"  # with characters a URL encodes, as Sage ID's codes may have


@pytest.fixture
def api_server(airflow_db, monkeypatch):
    """The plugin app under /sage200 behind the API server's access log (Airflow 3.3+; before, uvicorn's)."""
    from airflow.api_fastapi.app import init_auth_manager
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow_provider_sage200.plugins.token_page import create_app

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "viewer:viewer")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8080")
    app = FastAPI()
    app.mount("/sage200", create_app())
    auth_manager = init_auth_manager(app)
    try:
        from airflow.api_fastapi.common.http_access_log import HttpAccessLogMiddleware

        app.add_middleware(HttpAccessLogMiddleware)
    except ImportError:  # before 3.3 uvicorn writes the access line; the test renders it the same way
        HttpAccessLogMiddleware = None
    return TestClient(app), auth_manager, HttpAccessLogMiddleware is not None


def access_line(record: dict) -> str:
    return f"{record['method']} {record['path']}?{record['query']} {record['status_code']}"


@pytest.mark.parametrize("who", ["anonymous", "viewer"])
def test_the_code_is_masked_even_when_the_callback_is_refused(api_server, who):
    from urllib.parse import urlencode

    import structlog
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from tests.compat import redact_in_core

    client, auth_manager, access_log = api_server
    headers = {}
    if who == "viewer":
        user = SimpleAuthManagerUser(username="viewer", role="viewer")
        headers["Authorization"] = f"Bearer {auth_manager.generate_jwt(user)}"
    query = urlencode({"state": "some-state", "code": CODE})
    with structlog.testing.capture_logs() as records:
        answer = client.get(f"/sage200/oauth/callback?{query}", headers=headers, follow_redirects=False)
    assert answer.status_code == (401 if who == "anonymous" else 403)
    if access_log:
        lines = [access_line(r) for r in records if r.get("event") == "request finished"]
    else:
        lines = [redact_in_core(f"GET /sage200/oauth/callback?{query} HTTP/1.1 {answer.status_code}")]
    assert len(lines) == 1 and "/sage200/oauth/callback" in lines[0]
    assert CODE not in lines[0]
    assert query.split("code=")[1] not in lines[0]  # nor URL-encoded
