"""What the "Sage 200 tokens" page shows for each connection, against the emulator (the browser test checks the
buttons inside the Airflow UI: tests/e2e/test_browser.py)."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from airflow_provider_sage200.version_compat import AIRFLOW_V_3_0_PLUS
from tests.conftest import CONN_ID, connection_json

pytestmark = pytest.mark.usefixtures("consented")


def test_a_healthy_card_says_which_site_and_company_it_uses(emulator):
    from airflow_provider_sage200.plugins.token_page_actions import card as _card

    card = _card(CONN_ID)
    site = emulator.client.sites()[0]
    assert "<span class='badge ok'>Healthy</span>" in card
    assert f"Uses <strong>{site['company_name']}</strong> (X-Company {site['company_id']}) on " in card
    assert f"(X-Site {site['site_id']})" in card
    assert card.count("class=in-use") == 1 and "<span class=tag>in use</span>" in card
    assert "Refresh now" in card and "Get new token" in card
    assert "`" not in card


def test_a_dead_consent_reads_as_sentences_that_point_at_the_button(emulator):
    from airflow_provider_sage200.plugins.token_page_actions import card as _card

    emulator.client.advance_clock(91 * 86400)  # Sage ID: the refresh token's fixed life is over
    card = _card(CONN_ID)  # locally the access token still looks valid, so the page asks Sage for the sites
    assert "Could not list the sites: " in card
    assert "Sage200ReauthorizationRequired" not in card and "(X-Company , X-Site )" not in card
    assert "sage200 auth login" not in card  # the card has the button for that
    assert "use Get new token below" in card or "Use Get new token below" in card
    assert "<span class='badge bad'>New consent needed</span>" in card


def test_the_page_asks_every_connection_at_once_and_a_silent_sage_delays_no_other(emulator, airflow_db):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from airflow_provider_sage200.plugins import token_page_actions as actions

    silent = socket.socket()  # accepts connections (backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    dead_api = f"http://127.0.0.1:{silent.getsockname()[1]}/api/"
    variable = json.loads(os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"])["extra"]["token_variable"]
    names = [f"sage200_page_{os.urandom(3).hex()}" for _ in range(3)]
    with create_session() as session:
        for name, api in zip(names, [None, dead_api, dead_api], strict=True):
            fields = json.loads(
                connection_json(emulator, token_variable=variable, **({"api_url": api} if api else {}))
            )
            session.add(Connection(conn_id=name, conn_type="sage200", login=fields["login"], password=fields["password"],
                                   extra=json.dumps(fields["extra"])))  # fmt: skip
    try:
        started = time.monotonic()
        page = actions.page()
        elapsed = time.monotonic() - started
    finally:
        silent.close()
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id.in_(names)).delete(synchronize_session=False)
    # Two connections waiting out the read timeout together, not one after the other.
    assert elapsed < 2 * actions.SITES_TIMEOUT - 1, elapsed
    cards = {name: page.split(f"data-conn-id='{name}'")[1].split("</section>")[0] for name in names}
    assert "Healthy" in cards[names[0]] and "class='sites'" in cards[names[0]]
    for name in names[1:]:
        assert "Could not list the sites: " in cards[name], cards[name]
    assert "prefers-color-scheme:dark" in page


@pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS, reason="the FastAPI app is Airflow 3's (2.11: test_token_page_fab.py)"
)
def test_the_api_server_app_refreshes_and_consents_through_the_shared_actions(
    emulator, airflow_db, monkeypatch
):
    """The Airflow 3 routes in process, as the API server mounts them (a real deployment: tests/e2e)."""
    from urllib.parse import parse_qs, urlsplit

    import requests
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from airflow_provider_sage200.hooks.sage200 import Sage200Hook
    from airflow_provider_sage200.plugins.token_page import create_app

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_ISSUER", "airflow")  # 3.0 signs an empty list without one
    app = FastAPI()
    app.mount("/sage200", create_app())
    jwt = init_auth_manager(app).generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    client = TestClient(app, headers={"Authorization": f"Bearer {jwt}"}, follow_redirects=False)
    before = Sage200Hook(CONN_ID).token_store.load()

    refreshed = client.post(f"/sage200/connections/{CONN_ID}/refresh")
    assert refreshed.status_code == 303 and refreshed.headers["location"].startswith("../../?message=")
    assert Sage200Hook(CONN_ID).token_store.load()["refresh_token"] != before["refresh_token"]

    start = client.post(f"/sage200/connections/{CONN_ID}/authorize")
    assert start.status_code == 303 and "code_challenge=" in start.headers["location"]
    answered = requests.get(start.headers["location"], allow_redirects=False, timeout=10).headers["Location"]
    assert answered.startswith("http://127.0.0.1:8080/sage200/oauth/callback?")
    callback = answered.removeprefix("http://127.0.0.1:8080")
    forged = client.get(callback.replace("state=", "state=forged"))
    assert forged.headers["location"].startswith("../?error=")
    accepted = client.get(callback)
    assert accepted.headers["location"].startswith("../?message="), accepted.headers["location"]
    assert parse_qs(urlsplit(answered).query)["code"]
    issued = emulator.client.issued_tokens()
    shown = client.get("/sage200/").text + refreshed.text + accepted.text
    assert not [t for t in issued["access_tokens"] + issued["refresh_tokens"] if t in shown]

    # Signed in by the UI's cookie, as a browser is (on 3.0 through plugins/ui_session_bridge.py): a POST from
    # another site is refused, one from the UI's origin is taken.
    browser = TestClient(app, cookies={"_token": jwt}, follow_redirects=False)
    refresh = f"/sage200/connections/{CONN_ID}/refresh"
    assert browser.get("/sage200/").status_code == 200
    assert browser.post(refresh, headers={"Origin": "https://evil.example"}).status_code == 403
    assert browser.post(refresh, headers={"Origin": "http://127.0.0.1:8080"}).status_code == 303
