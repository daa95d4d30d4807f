"""What the "Sage 200 tokens" page shows for each connection, against the emulator (the browser test checks the
buttons inside the Airflow UI: tests/e2e/test_browser.py)."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from tests.conftest import CONN_ID, connection_json

pytestmark = pytest.mark.usefixtures("consented")


def test_a_healthy_card_says_which_site_and_company_it_uses(emulator):
    from airflow_provider_sage200.plugins.token_page import _card

    card = _card(CONN_ID)
    site = emulator.client.sites()[0]
    assert "<span class='badge ok'>Healthy</span>" in card
    assert f"Uses <strong>{site['company_name']}</strong> (X-Company {site['company_id']}) on " in card
    assert f"(X-Site {site['site_id']})" in card
    assert card.count("class=in-use") == 1 and "<span class=tag>in use</span>" in card
    assert "Refresh now" in card and "Get new token" in card
    assert "`" not in card


def test_a_dead_consent_reads_as_sentences_that_point_at_the_button(emulator):
    from airflow_provider_sage200.plugins.token_page import _card

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

    from airflow_provider_sage200.plugins import token_page

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
        page = token_page._page().body.decode()
        elapsed = time.monotonic() - started
    finally:
        silent.close()
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id.in_(names)).delete(synchronize_session=False)
    # Two connections waiting out the read timeout together, not one after the other.
    assert elapsed < 2 * token_page.SITES_TIMEOUT - 1, elapsed
    cards = {name: page.split(f"data-conn-id='{name}'")[1].split("</section>")[0] for name in names}
    assert "Healthy" in cards[names[0]] and "class='sites'" in cards[names[0]]
    for name in names[1:]:
        assert "Could not list the sites: " in cards[name], cards[name]
    assert "prefers-color-scheme:dark" in page
