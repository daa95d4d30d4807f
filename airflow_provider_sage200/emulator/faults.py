"""Fault injection as ASGI middleware: throttling, gateway errors, latency, dropped and truncated responses.

A dropped connection is produced by starting a response with a Content-Length, sending part of the body and
then raising: uvicorn closes the socket mid-body, so the client sees a broken connection (requests raises
``ChunkedEncodingError``/``ConnectionError``), exactly as when a tunnel or proxy dies mid-response.
"""

from __future__ import annotations

import asyncio
import json
from email.utils import formatdate
from typing import Any

from airflow_provider_sage200.emulator.state import EmulatorState


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
