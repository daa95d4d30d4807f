"""The REST client behind `--airflow-url`, against a stdlib HTTP stub: the requests it shapes for Airflow 2.11's
/api/v1 and 3's /api/v2, and its errors. Both run for real in tests/e2e/test_remote_consent.py (3.3 in
``make test``, 2.11's webserver and 3.0-3.2 in ``make compat``).
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_sage200.cli.remote_airflow import (
    AirflowApi,
    RemoteAirflowError,
    RemoteVariableTokenStore,
    ask_client_secret,
    check_airflow_url,
    connect,
    parse_extra_overrides,
    remote_config,
)
from airflow_provider_sage200.exceptions import Sage200AuthError, Sage200ConfigError
from airflow_provider_sage200.token import TOKEN_VARIABLE_PREFIX

PASSWORD = "s3cret-airflow-password"
TOKEN = {
    "access_token": "at-123456789",
    "refresh_token": "rt-123456789",
    "token_type": "Bearer",
    "expires_at": 4_000_000_000,
    "refresh_token_expires_at": 4_100_000_000,
    "consented_at": 3_900_000_000,
    "refreshed_at": 3_900_000_000,
    "generation": 0,
}


def redacted(value):
    """What Airflow's API does to a Variable whose key contains 'token': every string becomes '***'."""
    if isinstance(value, str):
        return "***"
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    return value


class Stub:
    """An Airflow-shaped HTTP server on loopback: answers from ``routes``, records every request."""

    def __init__(self, version: str = "v1") -> None:
        self.version = version
        self.requests: list[tuple[str, str, dict, str]] = []
        self.routes: dict[tuple[str, str], tuple[int, dict | None, dict]] = {}
        self.variables: dict[str, dict] = {}
        self.redact = True
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                stub.requests.append((self.command, self.path, dict(self.headers), body))
                status, payload, headers = stub.answer(self.command, self.path, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _handle

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, method: str, path: str, body: str) -> tuple[int, dict | None, dict]:
        if (method, path) in self.routes:
            return self.routes[(method, path)]
        api = f"/api/{self.version}"
        if method == "GET" and path == (
            {"v2": "/api/v2/monitor/health", "v1": "/api/v1/health"}.get(self.version)
        ):
            return 200, {"metadatabase": {"status": "healthy"}}, {}
        if path.startswith(f"{api}/variables"):
            key = path.rsplit("/", 1)[1]
            if method == "GET":
                if key not in self.variables:
                    return 404, {"detail": "not found"}, {}
                variable = dict(self.variables[key])
                if self.redact and "token" in key:
                    variable["value"] = json.dumps(redacted(json.loads(variable["value"])))
                return 200, variable, {}
            sent = json.loads(body)
            if method == "PATCH" and key not in self.variables:
                return 404, {"detail": "not found"}, {}
            self.variables[sent["key"]] = sent
            return (200 if method == "PATCH" else 201), None, {}
        return 404, {"detail": "no route"}, {}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    server = Stub()
    yield server
    server.close()


def v1_connection(**extra) -> dict:
    """A connection as Airflow 2.11's API returns it: no password field at all."""
    fields = {"auth_url": "https://id.sage.com/authorize", "site_id": None} | extra
    return {
        "connection_id": "sage200_default",
        "conn_type": "sage200",
        "login": "client",
        "extra": json.dumps(fields),
    }


def test_url_must_be_https_except_on_loopback():
    assert check_airflow_url("https://airflow.example.com/") == "https://airflow.example.com"
    assert check_airflow_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    with pytest.raises(Sage200ConfigError, match=r"plain http:// for 'airflow.example.com'.*Use https://"):
        check_airflow_url("http://airflow.example.com")
    with pytest.raises(Sage200ConfigError, match="no user, password"):
        check_airflow_url(f"https://admin:{PASSWORD}@airflow.example.com")
    with pytest.raises(Sage200ConfigError, match="absolute https:// URL"):
        check_airflow_url("airflow.example.com")


def test_a_v1_403_says_it_may_be_the_password(stub):
    """Airflow 2.11's API answers 403, not 401, to a wrong password (seen on its real webserver)."""
    stub.routes[("GET", "/api/v1/connections/c")] = (403, {"title": "Forbidden"}, {})
    api = AirflowApi(stub.url, username="admin", password="wrong")
    with pytest.raises(RemoteAirflowError) as refused:
        api.get_connection("c")
    assert str(refused.value) == (
        f"Reading connection 'c': GET {stub.url}/api/v1/connections/c answered HTTP 403 (a wrong user or "
        "password, or the user lacks permission to read connections: Airflow 2's API answers 403 to both)."
    )


def test_v1_basic_auth_connection_and_variable_upsert_shapes(stub):
    stub.routes[("GET", "/api/v1/connections/sage200_default")] = (200, v1_connection(), {})
    api = AirflowApi(stub.url, username="admin", password=PASSWORD)
    assert api.version == "v1"  # /api/v2/monitor/health answered 404, /api/v1/health 200
    assert PASSWORD not in repr(api)
    config = remote_config(api, "sage200_default", client_secret=lambda: "client-secret")
    assert (config.client_id, config.client_secret) == ("client", "client-secret")
    assert config.token_variable == f"{TOKEN_VARIABLE_PREFIX}sage200_default"

    store = RemoteVariableTokenStore(api, config.token_variable)
    store.save(dict(TOKEN))  # first write: PATCH answers 404, so POST creates it
    store.save(dict(TOKEN, generation=1))  # then PATCH replaces it
    store.save_raw(f"{config.token_variable}__refresh_lease", "{}", "Sage 200 token refresh lease")
    sent = [(method, path) for method, path, _, _ in stub.requests]
    key = config.token_variable
    assert sent[2:] == [
        ("GET", "/api/v1/connections/sage200_default"),
        ("PATCH", f"/api/v1/variables/{key}"),
        ("POST", "/api/v1/variables"),
        ("GET", f"/api/v1/variables/{key}"),
        ("PATCH", f"/api/v1/variables/{key}"),
        ("GET", f"/api/v1/variables/{key}"),
        ("PATCH", f"/api/v1/variables/{key}__refresh_lease"),
        ("POST", "/api/v1/variables"),
    ]
    basic = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert all(headers.get("Authorization") == basic for _, _, headers, _ in stub.requests[2:])
    assert "Authorization" not in stub.requests[0][2]  # the version probe carries no credentials
    body = json.loads(stub.requests[4][3])
    assert body == {"key": key, "value": json.dumps(TOKEN, sort_keys=True), "description": store.description}
    assert json.loads(stub.variables[key]["value"])["generation"] == 1
    assert store.load()["expires_at"] == TOKEN["expires_at"]  # strings come back as '***', numbers as written


def test_v2_trades_user_and_password_for_a_jwt_once(stub):
    stub.version = "v2"
    stub.routes[("POST", "/auth/token")] = (201, {"access_token": "jwt-abcdef"}, {})
    stub.routes[("GET", "/api/v2/connections/c")] = (200, v1_connection() | {"password": "***"}, {})
    api = AirflowApi(stub.url, username="admin", password=PASSWORD)
    asked = []
    remote_config(api, "c", client_secret=lambda: asked.append(1) or "from-prompt")
    assert asked == [1]  # the API showed '***', so the secret was asked for
    login = next(r for r in stub.requests if r[1] == "/auth/token")
    assert json.loads(login[3]) == {"username": "admin", "password": PASSWORD}
    assert stub.requests[-1][2]["Authorization"] == "Bearer jwt-abcdef"
    assert [r for r in stub.requests if PASSWORD in r[3]] == [login]  # sent once, to /auth/token only


def test_a_given_token_is_sent_as_bearer_and_a_shown_password_is_used(stub):
    stub.routes[("GET", "/api/v1/connections/c")] = (200, v1_connection() | {"password": "shown-secret"}, {})
    api = connect(stub.url, env={"SAGE200_AIRFLOW_TOKEN": "given-token"})
    config = remote_config(api, "c", client_secret=lambda: pytest.fail("asked for a shown secret"))
    assert config.client_secret == "shown-secret"
    assert stub.requests[-1][2]["Authorization"] == "Bearer given-token"


def test_status_errors_name_the_url_the_status_and_the_cause(stub):
    stub.version = "v2"
    stub.routes[("POST", "/auth/token")] = (401, {"detail": "Invalid credentials"}, {})
    with pytest.raises(RemoteAirflowError) as refused:
        AirflowApi(stub.url, username="admin", password=PASSWORD)
    assert str(refused.value) == (
        f"Could not log in to Airflow as 'admin': POST {stub.url}/auth/token answered HTTP 401 "
        "(wrong user/password or token)."
    )
    api = AirflowApi(stub.url, token="t")
    with pytest.raises(RemoteAirflowError, match=r"Connection 'missing' does not exist .* HTTP 404"):
        api.get_connection("missing")
    stub.routes[("PATCH", "/api/v2/variables/v")] = (403, {"detail": "Forbidden"}, {})
    with pytest.raises(
        RemoteAirflowError,
        match=r"PATCH .*/api/v2/variables/v answered HTTP 403 \(the user lacks Variable edit permission",
    ):
        api.set_variable("v", json.dumps(TOKEN), None)
    stub.routes[("GET", "/api/v2/variables/v")] = (401, {"detail": "expired"}, {})
    with pytest.raises(
        RemoteAirflowError,
        match=r"GET .*/api/v2/variables/v answered HTTP 401 \(wrong user/password or token\)",
    ):
        api.get_variable("v")


def test_redirects_are_not_followed_with_credentials(stub):
    elsewhere = Stub()
    try:
        stub.routes[("GET", "/api/v1/connections/c")] = (302, None, {"Location": f"{elsewhere.url}/login"})
        api = AirflowApi(stub.url, token="bearer-xyz")
        with pytest.raises(
            RemoteAirflowError, match=r"HTTP 302 redirecting to .*/login'; redirects are not followed"
        ):
            api.get_connection("c")
        assert elsewhere.requests == []
    finally:
        elsewhere.close()


def test_no_api_at_the_url_is_reported_with_what_answered(stub):
    stub.version = "none"
    with pytest.raises(
        RemoteAirflowError, match=r"No Airflow REST API answered at .*/api/v2/monitor/health: HTTP 404"
    ):
        AirflowApi(stub.url, token="t")


def test_hidden_extra_fields_must_be_given_and_only_those(stub):
    stub.routes[("GET", "/api/v1/connections/c")] = (
        200,
        v1_connection(token_url="***", token_variable="***"),
        {},
    )
    api = AirflowApi(stub.url, token="t")
    with pytest.raises(
        Sage200ConfigError, match=r"hides connection 'c' field\(s\) token_url, token_variable"
    ) as hidden:
        remote_config(api, "c", client_secret=lambda: "s")
    assert "--conn-extra token_url=VALUE --conn-extra token_variable=VALUE" in str(hidden.value)
    given = {"token_url": "https://id.example.com/oauth/token", "token_variable": "sage200_token__mine"}
    config = remote_config(api, "c", client_secret=lambda: "s", extra_overrides=given)
    assert (config.token_url, config.token_variable) == (given["token_url"], given["token_variable"])
    with pytest.raises(Sage200ConfigError, match="does not hide connection 'c' field 'auth_url'"):
        remote_config(api, "c", client_secret=lambda: "s", extra_overrides=given | {"auth_url": "https://x"})
    with pytest.raises(Sage200ConfigError, match="give FIELD=VALUE"):
        parse_extra_overrides(["token_url"])


def test_a_read_back_that_differs_is_reported(stub):
    api = AirflowApi(stub.url, token="t")
    store = RemoteVariableTokenStore(api, "sage200_token__x")
    stub.variables["sage200_token__x"] = {"key": "sage200_token__x", "value": "{}", "description": None}
    original = stub.answer

    def stale(method, path, body):  # the write "lands" elsewhere: the read-back shows another token
        status, payload, headers = original(method, path, body)
        if method == "GET" and path.endswith("sage200_token__x"):
            payload = payload | {"value": json.dumps(dict(TOKEN, expires_at=1))}
        return status, payload, headers

    stub.answer = stale
    with pytest.raises(Sage200AuthError, match="reading it back returned a different value"):
        store.save(dict(TOKEN))


def test_client_secret_from_the_environment_or_a_silent_prompt():
    assert (
        ask_client_secret("c", env={"SAGE200_CLIENT_SECRET": "env-secret"}, ask=lambda _: "x") == "env-secret"
    )
    prompts = []
    assert ask_client_secret("c", env={}, ask=lambda p: prompts.append(p) or "typed") == "typed"
    assert "client secret of connection 'c'" in prompts[0] and "SAGE200_CLIENT_SECRET" in prompts[0]
    with pytest.raises(Sage200ConfigError, match="No client secret given"):
        ask_client_secret("c", env={}, ask=lambda _: "")


def test_reading_the_token_needs_only_the_hidden_token_variable(stub):
    stub.routes[("GET", "/api/v1/connections/c")] = (200, v1_connection(token_url="***"), {})
    api = AirflowApi(stub.url, token="t")
    config = remote_config(api, "c", client_secret=lambda: "unused", for_login=False)
    assert config.token_variable == f"{TOKEN_VARIABLE_PREFIX}c"
    stub.routes[("GET", "/api/v1/connections/c")] = (200, v1_connection(token_variable="***"), {})
    with pytest.raises(Sage200ConfigError, match="--conn-extra token_variable=VALUE"):
        remote_config(api, "c", client_secret=lambda: "unused", for_login=False)


def test_the_command_checks_the_remote_options_before_anything_is_sent(capsys, monkeypatch):
    from airflow_provider_sage200.cli.main import main

    assert main(["token", "check", "--airflow-user", "admin"]) == 1
    assert "--airflow-user needs --airflow-url" in capsys.readouterr().err
    monkeypatch.setenv("SAGE200_AIRFLOW_TOKEN", "given-token")
    assert main(["auth", "login", "--airflow-url", "http://airflow.example.com"]) == 1
    assert "plain http:// for 'airflow.example.com'" in capsys.readouterr().err
    assert main(["auth", "login", "--airflow-url", "https://a.example.com", "--conn-extra", "token_url"]) == 1
    assert "give FIELD=VALUE" in capsys.readouterr().err
