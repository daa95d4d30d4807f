"""The "Sage 200 tokens" page on Airflow 2.11: the plugin's Flask-AppBuilder view in the real webserver app
(``airflow.www.app.create_app``, with its FAB login, auth manager and app-wide CSRF protection), against the
emulator. The Airflow 3 page's equivalents: tests/e2e/test_deployment.py and tests/hostile/test_callback_log.py.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
import requests

from airflow_provider_sage200.version_compat import AIRFLOW_V_3_0_PLUS
from tests.conftest import CONN_ID

pytestmark = pytest.mark.skipif(
    AIRFLOW_V_3_0_PLUS, reason="the FAB token page is Airflow 2.11's; Airflow 3 serves the FastAPI app"
)

BASE_URL = "http://127.0.0.1:8080"
CALLBACK = f"{BASE_URL}/sage200/oauth/callback"
PASSWORD = "page-test-password"
USERS = {"sage-op": "Op", "sage-admin": "Admin", "sage-viewer": "Viewer"}
PAGE = "/sage200/"
REFRESH = f"/sage200/connections/{CONN_ID}/refresh"
AUTHORIZE = f"/sage200/connections/{CONN_ID}/authorize"


@pytest.fixture(scope="module")
def webserver(airflow_db) -> Iterator[Any]:
    """Airflow 2.11's webserver app, with an Op, an Admin and a Viewer user."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__WEBSERVER__BASE_URL", BASE_URL)
        # The tests log in more often than FAB's login rate limit (5 in 40 s) allows.
        patch.setenv("AIRFLOW__WEBSERVER__AUTH_RATE_LIMITED", "False")
        from airflow.www.app import create_app

        app = create_app(testing=True)
        security = app.appbuilder.sm
        for username, role in USERS.items():
            if security.find_user(username=username) is None:
                security.add_user(
                    username,
                    username,
                    "Tester",
                    f"{username}@example.com",
                    security.find_role(role),
                    PASSWORD,
                )
        yield app


@pytest.fixture
def page_conn(consented) -> Iterator[str]:
    """The consented connection, also in the metastore: the page lists the metastore's sage200 connections."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    fields = json.loads(os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"])
    with create_session() as session:
        session.add(Connection(conn_id=CONN_ID, conn_type="sage200", login=fields["login"],
                               password=fields["password"], extra=json.dumps(fields["extra"])))  # fmt: skip
    yield consented
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == CONN_ID).delete(synchronize_session=False)


def csrf_token(html: str) -> str:
    """The CSRF token of the first form in ``html`` (FAB's login form or the token page's)."""
    match = re.search(r"name=['\"]csrf_token['\"][^>]*value=['\"]([^'\"]+)", html)
    assert match, html[:500]
    return match.group(1)


def logged_in(app: Any, username: str) -> Any:
    """A test client with ``username``'s session, logged in through FAB's login form."""
    client = app.test_client()
    form = client.get("/login/").get_data(as_text=True)
    answer = client.post(
        "/login/", data={"username": username, "password": PASSWORD, "csrf_token": csrf_token(form)}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert "/login" not in answer.headers["Location"]
    return client


def stored_token() -> dict[str, Any]:
    from airflow_provider_sage200.hooks.sage200 import Sage200Hook

    return Sage200Hook(CONN_ID).token_store.load()


def assert_no_token_shown(emulator, answers: list[Any]) -> None:
    """No access or refresh token Sage ID ever issued is in any answer's body or Location."""
    issued = emulator.client.issued_tokens()
    tokens = issued["access_tokens"] + issued["refresh_tokens"]
    assert tokens
    for answer in answers:
        shown = answer.get_data(as_text=True) + answer.headers.get("Location", "")
        assert not [t for t in tokens if t in shown]


def test_an_op_sees_the_cards_and_others_do_not(webserver, page_conn, emulator):
    anonymous = webserver.test_client().get(PAGE)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]

    viewer = logged_in(webserver, "sage-viewer").get(PAGE)
    assert viewer.status_code == 302 and urlsplit(viewer.headers["Location"]).path != PAGE
    assert "data-conn-id" not in viewer.get_data(as_text=True)

    shown = logged_in(webserver, "sage-op").get(PAGE)
    body = shown.get_data(as_text=True)
    assert shown.status_code == 200 and shown.mimetype == "text/html"
    assert f"data-conn-id='{CONN_ID}'" in body and "<span class='badge ok'>Healthy</span>" in body
    assert "Refresh now" in body and "Get new token" in body
    cards = body.count("data-conn-id=")  # other tests of the session may have added sage200 connections
    assert cards >= 1 and body.count("<input type='hidden' name='csrf_token'") == 2 * cards  # one per form
    assert_no_token_shown(emulator, [anonymous, viewer, shown])


def test_the_menu_has_admin_sage_200_tokens(webserver, page_conn):
    home = logged_in(webserver, "sage-admin").get("/home", follow_redirects=True).get_data(as_text=True)
    assert "Sage 200 tokens" in home and 'href="/sage200/"' in home


def test_a_post_without_the_csrf_token_or_the_permission_changes_nothing(webserver, page_conn, emulator):
    grants = emulator.client.stats()["token_grants"]["refresh_token"]
    op = logged_in(webserver, "sage-op")
    forged = op.post(REFRESH)
    assert forged.status_code == 400 and "CSRF" in forged.get_data(as_text=True)
    wrong = op.post(REFRESH, data={"csrf_token": "not-the-sessions"})
    assert wrong.status_code == 400

    viewer = logged_in(webserver, "sage-viewer")
    # The viewer's own session token, from the logout form of the navigation bar.
    token = csrf_token(viewer.get("/home").get_data(as_text=True))
    refused = viewer.post(REFRESH, data={"csrf_token": token})
    assert refused.status_code == 302 and urlsplit(refused.headers["Location"]).path != PAGE
    assert emulator.client.stats()["token_grants"]["refresh_token"] == grants


def test_refresh_now_rotates_the_token(webserver, page_conn, emulator):
    before = stored_token()
    op = logged_in(webserver, "sage-op")
    shown = op.get(PAGE)
    refreshed = op.post(REFRESH, data={"csrf_token": csrf_token(shown.get_data(as_text=True))})
    assert refreshed.status_code == 303
    location = refreshed.headers["Location"]
    assert urlsplit(location).path == PAGE and "message=" in location
    after = stored_token()
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] != before["refresh_token"]

    notice = op.get(location)
    assert f"{CONN_ID}: Token refreshed." in notice.get_data(as_text=True)
    spoofed = op.get(PAGE, query_string={"message": "Call +44 0000 to keep your token"})
    assert "Call +44 0000" not in spoofed.get_data(as_text=True)
    assert_no_token_shown(emulator, [shown, refreshed, notice, spoofed])


def test_get_new_token_consents_once_for_the_user_who_started_it(webserver, page_conn, emulator):
    from tests.compat import redact

    op = logged_in(webserver, "sage-op")
    shown = op.get(PAGE)
    # A request naming another Host (the session cookie sent along, as a proxy forwarding it would).
    op.set_cookie("session", op.get_cookie("session").value, domain="evil.example")
    start = op.post(
        AUTHORIZE,
        base_url="http://evil.example",
        data={"csrf_token": csrf_token(shown.get_data(as_text=True))},
    )
    assert start.status_code == 303
    consent_url = start.headers["Location"]
    assert consent_url.startswith(emulator.auth_url) and "evil.example" not in consent_url
    query = parse_qs(urlsplit(consent_url).query)
    assert query["redirect_uri"] == [CALLBACK] and f"redirect_uri={quote(CALLBACK, safe='')}" in consent_url
    assert query["code_challenge"][0] and query["code_challenge_method"] == ["S256"]

    answered = requests.get(consent_url, allow_redirects=False, timeout=10).headers["Location"]
    assert answered.startswith(CALLBACK)
    callback = answered.removeprefix(BASE_URL)
    code = parse_qs(urlsplit(answered).query)["code"][0]
    grants = emulator.client.stats()["token_grants"]["authorization_code"]
    before = stored_token()

    forged = op.get(re.sub(r"state=[^&]+", "state=forged", callback))
    assert "error=" in forged.headers["Location"]
    assert "Consent refused: the state parameter is not one this Airflow issued." in op.get(
        forged.headers["Location"]
    ).get_data(as_text=True)
    assert redact(code) != code  # masked before the handler ran

    admin = logged_in(webserver, "sage-admin")
    other = admin.get(callback)
    assert "error=" in other.headers["Location"]
    assert "Consent refused: the consent was started by another Airflow user." in admin.get(
        other.headers["Location"]
    ).get_data(as_text=True)
    assert emulator.client.stats()["token_grants"]["authorization_code"] == grants

    accepted = op.get(callback)
    assert accepted.status_code == 303 and "message=" in accepted.headers["Location"]
    assert emulator.client.stats()["token_grants"]["authorization_code"] == grants + 1
    assert stored_token()["refresh_token"] != before["refresh_token"]
    notice = op.get(accepted.headers["Location"]).get_data(as_text=True)
    assert f"New token stored for {CONN_ID}" in notice

    replayed = op.get(callback)
    assert "error=" in replayed.headers["Location"]
    assert emulator.client.stats()["token_grants"]["authorization_code"] == grants + 1
    assert_no_token_shown(emulator, [shown, start, forged, other, accepted, replayed])


def test_the_code_is_masked_when_the_callback_is_refused_before_the_handler(webserver, page_conn):
    from tests.compat import redact

    code = "auth-code-Zq8/x+y=7"
    query = urlencode({"state": "some-state", "code": code})
    refused = webserver.test_client().get(f"/sage200/oauth/callback?{query}")
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]
    assert redact(f"code={code}") == "code=***"
    assert redact(query.split("code=")[1]) == "***"  # as the access log shows it, URL-encoded
