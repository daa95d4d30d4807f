"""Sage200TokenTrigger's events, with the token Variable's contents given directly (no metadata DB)."""

from __future__ import annotations

import asyncio
import importlib
import time

import pytest

from airflow_provider_sage200.exceptions import Sage200AuthError
from airflow_provider_sage200.token_store import VariableTokenStore
from airflow_provider_sage200.triggers.sage200 import Sage200TokenTrigger

DAY = 86400


def trigger(**overrides) -> Sage200TokenTrigger:
    kwargs = {
        "sage200_conn_id": "sage200_default",
        "token_variable": "sage200_token__sage200_default",
        "min_access_token_ttl": 300.0,
        "min_refresh_token_ttl": 10 * DAY,
        "poke_interval": 0.01,
        "end_time": time.time() + 60,
    } | overrides
    return Sage200TokenTrigger(**kwargs)


def stored(monkeypatch, token=None, error: Exception | None = None) -> None:
    def load(self):
        if error is not None:
            raise error
        return token

    monkeypatch.setattr(VariableTokenStore, "load", load)


def token(access_left: float, refresh_left: float = 60 * DAY) -> dict:
    now = time.time()
    return {
        "access_token": "at",
        "refresh_token": "rt",
        "expires_at": now + access_left,
        "refresh_token_expires_at": now + refresh_left,
        "refreshed_at": now - 60,
        "generation": 3,
    }


def first_event(t: Sage200TokenTrigger) -> dict:
    async def run():
        async for event in t.run():
            return event.payload

    return asyncio.run(asyncio.wait_for(run(), timeout=10))


def test_serialize_round_trips():
    original = trigger()
    path, kwargs = original.serialize()
    module, _, name = path.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (path, kwargs)


def test_healthy_token_fires_success(monkeypatch):
    stored(monkeypatch, token(access_left=3600))
    event = first_event(trigger())
    assert event["status"] == "success" and "healthy" in event["message"]


def test_short_access_token_fires_refresh_needed(monkeypatch):
    stored(monkeypatch, token(access_left=10))
    event = first_event(trigger())
    assert event["status"] == "refresh_needed" and "s left" in event["message"]


def test_expiring_refresh_token_times_out_with_the_reason(monkeypatch):
    stored(monkeypatch, token(access_left=3600, refresh_left=2 * DAY))
    event = first_event(trigger(end_time=time.time() + 0.05))
    assert event["status"] == "timeout" and "expires in" in event["message"]


def test_unreadable_token_fires_an_error_event(monkeypatch):
    stored(monkeypatch, error=Sage200AuthError("Variable 'x' does not hold JSON."))
    event = first_event(trigger())
    assert event == {"status": "error", "message": "Variable 'x' does not hold JSON."}


@pytest.mark.parametrize("error", ["invalid_grant"])
def test_rejected_consent_is_never_healthy(monkeypatch, error):
    stored(
        monkeypatch, token(access_left=3600) | {"consent_rejected": {"at": 1, "error": error, "message": "m"}}
    )
    event = first_event(trigger(end_time=time.time() + 0.05))
    assert event["status"] == "timeout" and error in event["message"]
