"""Every knob of the emulator, as one JSON round-trippable dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SITE_A = "5b0c4d1e-7a3f-4c2b-9e8d-1f2a3b4c5d6e"
SITE_B = "8e7d6c5b-4a39-4281-b7c6-d5e4f3a2b1c0"


def _default_sites() -> list[dict[str, Any]]:
    return [
        {"site_id": SITE_A, "site_name": "Demo Site", "site_short_name": "DEMO", "company_id": 1,
         "company_name": "Demo Company Ltd"},
        {"site_id": SITE_A, "site_name": "Demo Site", "site_short_name": "DEMO", "company_id": 2,
         "company_name": "Demo Trading Ltd"},
        {"site_id": SITE_B, "site_name": "Dublin", "site_short_name": "DUB", "company_id": 3,
         "company_name": "Northwind (IE) Ltd"},
    ]  # fmt: skip


@dataclass
class EmulatorConfig:
    """Knobs of the emulated Sage ID and Sage 200 API (see docs/emulator.md)."""

    client_id: str = "emulator-client"
    client_secret: str = "emulator-secret"
    redirect_uris: list[str] = field(
        default_factory=lambda: ["http://127.0.0.1:8765/callback", "http://localhost:8765/callback"]
    )
    allow_loopback_redirect_any_port: bool = True
    audience: str = "s200ukipd/sage200"
    consent: str = "allow"
    access_token_ttl: float = 3600.0
    auth_code_ttl: float = 60.0
    refresh_token_lifetime_days: float = 90.0
    reuse_grace: float = 0.0
    reuse_detection: bool = True
    # Sage ID refusing an early refresh: while the grant's newest access token has more than this many seconds
    # left, a refresh is answered with HTTP early_refresh_refusal_status and "Rate limit exceeded: access_token
    # not expired" (the refresh token stays valid). None, the default, allows every refresh.
    early_refresh_refusal_seconds: float | None = None
    early_refresh_refusal_status: int = 429
    allow_basic_client_auth: bool = True
    require_pkce: bool = False
    error_style: str = "backend"
    require_subscription_key: bool = False
    subscription_key: str = "emulator-subscription-key"
    sop_orders: int = 1000
    customers: int = 200
    products: int = 300
    warehouses: int = 5
    # Records per company of every other catalogue resource (airflow_provider_sage200/emulator/catalogue.py).
    catalogue_records: int = 25
    seed: int = 42
    history_days: float = 30.0
    data_end: str | None = None
    latency_ms: float = 0.0
    # Generated records kept in memory (about 2 KB each); the benchmark keeps its whole dataset to stay fast.
    record_cache: int = 50_000
    max_top: int = 5000
    default_top: int = 500
    top_over_max: str = "error"
    header_check: str = "strict"
    # The tenant's edition ("standard" or "professional"): calls under the other edition's path answer 404, as
    # on a real tenant. None serves both paths.
    tenant_edition: str | None = None
    # False: the Sage ID user is not enabled for API access in Sage 200 (Standard enables users one by one), so
    # every API call answers 401 even with a valid, freshly refreshed token.
    user_api_enabled: bool = True
    sites: list[dict[str, Any]] = field(default_factory=_default_sites)
    user_sites: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmulatorConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown emulator settings: {sorted(unknown)}")
        return cls(**data)

    def reachable_sites(self) -> list[dict[str, Any]]:
        if self.user_sites is None:
            return list(self.sites)
        return [s for s in self.sites if s["company_id"] in self.user_sites]
