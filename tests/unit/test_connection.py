from __future__ import annotations

import json

import pytest

from airflow_provider_sage200.connection import API_BASE_URLS, Sage200ConnectionConfig
from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.version_compat import Connection

SITE = "2f1b8a52-3d4c-4e5f-9a6b-7c8d9e0f1a2b"


def conn(login="client", password="secret", **extra) -> Connection:
    return Connection(
        conn_id="sage", conn_type="sage200", login=login, password=password, extra=json.dumps(extra)
    )


def test_defaults_follow_sage_documentation():
    config = Sage200ConnectionConfig.from_connection(conn(site_id=SITE, company_id="3"))
    assert config.edition == "professional"
    assert config.api_url == API_BASE_URLS["professional"]
    assert config.auth_url == "https://id.sage.com/authorize"
    assert config.token_url == "https://id.sage.com/oauth/token"
    assert config.scope == "openid profile email offline_access"
    assert config.audience == "s200ukipd/sage200"
    assert config.company_id == 3
    assert config.refresh_token_lifetime_days == 90
    assert config.token_variable == "sage200_token__sage"
    assert config.subscription_key is None


def test_standard_edition_and_overrides():
    config = Sage200ConnectionConfig.from_connection(
        conn(edition="standard", api_url="http://127.0.0.1:8200/uk/sage200/accounts/v1", token_variable="tok")
    )
    assert config.api_url == "http://127.0.0.1:8200/uk/sage200/accounts/v1/"
    assert config.token_variable == "tok"
    assert (
        Sage200ConnectionConfig.from_connection(conn(edition="standard")).api_url == API_BASE_URLS["standard"]
    )


@pytest.mark.parametrize(
    ("connection", "message"),
    [
        pytest.param(conn(login=None), "no Client ID", id="no-client-id"),
        pytest.param(conn(password=None), "no Client Secret", id="no-client-secret"),
        pytest.param(conn(edition="enterprise"), "'standard'.*'professional'", id="unknown-edition"),
        pytest.param(conn(company_id="one"), "integer company id", id="company-not-int"),
        pytest.param(conn(site_id="site-1"), "site GUID", id="malformed-site"),
        pytest.param(conn(api_url="http://sage.example.com/v1/"), "need https://", id="plain-http-remote"),
        pytest.param(conn(token_url="ftp://id.sage.com/token"), "absolute https:// URL", id="not-http"),
        pytest.param(conn(refresh_token_lifetime_days="120"), "1-90 days", id="lifetime"),
        pytest.param(conn(token_url="***"), r"'token_url' holds Airflow's mask", id="saved-mask"),
    ],
)
def test_bad_connections_fail_with_the_field_named(connection, message):
    with pytest.raises(Sage200ConfigError, match=message):
        Sage200ConnectionConfig.from_connection(connection)


def test_require_site_explains_how_to_find_it():
    config = Sage200ConnectionConfig.from_connection(conn(site_id=SITE))
    with pytest.raises(Sage200ConfigError, match=r"company_id.*sage200 sites"):
        config.require_site()
