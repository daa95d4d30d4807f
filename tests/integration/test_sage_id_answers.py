"""What Sage ID says about a grant, against the emulator: a refused early refresh is "not now", a rejected grant
is reported everywhere until a new consent."""

from __future__ import annotations

import io
import json
import time

import pytest

from airflow_provider_sage200.cli.commands import token_check, token_refresh
from airflow_provider_sage200.exceptions import Sage200AuthError, Sage200ReauthorizationRequired
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.token import REFRESH_REFUSED
from airflow_provider_sage200.token_provider import Sage200TokenProvider
from tests.conftest import CONN_ID, consent
from tests.integration.test_dags import run_dag

REFUSAL = "access_token not expired"


def shift(emulator, seconds: float) -> None:
    """Let ``seconds`` pass for Sage (the emulator's clock) and for the stored token alike."""
    emulator.client.advance_clock(seconds)
    store = Sage200Hook().token_store
    token = store.load()
    token |= {"expires_at": token["expires_at"] - seconds, "refreshed_at": token["refreshed_at"] - seconds}
    if REFRESH_REFUSED in token:
        token[REFRESH_REFUSED] = token[REFRESH_REFUSED] | {
            "retry_at": token[REFRESH_REFUSED]["retry_at"] - seconds
        }
    store.save(token)
    Sage200TokenProvider.clear_cache()  # as a fresh worker process


def refusing_sage_id(emulator, ttl: float = 900) -> None:
    """A grant with a `ttl`-second access token, then Sage ID refusing every refresh before it expires."""
    emulator.client.configure(access_token_ttl=ttl)
    Sage200Hook().refresh()
    emulator.client.configure(early_refresh_refusal_seconds=0)


def test_a_refused_early_refresh_keeps_the_token_and_waits_across_processes(consented, emulator):
    refusing_sage_id(emulator)
    shift(emulator, 700)  # 200 s left: inside the 300 s refresh margin
    before = Sage200Hook().token_store.load()
    hook = Sage200Hook()
    assert len(hook.send("sop_orders", query={"$top": 1})) == 1  # the call goes on with the current token
    stats = emulator.client.stats()
    assert stats["early_refresh_refused"] == 1
    stored = hook.token_store.load()
    assert stored["refresh_token"] == before["refresh_token"]  # not spent
    assert stored["access_token"] == before["access_token"]
    assert REFUSAL in stored[REFRESH_REFUSED]["message"]
    assert stored[REFRESH_REFUSED]["retry_at"] == pytest.approx(time.time() + 100, abs=15)  # half of 200 s
    for _ in range(3):
        hook.send("sop_orders", query={"$top": 1})
    Sage200TokenProvider.clear_cache()  # another process reads the back-off from the Variable
    Sage200Hook().send("sop_orders", query={"$top": 1})
    assert emulator.client.stats()["early_refresh_refused"] == 1

    shift(emulator, 201)  # the access token has expired: Sage ID allows the refresh
    assert len(Sage200Hook().send("sop_orders", query={"$top": 1})) == 1
    after = hook.token_store.load()
    assert after["generation"] == before["generation"] + 1 and REFRESH_REFUSED not in after
    stats = emulator.client.stats()
    assert stats["invalid_grant"] == 0 and stats["reuse_detected"] == 0


def test_a_refusal_with_an_expired_access_token_is_a_clear_error(consented, emulator):
    refusing_sage_id(emulator)
    store = Sage200Hook().token_store
    before = store.load()
    store.save(
        before | {"expires_at": int(time.time()) - 60}
    )  # long expired here, not for Sage ID: skewed clocks
    Sage200TokenProvider.clear_cache()
    with pytest.raises(Sage200AuthError, match=r"already expired.*clock") as exc:
        Sage200Hook().get_access_token()
    assert REFUSAL in str(exc.value)
    assert store.load()["refresh_token"] == before["refresh_token"]
    assert emulator.client.stats()["invalid_grant"] == 0


def test_maintenance_dag_cli_and_token_page_report_a_refusal_as_not_now(consented, emulator):
    from airflow_provider_sage200.plugins.token_page_actions import card as _card

    refusing_sage_id(emulator)  # a 15-minute token; the maintenance DAG refreshes under 30 minutes left
    results = run_dag("t_maintenance")
    state, value = results["refresh_token"]
    assert state == "success", results
    assert value["refreshed"] is False and REFUSAL in value["reason"]
    out = io.StringIO()
    assert token_refresh(CONN_ID, out=out) == 0
    assert "refused an early refresh" in out.getvalue() and REFUSAL in out.getvalue()
    assert "refused an early refresh" in _card(CONN_ID)
    stats = emulator.client.stats()
    assert stats["early_refresh_refused"] == 1  # the CLI honoured the back-off: Sage ID was not asked again
    assert stats["invalid_grant"] == 0


def test_an_export_spanning_expiries_with_refusals_fails_nothing(consented, emulator, tmp_path):
    # 400 pages at 50 ms, 4 at a time: at least 5 s, so the export outlives its 4-second token whatever the machine.
    emulator.client.configure(access_token_ttl=4, latency_ms=50)
    Sage200Hook().refresh()  # a 4-second token: refreshed under 2 s left...
    emulator.client.configure(early_refresh_refusal_seconds=1)  # ...and refused above 1 s left
    grants = emulator.client.stats()["token_grants"]["refresh_token"]
    results = run_dag("t_export_jsonl", {"output_dir": str(tmp_path)})
    assert results["export"][0] == "success", results
    ids = [json.loads(line)["id"] for line in (tmp_path / "orders.jsonl").read_text().splitlines()]
    assert ids == [r["id"] for r in emulator.client.truth("sop_orders", company_id=1)]
    stats = emulator.client.stats()
    assert stats["token_grants"]["refresh_token"] > grants
    assert stats["invalid_grant"] == 0 and stats["reuse_detected"] == 0


def test_a_dead_consent_is_reported_everywhere_until_a_new_consent(consented, emulator):
    from airflow_provider_sage200.plugins.token_page_actions import card as _card

    hook = Sage200Hook()
    secret = hook.token_store.load()["refresh_token"]
    emulator.client.advance_clock(91 * 86400)  # past the refresh token's fixed life, for Sage ID
    shift(emulator, 3600)  # and the access token expired
    with pytest.raises(Sage200ReauthorizationRequired, match="invalid_grant"):
        hook.send("sop_orders", query={"$top": 1})

    status = Sage200Hook().token_status()
    assert status.consent_rejected_error == "invalid_grant"
    assert "expired" in status.consent_rejected_reason
    assert not status.refresh_token_valid
    assert secret not in json.dumps(status.to_dict())
    out = io.StringIO()
    assert token_check(CONN_ID, out=out) == 1
    assert "invalid_grant" in out.getvalue() and "sage200 auth login --conn-id" in out.getvalue()
    assert "Refresh token expires in" not in out.getvalue()
    assert "invalid_grant" in _card(CONN_ID)
    results = run_dag("t_token_health")
    assert results["refresh_token_has_10_days"][0] == "failed", results
    assert results["refresh_token_has_10_days_deferred"][0] == "failed", results

    consent(emulator)  # a person consents again
    status = Sage200Hook().token_status()
    assert status.consent_rejected_error is None and status.refresh_token_valid
    assert token_check(CONN_ID, out=io.StringIO()) == 0
