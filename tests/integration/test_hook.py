"""Sage200Hook against the running emulator, over HTTP."""

from __future__ import annotations

import time

import pytest

from airflow_provider_sage200.exceptions import (
    Sage200AuthError,
    Sage200ClientError,
    Sage200ConfigError,
    Sage200ReauthorizationRequired,
    Sage200ServerError,
)
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.token_provider import Sage200TokenProvider
from tests.conftest import consent


def test_consent_stores_token_with_fixed_refresh_expiry(sage200_conn, emulator):
    status = consent(emulator)
    assert status.has_token
    assert 89 * 86400 < status.refresh_token_seconds_left <= 90 * 86400
    token = Sage200Hook().token_store.load()
    assert token["token_type"] == "Bearer" and token["generation"] == 0
    assert emulator.client.stats()["token_grants"]["authorization_code"] == 1


def test_sites_need_no_site_headers(consented):
    sites = Sage200Hook().get_sites()
    assert {"site_id", "site_name", "company_id", "company_name"} <= set(sites[0])


def test_send_and_paginate_read_exactly_the_collection(consented, emulator):
    hook = Sage200Hook()
    truth = [r["id"] for r in emulator.client.truth("sop_orders", company_id=1)]
    ids = [r["id"] for r in hook.paginate("sop_orders", {"$select": "id"}, page_size=300)]
    assert ids == truth and len(truth) == 20_000
    first = hook.send("sop_orders", query={"$top": 2, "$orderby": "id"})
    assert isinstance(first, list) and len(first) == 2
    assert hook.send(f"sop_orders/{first[0]['id']}")["id"] == first[0]["id"]


def test_many_calls_within_a_token_life_cost_no_refresh(consented, emulator):
    hook = Sage200Hook()
    for _ in range(20):
        hook.send("sop_orders", query={"$top": 1})
    assert emulator.client.stats()["token_grants"].get("refresh_token", 0) == 0


def test_expired_access_token_is_refreshed_once_and_rotated(consented, emulator):
    hook = Sage200Hook()
    old = hook.token_store.load()
    emulator.client.advance_clock(3700)  # the emulator's access tokens now expired
    token = dict(old, expires_at=time.time() - 5)
    hook.token_store.save(token)
    Sage200TokenProvider.clear_cache()
    for _ in range(5):
        hook.send("sop_orders", query={"$top": 1})
    new = hook.token_store.load()
    assert new["refresh_token"] != old["refresh_token"]
    assert new["generation"] == 1
    assert new["refresh_token_expires_at"] == old["refresh_token_expires_at"]  # fixed expiry does not move
    stats = emulator.client.stats()
    assert stats["token_grants"]["refresh_token"] == 1
    assert stats.get("invalid_grant", 0) == 0


def test_401_triggers_one_refresh_and_retry(consented, emulator):
    hook = Sage200Hook()
    hook.send("sop_orders", query={"$top": 1})
    emulator.client.advance_clock(3700)  # server-side expiry the client does not know about
    assert len(hook.send("sop_orders", query={"$top": 1})) == 1
    assert emulator.client.stats()["token_grants"]["refresh_token"] == 1


def test_invalid_grant_without_newer_token_asks_for_consent(consented, emulator):
    hook = Sage200Hook()
    token = hook.token_store.load()
    hook.refresh()  # rotates: the stored refresh token changes
    hook.token_store.save(token | {"expires_at": 0})  # put the spent one back, as a stale writer would
    Sage200TokenProvider.clear_cache()
    with pytest.raises(Sage200ReauthorizationRequired, match="sage200 auth login"):
        hook.get_access_token()


def test_refresh_token_past_fixed_expiry_is_not_sent(consented, emulator):
    hook = Sage200Hook()
    token = hook.token_store.load()
    hook.token_store.save(token | {"expires_at": 0, "refresh_token_expires_at": int(time.time()) - 1})
    Sage200TokenProvider.clear_cache()
    with pytest.raises(Sage200ReauthorizationRequired, match="fixed expiry"):
        hook.get_access_token()
    assert emulator.client.stats()["token_grants"].get("refresh_token", 0) == 0


def test_400_carries_sage_message_and_is_not_retried(consented, emulator):
    hook = Sage200Hook()
    with pytest.raises(Sage200ClientError) as exc:
        hook.send("sop_orders", query={"$filter": "no_such_field eq 1"})
    assert exc.value.status_code == 400
    assert "no_such_field" in str(exc.value)
    assert emulator.client.stats()["requests"].get("400") == 1


def test_bad_query_fails_before_any_request(consented, emulator):
    before = sum(emulator.client.stats()["requests"].values())
    with pytest.raises(Sage200ConfigError, match="at most 5000"):
        Sage200Hook().send("sop_orders", query={"$top": 6000})
    assert sum(emulator.client.stats()["requests"].values()) == before


def test_get_retries_429_and_503(consented, emulator):
    emulator.client.set_faults(script=[429, 503, 502])
    assert len(Sage200Hook().send("sop_orders", query={"$top": 3})) == 3
    assert emulator.client.stats()["requests"].get("429") == 1


def test_post_is_not_repeated_after_a_503(consented, emulator):
    emulator.client.set_faults(script=[503])
    with pytest.raises(Sage200ServerError, match=r"503"):
        Sage200Hook().send("customers", "POST", json={"reference": "NEW0001", "name": "New Ltd"})
    stats = emulator.client.stats()
    assert stats["requests_by_route"].get("POST customers") == 1
    assert stats["writes"].get("POST", 0) == 0


def test_test_connection_is_read_only(consented, emulator):
    ok, message = Sage200Hook().test_connection()
    assert ok, message
    assert emulator.client.stats()["token_grants"].get("refresh_token", 0) == 0


def test_a_waiter_takes_the_token_another_worker_stored_even_inside_the_margin(consented, emulator):
    """Found by the 10-minute soak: with 5-second tokens a new token is already inside the refresh margin by the
    time others can read it; waiters that held out for one outside the margin refreshed in turn and starved."""
    import threading

    from airflow_provider_sage200.refresh import _host_lock

    hook = Sage200Hook()
    now = time.time()
    seen = dict(hook.token_store.load(), expires_at=now - 1, refreshed_at=now - 21)  # a 20 s token, expired
    hook.token_store.save(seen)
    Sage200TokenProvider.clear_cache()
    grants_before = emulator.client.stats()["token_grants"]["refresh_token"]
    got: list[str] = []
    with _host_lock(hook.config.token_variable, 30, lambda: False, 1.0):  # another worker is refreshing
        waiter = threading.Thread(target=lambda: got.append(hook.get_access_token()))
        waiter.start()
        time.sleep(1.0)
        assert waiter.is_alive()
        # It stores a token with 8 s of 20 left: inside the margin (half the life, 10 s) but usable.
        issued = time.time() - 12
        hook.token_store.save(
            dict(seen, access_token="at-from-another-worker", refreshed_at=issued, expires_at=issued + 20)
        )
        waiter.join(timeout=5)
        assert not waiter.is_alive()
    assert got == ["at-from-another-worker"]
    assert emulator.client.stats()["token_grants"]["refresh_token"] == grants_before


def test_a_tenant_requiring_a_subscription_key_gets_it_on_every_path(consented, emulator, monkeypatch):
    """request() and test_connection build their headers in one place: both send ocp-apim-subscription-key."""
    import json as jsonlib

    from tests.conftest import CONN_ID, connection_json

    emulator.client.configure(require_subscription_key=True)
    variable = Sage200Hook().config.token_variable
    conn = jsonlib.loads(connection_json(emulator, token_variable=variable, subscription_key="wrong-key"))
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", jsonlib.dumps(conn))
    ok, message = Sage200Hook().test_connection()
    assert not ok and "subscription key" in message
    with pytest.raises(Sage200AuthError, match="subscription key"):
        Sage200Hook().send("sop_orders", query={"$top": 1})

    conn["extra"]["subscription_key"] = "emulator-subscription-key"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", jsonlib.dumps(conn))
    ok, message = Sage200Hook().test_connection()
    assert ok, message
    assert len(Sage200Hook().send("sop_orders", query={"$top": 1})) == 1
    assert len(Sage200Hook().get_sites()) == len(emulator.client.sites())


def test_an_unsupported_method_is_refused_before_anything_is_sent(consented, emulator):
    before = sum(emulator.client.stats()["requests"].values())
    with pytest.raises(Sage200ConfigError, match="PATCH"):
        Sage200Hook().send("customers/1", "PATCH", json={"name": "x"})
    assert sum(emulator.client.stats()["requests"].values()) == before


SCRIPT = """
import json, sys
import requests
from urllib.parse import parse_qs, urlsplit
from airflow_provider_sage200.hooks.sage200 import Sage200Hook

hook = Sage200Hook(sys.argv[1])
answer = requests.get(hook.authorization_url("s"), allow_redirects=False, timeout=10)
hook.exchange_code(parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0])
print(json.dumps({"sites": len(hook.get_sites()), "orders": len(hook.send("sop_orders", query={"$top": 3}))}))
"""


def test_hook_works_from_a_plain_script_with_a_metastore_connection(emulator, airflow_db, tmp_path):
    """A script or notebook (no task, no env var) reads the connection from the metastore, as the CLI does."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import connection_json

    conn_id = f"sage200_script_{os.urandom(3).hex()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "_AIRFLOW_PROCESS"))}
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "connections",
            "add",
            conn_id,
            "--conn-json",
            connection_json(emulator),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    script = tmp_path / "notebook.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), conn_id], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {"sites": 3, "orders": 3}
