"""Defect 2 (and the token part of 14): a malformed token Variable, or an odd answer from Sage ID, never loses
the consent.

A refresh token is spent the moment Sage ID answers. So every field the refresh path reads is checked before Sage
ID is called (against the emulator's Sage ID: its refresh-grant count must not move), and nothing after Sage ID's
answer may fail before the rotated token is stored (against a hostile Sage ID answering odd but usable JSON).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from airflow_provider_sage200.exceptions import Sage200AuthError
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.token_provider import Sage200TokenProvider
from tests.hostile.conftest import REFRESH_TOKEN, far_future_token
from tests.hostile.server import HostileServer, Reply

NAN = float("nan")
DROP = object()  # the field is removed


def store_raw(key: str, token: dict) -> None:
    """Write the Variable as a person editing it would (no check on the way in); NaN is written as JSON NaN."""
    from airflow.models.variable import Variable

    Variable.set(key, json.dumps(token))
    Sage200TokenProvider.clear_cache()


def stored(key: str) -> dict:
    from airflow.models.variable import Variable

    return json.loads(Variable.get(key))


def refresh_grants(emulator) -> int:
    return emulator.client.stats()["token_grants"]["refresh_token"]


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("generation", None, "a whole number"),
        ("generation", "3", "a whole number"),
        ("generation", 1.5, "a whole number"),
        ("generation", True, "a whole number"),
        ("expires_at", NAN, r"epoch seconds \(a number\), got nan \(not finite"),
        ("expires_at", "soon", r"epoch seconds \(a number\)"),
        ("expires_at", DROP, "is missing"),
        ("refresh_token_expires_at", float("inf"), r"epoch seconds \(a number\)"),
        ("refreshed_at", None, r"epoch seconds \(a number\)"),
        ("consented_at", "yesterday", r"epoch seconds \(a number\)"),
        ("access_token", DROP, "is missing"),
        ("access_token", 5, "a string"),
        ("refresh_token", "", "a non-empty string"),
        ("token_type", 1, "a string"),
    ],
)
def test_a_malformed_field_is_refused_before_sage_id_is_called(consented, emulator, field, value, said):
    """Before: the refresh was spent, then token_from_grant raised TypeError (generation null) before the save."""
    hook = Sage200Hook()
    key = hook.config.token_variable
    good = hook.token_store.load() | {"expires_at": int(time.time()) - 60}
    bad = {k: v for k, v in good.items() if k != field}
    if value is not DROP:
        bad[field] = value
    store_raw(key, bad)
    grants = refresh_grants(emulator)
    for attempt in (lambda: Sage200Hook().get_access_token(), lambda: Sage200Hook().refresh(force=True)):
        with pytest.raises(Sage200AuthError, match=rf"field '{field}' .*{said}") as raised:
            attempt()
        assert "sage200 auth login" in str(raised.value) and key in str(raised.value)
    assert refresh_grants(emulator) == grants  # the refresh token was not spent
    store_raw(key, good)  # fixed by hand: the consent is intact
    assert Sage200Hook().refresh().generation == good["generation"] + 1
    assert emulator.client.stats()["reuse_detected"] == 0


def test_token_check_names_a_nan_expiry(consented):
    """``sage200 token check`` on an expires_at of NaN printed a raw ValueError."""
    key = Sage200Hook().config.token_variable
    store_raw(key, Sage200Hook().token_store.load() | {"expires_at": NAN})
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_sage200.cli.main", "token", "check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        f"Variable {key!r} field 'expires_at'" in result.stderr
        and "epoch seconds (a number), got nan" in result.stderr
    )


def sage_id_answering(**fields):
    """A Sage ID whose refresh answer is a new token with ``fields`` changed (DROP removes one)."""

    def play(request):
        if request.path != "/oauth/token":
            return Reply(200, [{"id": 1}])
        answer = {
            "access_token": "new-access-token",
            "refresh_token": "new-refresh-token",
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "openid offline_access",
        }
        for name, value in fields.items():
            answer.pop(name)
            if value is not DROP:
                answer[name] = value
        return Reply(200, json.dumps(answer, allow_nan=True))

    return play


@pytest.mark.parametrize(
    ("fields", "lasts"),
    [
        ({"expires_in": "1800"}, 1800),
        ({"expires_in": "1800.5"}, 1800),
        ({"expires_in": 1800.9}, 1800),
        ({"expires_in": None}, 3600),
        ({"expires_in": DROP}, 3600),
        ({"expires_in": "soon"}, 3600),
        ({"expires_in": NAN}, 3600),
        ({"expires_in": -5}, 3600),
        ({"expires_in": True}, 3600),
        ({"token_type": DROP}, 3600),
        ({"token_type": 7}, 3600),
        ({"scope": 12}, 3600),
    ],
    ids=lambda v: json.dumps(v, default=str) if isinstance(v, dict) else str(v),
)
def test_an_odd_but_usable_answer_is_stored(connect, fields, lasts):
    """Before: ``expires_in`` of "1800.5", "soon" or NaN made oauthlib raise ValueError after the refresh token was
    spent, so the rotated one was never stored."""
    with HostileServer(sage_id_answering(**fields), max_requests=5) as sage_id:
        key = connect(sage_id, far_future_token(expires_at=int(time.time()) - 60, generation=4))
        before = time.time()
        assert Sage200Hook().get_access_token() == "new-access-token"
    token = stored(key)
    assert token["refresh_token"] == "new-refresh-token" != REFRESH_TOKEN
    assert token["generation"] == 5
    assert token["token_type"] == "Bearer"
    assert isinstance(token["expires_at"], int)
    assert before + lasts - 2 <= token["expires_at"] <= time.time() + lasts + 1
    assert len(sage_id.paths("/oauth/token")) == 1
