"""The Airflow 3.0 bridge from the UI's login to the token page (plugins/ui_session_bridge.py), around a stand-in for
the page that answers as 3.0's auth dependencies do: 401 without a valid bearer token, 403 for a viewer. The real
page in a real 3.0 API server and browser: tests/e2e/test_browser.py under ``make compat``."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from airflow_provider_sage200.plugins.ui_session_bridge import FROM_COOKIE, UiSessionBridge

VALID, VIEWER, EXPIRED = "valid.jwt.token", "viewer.jwt.token", "expired.jwt.token"


@pytest.fixture
def client() -> TestClient:
    page = FastAPI()

    @page.api_route("/{path:path}", methods=["GET", "POST"])
    def answer(request: Request) -> JSONResponse:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer in ("", EXPIRED):
            return JSONResponse({"detail": "Not authenticated"}, status_code=401)
        if bearer == VIEWER:
            return JSONResponse({"detail": "Forbidden"}, status_code=403)
        return JSONResponse({"bearer": bearer, "from_cookie": bool(request.scope.get(FROM_COOKIE))})

    app = FastAPI()
    page.add_middleware(UiSessionBridge)
    app.mount("/sage200", page)
    return TestClient(app, base_url="https://airflow.example.com")


def test_a_navigation_without_credentials_gets_the_page_that_copies_the_ui_token(client):
    answer = client.get("/sage200/")
    assert answer.status_code == 401 and answer.headers["cache-control"] == "no-store"
    assert 'localStorage.getItem("token")' in answer.text
    assert '"; path=/sage200; SameSite=Lax; Secure"' in answer.text  # scoped to the page, https only
    assert 'href="/"' in answer.text  # where to sign in


def test_the_cookie_becomes_the_bearer_token_marked_as_from_the_cookie(client):
    client.cookies.set("_token", VALID)
    assert client.get("/sage200/").json() == {"bearer": VALID, "from_cookie": True}
    assert client.post("/sage200/connections/c/refresh").json() == {"bearer": VALID, "from_cookie": True}


def test_a_bearer_header_is_left_alone(client):
    client.cookies.set("_token", VIEWER)
    shown = client.get("/sage200/", headers={"Authorization": f"Bearer {VALID}"}).json()
    assert shown == {"bearer": VALID, "from_cookie": False}


def test_an_expired_token_gets_the_page_again_and_a_viewer_stays_refused(client):
    client.cookies.set("_token", EXPIRED)
    expired = client.get("/sage200/oauth/callback?state=s&code=c")
    assert expired.status_code == 401 and "localStorage" in expired.text
    client.cookies.set("_token", VIEWER)
    refused = client.get("/sage200/")
    assert refused.status_code == 403 and refused.json() == {"detail": "Forbidden"}


def test_a_post_without_credentials_is_refused_by_the_page_not_answered_with_html(client):
    answer = client.post("/sage200/connections/c/refresh")
    assert answer.status_code == 401 and answer.json() == {"detail": "Not authenticated"}
