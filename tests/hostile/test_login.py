"""Defect 8: `sage200 auth login`'s loopback callback against a hostile local network and forged redirects."""

from __future__ import annotations

import io
import socket
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from airflow_provider_sage200.cli.commands import auth_login
from airflow_provider_sage200.exceptions import Sage200ConfigError
from tests.conftest import CONN_ID
from tests.integration.test_login_callback import Login, port, sage_id_redirect, stored  # noqa: F401


def _callback(location: str, **changes) -> str:
    parts = urlsplit(location)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode({k: v for k, v in query.items() if v is not None})).geturl()


def test_an_idle_connection_does_not_stall_the_callback(port, emulator):  # noqa: F811
    """A browser's preconnect (a TCP connection that never sends) must not hold up the real redirect."""
    login = Login()
    location = sage_id_redirect(login.consent_url())
    idle = socket.create_connection(("127.0.0.1", port))
    try:
        started = time.monotonic()
        answer = requests.get(location, timeout=5)
        assert answer.status_code == 200
        assert time.monotonic() - started < 3
    finally:
        idle.close()
    login.finish()
    assert login.code == 0 and stored(port) is not None


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param({"state": "forged-by-an-attacker", "code": "attacker-code"}, id="wrong-state"),
        pytest.param({"state": None}, id="missing-state"),
        pytest.param({"state": None, "code": None, "error": "access_denied"}, id="error-without-state"),
        pytest.param(
            {"state": "forged", "code": None, "error": "access_denied"}, id="error-with-wrong-state"
        ),
    ],
)
def test_forged_redirects_are_ignored_and_the_login_goes_on(port, emulator, forged):  # noqa: F811
    """A request with a wrong or missing state (even `?error=`) is answered 400 and ignored; the real one lands."""
    login = Login()
    location = sage_id_redirect(login.consent_url())
    answer = requests.get(_callback(location, **forged), timeout=5)
    assert answer.status_code == 400
    assert login.thread.is_alive()  # still waiting for the real redirect
    assert requests.get(location, timeout=5).status_code == 200
    login.finish()
    assert login.code == 0, login.out.getvalue()
    assert emulator.client.stats()["token_grants"]["authorization_code"] == 1  # only the real code exchanged


def test_a_port_in_use_is_found_before_the_url_is_printed(port, emulator):  # noqa: F811
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    out = io.StringIO()
    try:
        with pytest.raises(Sage200ConfigError, match=rf"port {port} .* in use"):
            auth_login(CONN_ID, no_browser=True, timeout=2, out=out)
    finally:
        squatter.close()
    assert out.getvalue() == ""  # no consent URL printed, no browser opened


def test_control_characters_in_the_error_are_stripped(port, emulator, capsys):  # noqa: F811
    login = Login()
    location = sage_id_redirect(login.consent_url())
    hostile = "\x1b[2J\x1b[31mYour account is locked: call +44 0000\x07"
    answer = requests.get(
        _callback(location, code=None, error="access_denied", error_description=hostile), timeout=5
    )
    assert answer.status_code == 400
    login.finish()
    assert login.code == 1
    err = capsys.readouterr().err
    assert "Consent failed: access_denied: [2J[31mYour account is locked: call +44 0000" in err
    assert "\x1b" not in err and "\x07" not in err


def test_pkce_is_the_default(port, emulator):  # noqa: F811
    login = Login()
    url = login.consent_url()
    assert parse_qs(urlsplit(url).query)["code_challenge_method"] == ["S256"]
    requests.get(sage_id_redirect(url), timeout=5)
    login.finish()
    assert login.code == 0
