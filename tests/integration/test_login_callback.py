"""`sage200 auth login`: the one-shot loopback callback against the emulator's Sage ID; and TLS hygiene."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import requests

from airflow_provider_sage200.cli.commands import auth_login
from airflow_provider_sage200.connection import API_BASE_URLS, DEFAULT_AUTH_URL, DEFAULT_TOKEN_URL
from airflow_provider_sage200.emulator.server import free_port
from airflow_provider_sage200.exceptions import Sage200AuthError, Sage200ConfigError
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.token_provider import Sage200TokenProvider
from tests.conftest import CONN_ID, connection_json

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_sage200"


class Login:
    """``auth_login`` running in a thread, as a person runs ``sage200 auth login --no-browser``."""

    def __init__(self, timeout: float = 20) -> None:
        self.out = io.StringIO()
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(timeout,), daemon=True)
        self.thread.start()

    def _run(self, timeout: float) -> None:
        try:
            self.code = auth_login(CONN_ID, no_browser=True, timeout=timeout, out=self.out)
        except BaseException as exc:
            self.error = exc

    def consent_url(self) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            match = re.search(r"^\s+(http\S+/authorize\?\S+)$", self.out.getvalue(), re.MULTILINE)
            if match and "Waiting for the redirect" in self.out.getvalue():
                return match.group(1)
            time.sleep(0.05)
        raise AssertionError(f"no consent URL printed: {self.out.getvalue()!r}")

    def finish(self) -> None:
        self.thread.join(30)
        assert not self.thread.is_alive()


def listeners(port: int) -> list[str]:
    """The local addresses this process listens on at ``port``, now."""
    return [
        c.laddr.ip
        for c in psutil.Process().net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    ]


def listening(port: int) -> list[str]:
    """The local addresses this process listens on at ``port``, once it listens at all."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not listeners(port):
        time.sleep(0.05)
    return listeners(port)


@pytest.fixture
def port(emulator, monkeypatch, airflow_db) -> int:
    """A connection whose redirect_uri is a free loopback port (the emulator allows any loopback port)."""
    port = free_port()
    variable = f"sage200_token__login_{port}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        connection_json(emulator, token_variable=variable, redirect_uri=f"http://127.0.0.1:{port}/callback"),
    )
    Sage200TokenProvider.clear_cache()
    return port


def stored(port: int) -> str | None:
    from airflow.models.variable import Variable

    return Variable.get(f"sage200_token__login_{port}", default_var=None)


def sage_id_redirect(consent_url: str) -> str:
    """What the browser does: open the consent URL; Sage ID (the emulator) redirects to the callback."""
    answer = requests.get(consent_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def test_callback_listens_on_loopback_only_and_serves_exactly_one_request(port, emulator):
    login = Login()
    location = sage_id_redirect(login.consent_url())
    assert listening(port) == ["127.0.0.1"]  # not 0.0.0.0, not ::
    # A browser's favicon request is answered 404 and does not use up the one request.
    assert requests.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=5).status_code == 404
    answer = requests.get(location, timeout=10)
    assert answer.status_code == 200 and "consent received" in answer.text
    login.finish()
    assert login.error is None and login.code == 0, login.out.getvalue()
    with pytest.raises(requests.ConnectionError):  # the server is gone: a second redirect cannot land
        requests.get(location, timeout=5)
    assert listeners(port) == []
    assert emulator.client.stats()["token_grants"]["authorization_code"] == 1
    assert json.loads(stored(port))["generation"] == 0


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # no traceback on timeout
def test_no_redirect_times_out_with_a_clear_message(port, emulator):
    started = time.monotonic()
    login = Login(timeout=1)
    login.finish()
    assert time.monotonic() - started < 15
    assert isinstance(login.error, Sage200AuthError)
    message = str(login.error)
    assert (
        f"No redirect from Sage ID arrived on http://127.0.0.1:{port}/callback within 1s; nothing was stored"
        in (message)
    )
    assert "--timeout" in message and "--paste" in message
    assert emulator.client.stats()["requests_by_route"].get("POST oauth/token", 0) == 0
    assert stored(port) is None
    assert listeners(port) == []  # the port is released


def test_a_non_loopback_redirect_uri_is_refused_before_listening(emulator, monkeypatch, airflow_db):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        connection_json(emulator, redirect_uri="https://airflow.example.com/sage200/oauth/callback"),
    )
    with pytest.raises(Sage200ConfigError, match=r"is not a loopback URL with a port; use --paste"):
        auth_login(CONN_ID, no_browser=True, timeout=1, out=io.StringIO())


# -- TLS hygiene --------------------------------------------------------------------------------------

INSECURE = re.compile(r"verify\s*=\s*False|CERT_NONE|OAUTHLIB_INSECURE_TRANSPORT|check_hostname\s*=\s*False")


def test_no_code_path_disables_tls_verification():
    hits = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if INSECURE.search(line)
    ]
    # The only exception: oauthlib's switch to allow plain HTTP, set inside _allow_loopback_http (loopback
    # hosts only, for one call, under a lock). Nothing else may disable verification or allow plain HTTP.
    outside = [hit for hit in hits if not hit.startswith("oauth.py:")]
    assert outside == []
    oauth = (PACKAGE / "oauth.py").read_text()
    guarded = oauth[oauth.index("def _allow_loopback_http") : oauth.index("class SageIdClient")]
    in_oauth = [hit for hit in hits if hit.startswith("oauth.py:")]
    assert in_oauth and all(hit.split(": ", 1)[1] in guarded for hit in in_oauth), in_oauth
    assert 'scheme == "https" or not is_loopback_host(' in guarded


def test_loopback_http_switch_is_not_left_on(emulator):
    import os

    from airflow_provider_sage200.oauth import _allow_loopback_http

    before = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    with _allow_loopback_http("https://id.sage.com/oauth/token"):
        assert os.environ.get("OAUTHLIB_INSECURE_TRANSPORT") == before  # https: never switched on
    with _allow_loopback_http("http://id.sage.com.evil.example/oauth/token"):
        assert os.environ.get("OAUTHLIB_INSECURE_TRANSPORT") == before  # remote http: never switched on
    with _allow_loopback_http(emulator.token_url):
        assert os.environ.get("OAUTHLIB_INSECURE_TRANSPORT") == "1"
    assert os.environ.get("OAUTHLIB_INSECURE_TRANSPORT") == before


def test_default_urls_are_https():
    for url in (DEFAULT_AUTH_URL, DEFAULT_TOKEN_URL, *API_BASE_URLS.values()):
        assert urlsplit(url).scheme == "https", url


@pytest.mark.parametrize("field", ["api_url", "auth_url", "token_url", "redirect_uri"])
@pytest.mark.parametrize(
    "host",
    ["api.columbus.sage.com", "10.0.0.5", "127.0.0.1.nip.io", "localhost.example.com", "[::ffff:8.8.8.8]"],
)
def test_plain_http_to_a_non_loopback_host_is_refused(emulator, monkeypatch, airflow_db, field, host):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(emulator, **{field: f"http://{host}:8200/x/"})
    )
    with pytest.raises(Sage200ConfigError, match=rf"field '{field}' uses plain http:// .*need https://"):
        Sage200Hook(CONN_ID).config  # noqa: B018  (validates the connection)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.8.9.10", "[::1]"])
def test_plain_http_is_accepted_for_loopback_only(emulator, monkeypatch, airflow_db, host):
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(emulator, api_url=f"http://{host}:8200/uk/x/")
    )
    assert Sage200Hook(CONN_ID).config.api_url == f"http://{host}:8200/uk/x/"
