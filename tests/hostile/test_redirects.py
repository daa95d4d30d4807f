"""Defects 1 and 5: redirects of every kind, on token requests and on API calls.

A second :class:`HostileServer` on 127.0.0.2 plays "another host" over plain http; the safe outcome is that it
receives nothing, the error names the Location, and the stored token is unchanged.
"""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_sage200.exceptions import Sage200ApiError, Sage200AuthError
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from tests.hostile.conftest import CLIENT_SECRET, REFRESH_TOKEN, far_future_token
from tests.hostile.server import HostileServer, Reply


def foreign_host() -> HostileServer:
    """Another host, plain http: answers everything with a token and a record, as a thief would."""
    return HostileServer(
        lambda request: Reply(200, {"access_token": "stolen", "refresh_token": "stolen", "expires_in": 3600}),
        max_requests=5,
        host="127.0.0.2",
    )


def redirecting(status: int, target: str, then=None):
    def play(request):
        if then is not None and not request.path.startswith("/redirect-me"):
            return then(request)
        return Reply(status, {"message": "moved"}, {"Location": target})

    return play


def stored(variable: str) -> dict:
    from airflow.models.variable import Variable

    return json.loads(Variable.get(variable))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_refresh_is_never_redirected(connect, status):
    """Defect 1: token_url answering a redirect to another host over http: nothing is sent there."""
    with foreign_host() as thief:
        with HostileServer(redirecting(status, f"{thief.url}/oauth/token"), max_requests=5) as sage_id:
            variable = connect(sage_id, far_future_token(expires_at=int(time.time()) - 60))
            with pytest.raises(
                Sage200AuthError, match=rf"redirect \(HTTP {status}\) to {thief.url}/oauth/token"
            ):
                Sage200Hook().get_access_token()
        assert thief.requests == []
    assert len(sage_id.requests) == 1
    assert stored(variable)["refresh_token"] == REFRESH_TOKEN  # the consent is kept


def test_a_code_exchange_is_never_redirected(connect):
    """Defect 1, exchange_code: the client secret and the code never follow a redirect."""
    with foreign_host() as thief:
        with HostileServer(redirecting(307, f"{thief.url}/oauth/token"), max_requests=5) as sage_id:
            variable = connect(sage_id)
            with pytest.raises(Sage200AuthError, match=r"redirect \(HTTP 307\)"):
                Sage200Hook().exchange_code("the-code")
        assert thief.requests == []
    assert stored(variable)["refresh_token"] == REFRESH_TOKEN


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_api_calls_never_follow_a_redirect_off_origin(connect, method, status):
    """Defect 5: the subscription key, X-Site/X-Company and the bearer token never reach another origin."""
    with foreign_host() as thief:
        with HostileServer(redirecting(status, f"{thief.url}/api/customers"), max_requests=5) as sage:
            connect(sage, subscription_key="hostile-subscription-key")
            with pytest.raises(
                Sage200ApiError, match=rf"redirect \(HTTP {status}\) to {thief.url}/api/customers"
            ):
                Sage200Hook().send("customers", method, json={"reference": "X"} if method == "POST" else None)
        assert thief.requests == []
    assert [r.method for r in sage.requests] == [method]  # one request, never repeated as a GET


def test_a_write_is_never_turned_into_a_get_even_on_the_same_origin(connect):
    """Defect 5: a POST answered 302 to the same origin fails; it is not re-sent as a GET."""

    def play(request):
        if request.path == "/api/customers":
            return Reply(302, {}, {"Location": "/api/customers/1"})
        return Reply(200, {"id": 1})

    with HostileServer(play, max_requests=5) as sage:
        connect(sage)
        with pytest.raises(Sage200ApiError, match=r"redirect \(HTTP 302\)"):
            Sage200Hook().send("customers", "POST", json={"reference": "X"})
    assert [(r.method, r.path) for r in sage.requests] == [("POST", "/api/customers")]


def test_a_read_follows_a_redirect_on_the_same_origin(connect):
    """A GET redirected within the same origin (a gateway normalising a path) is still followed."""

    def play(request):
        if request.path == "/api/sites":
            return Reply(301, {}, {"Location": "/api/sites/"})
        return Reply(200, [{"site_id": "s", "company_id": 1}])

    with HostileServer(play, max_requests=5) as sage:
        connect(sage)
        assert Sage200Hook().get_sites() == [{"site_id": "s", "company_id": 1}]
    assert [r.path for r in sage.requests] == ["/api/sites", "/api/sites/"]


def test_the_client_secret_is_not_in_the_error(connect):
    with (
        foreign_host() as thief,
        HostileServer(redirecting(307, f"{thief.url}/oauth/token"), max_requests=5) as sage_id,
    ):
        connect(sage_id, far_future_token(expires_at=int(time.time()) - 60))
        with pytest.raises(Sage200AuthError) as raised:
            Sage200Hook().get_access_token()
    assert CLIENT_SECRET not in str(raised.value) and REFRESH_TOKEN not in str(raised.value)
