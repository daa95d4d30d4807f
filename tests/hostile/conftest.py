"""Fixtures for the hostile-server suite: a connection whose Sage 200 and Sage ID are a :class:`HostileServer`."""

from __future__ import annotations

import json
import os
import time

import pytest

from airflow_provider_sage200.emulator.config import SITE_A
from tests.conftest import CONN_ID
from tests.hostile.server import HostileServer

CLIENT_SECRET = "hostile-client-secret"
REFRESH_TOKEN = "hostile-refresh-token"


def far_future_token(**changes) -> dict:
    now = int(time.time())
    return {
        "access_token": "hostile-access-token",
        "refresh_token": REFRESH_TOKEN,
        "token_type": "Bearer",
        "expires_at": now + 3600,
        "refresh_token_expires_at": now + 80 * 86400,
        "consented_at": now,
        "refreshed_at": now,
        "generation": 0,
    } | changes


@pytest.fixture
def connect(monkeypatch, airflow_db):
    """``connect(server, token=...)``: point connection ``sage200_default`` at ``server``, store ``token``."""
    from airflow.models.variable import Variable

    from airflow_provider_sage200.token_provider import Sage200TokenProvider

    def connect(server: HostileServer, token: dict | None = None, **extra) -> str:
        variable = f"sage200_token__{os.urandom(4).hex()}"
        fields = {
            "edition": "professional",
            "site_id": SITE_A,
            "company_id": 1,
            "api_url": f"{server.url}/api/",
            "auth_url": f"{server.url}/oauth/authorize",
            "token_url": f"{server.url}/oauth/token",
            "redirect_uri": "http://127.0.0.1:8765/callback",
            "token_variable": variable,
        } | extra
        conn = {"conn_type": "sage200", "login": "hostile-client", "password": CLIENT_SECRET, "extra": fields}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        Variable.set(variable, json.dumps(token or far_future_token()))
        Sage200TokenProvider.clear_cache()
        return variable

    return connect
