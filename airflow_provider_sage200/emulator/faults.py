"""Fault injection: the fault settings, the ASGI middleware (throttling, gateway errors, latency, dropped and
truncated responses) and the mutation fault (records changing while a client pages through them).

A dropped connection is produced by starting a response with a Content-Length, sending part of the body and
then raising: uvicorn closes the socket mid-body, so the client sees a broken connection (requests raises
``ChunkedEncodingError``/``ConnectionError``), exactly as when a tunnel or proxy dies mid-response.
"""

from __future__ import annotations

import asyncio
import json
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from airflow_provider_sage200.emulator.data import Dataset, Record, iso

if TYPE_CHECKING:
    from airflow_provider_sage200.emulator.state import EmulatorState

# Every fault setting and its "off" value (``POST /_emulator/faults`` changes them, ``DELETE`` restores these).
FAULT_KEYS = {
    "rate_429": 0.0,
    "retry_after": 1.0,
    "retry_after_format": "seconds",
    "rate_5xx": 0.0,
    "status_5xx": 503,
    "rate_drop": 0.0,
    "rate_truncate": 0.0,
    "rate_html": 0.0,
    "latency_ms": 0.0,
    "slow_rate": 0.0,
    "slow_ms": 0.0,
    "down_for": 0.0,
    "script": [],
    "mutate_every": 0,
    "mutate_count": 0,
    "mutate_resource": "sop_orders",
    "targets": ["api"],
    "seed": 7,
}


class DroppedConnection(Exception):
    """Raised on purpose to make the server close the connection mid-response."""


def _target(path: str) -> str | None:
    if path.startswith("/uk/"):
        return "api"
    if path == "/oauth/token":
        return "token"
    return None


class FaultMiddleware:
    def __init__(self, app: Any, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        target = _target(scope["path"])
        latency = state.config.latency_ms + state.faults["latency_ms"]
        if target and latency:
            await asyncio.sleep(latency / 1000)
        if target is None or target not in state.faults["targets"]:
            await self.app(scope, receive, send)
            return
        action = self._choose(state)
        if action is None:
            await self.app(scope, receive, send)
            return
        state.stats["faults_injected"][str(action)] += 1
        await self._inject(action, state, send)

    def _choose(self, state: EmulatorState) -> Any:
        faults = state.faults
        if faults["script"]:
            action = faults["script"].pop(0)
            return None if action in (200, "ok") else action
        if state.down_until > state.now():
            return 503
        rng = state.rng
        for kind, rate in (
            (429, "rate_429"),
            (faults["status_5xx"], "rate_5xx"),
            ("drop", "rate_drop"),
            ("truncate", "rate_truncate"),
            ("html", "rate_html"),
            ("slow", "slow_rate"),
        ):
            if faults[rate] and rng.random() < faults[rate]:
                return kind
        return None

    async def _inject(self, action: Any, state: EmulatorState, send: Any) -> None:
        faults = state.faults
        if action == "slow":
            await asyncio.sleep(faults["slow_ms"] / 1000)
            await _respond(send, 504, {"statusCode": 504, "message": "Gateway timeout"})
        elif action == 429:
            after = faults["retry_after"]
            value = (
                formatdate(state.now() + float(after), usegmt=True)
                if faults["retry_after_format"] == "http-date"
                else str(int(after))
            )
            body = {"statusCode": 429, "message": "Rate limit is exceeded. Try again later."}
            await _respond(send, 429, body, [(b"retry-after", value.encode())])
        elif action == "html":
            page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
            await _raw(send, 502, page, b"text/html")
        elif action == "signin":
            # A Microsoft Entra application proxy with pre-authentication on answers API calls with its
            # sign-in page, status 200 (Sage 200 Professional's Native API tunnel, misconfigured).
            page = (
                b"<!DOCTYPE html><html><head><title>Sign in to your account</title></head>"
                b'<body><form action="https://login.microsoftonline.com/"></form></body></html>'
            )
            await _raw(send, 200, page, b"text/html; charset=utf-8")
        elif action == "truncate":
            await _raw(send, 200, b'[{"id": 1, "document_no": "00000', b"application/json")
        elif action == "drop":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                }
            )
            await send({"type": "http.response.body", "body": b'[{"id": 1,', "more_body": True})
            raise DroppedConnection("fault injection: connection dropped mid-response")
        else:
            await _respond(send, int(action), {"statusCode": int(action), "message": "Service unavailable"})


async def _respond(
    send: Any, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _raw(send, status, json.dumps(body).encode(), b"application/json", headers)


async def _raw(
    send: Any, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def touch(state: EmulatorState, dataset: Dataset, resource: str, record: Record, changes: Record) -> Record:
    """Store ``record`` with ``changes`` applied and ``date_time_updated`` moved to now, as an edit in Sage does."""
    changed = dict(record) | changes | {"date_time_updated": iso(state.now())}
    dataset.put(resource, changed)
    return changed


def mutate_on_page(state: EmulatorState, resource: str) -> None:
    """The mutation fault: every ``mutate_every`` pages of ``mutate_resource``, edit ``mutate_count`` random
    records in every company (a new ``date_time_updated``, and a new ``customer_document_no`` where there is one)."""
    faults = state.faults
    if not faults["mutate_every"] or resource != faults["mutate_resource"]:
        return
    state.pages_served[resource] += 1
    if state.pages_served[resource] % int(faults["mutate_every"]):
        return
    for dataset in state.datasets.values():
        top = dataset.next_id[resource] - 1
        for _ in range(int(faults["mutate_count"])):
            record = dataset.get(resource, state.rng.randint(1, top))
            if record is not None:
                changes = {}
                if "customer_document_no" in record:
                    changes["customer_document_no"] = f"PO-M{state.rng.randint(10000, 99999)}"
                touch(state, dataset, resource, record, changes)
                state.stats["faults_injected"]["mutate"] += 1
