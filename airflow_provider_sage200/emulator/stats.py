"""Request statistics: the counters the control plane reports, and the middleware that fills them."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_sage200.emulator.state import EmulatorState

_ID = re.compile(r"^\d+$")


def new_stats() -> dict[str, Any]:
    return {
        "requests": Counter(),
        "requests_by_route": Counter(),
        "token_grants": Counter({"authorization_code": 0, "refresh_token": 0}),
        "invalid_grant": 0,
        "invalid_client": 0,
        "families_revoked": 0,
        "reuse_detected": 0,
        "early_refresh_refused": 0,
        "faults_injected": Counter(),
        "writes": Counter(),
        "created_ids": defaultdict(list),
    }


def route_label(method: str, path: str) -> str | None:
    if path == "/oauth/token":
        return f"{method} oauth/token"
    match = re.match(r"^/uk/[^/]+/accounts/v1/(.*)$", path)
    if not match:
        return None
    segments = ["{id}" if _ID.match(s) else s for s in match.group(1).strip("/").split("/")]
    return f"{method} {'/'.join(segments)}"


class StatsMiddleware:
    """Counts every API and token request by status and by route (faults included)."""

    def __init__(self, app: Any, state: EmulatorState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        label = (
            route_label(scope.get("method", ""), scope.get("path", "")) if scope["type"] == "http" else None
        )
        if label is None:
            await self.app(scope, receive, send)
            return
        self.state.stats["requests_by_route"][label] += 1

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.state.stats["requests"][str(message["status"])] += 1
            await send(message)

        await self.app(scope, receive, counting_send)
