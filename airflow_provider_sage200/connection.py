"""Validated settings of a ``sage200`` Airflow connection.

Everything a hook needs from the connection is parsed and checked here, once, before any request is
made, so a typo in the connection form surfaces as a clear :class:`Sage200ConfigError` that names the
field and what would be right.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_sage200.connection_defaults import (
    API_BASE_URLS,
    DEFAULT_AUDIENCE,
    DEFAULT_AUTH_URL,
    DEFAULT_EDITION,
    DEFAULT_REDIRECT_URI,
    DEFAULT_REFRESH_TOKEN_LIFETIME_DAYS,
    DEFAULT_SCOPE,
    DEFAULT_TOKEN_URL,
)
from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.masking import mask
from airflow_provider_sage200.token import token_variable_key

if TYPE_CHECKING:
    from airflow_provider_sage200.version_compat import Connection

__all__ = [
    "API_BASE_URLS",
    "DEFAULT_AUDIENCE",
    "DEFAULT_AUTH_URL",
    "DEFAULT_CONN_ID",
    "DEFAULT_EDITION",
    "DEFAULT_REDIRECT_URI",
    "DEFAULT_REFRESH_TOKEN_LIFETIME_DAYS",
    "DEFAULT_SCOPE",
    "DEFAULT_TOKEN_URL",
    "REDACTED",
    "Sage200ConnectionConfig",
    "check_url",
    "is_loopback_host",
]

_SITE_ID = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$")


DEFAULT_CONN_ID = "sage200_default"

# Airflow masks extra fields whose names contain "token" or "secret"; a form can save the mask itself.
REDACTED = "***"


def is_loopback_host(host: str | None) -> bool:
    """Return True for ``localhost`` and loopback IP addresses (the only hosts allowed over plain HTTP)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(field: str, url: str) -> str:
    """Require an absolute HTTPS URL, or plain HTTP on a loopback host (the emulator)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Sage200ConfigError(f"Connection field {field!r} must be an absolute https:// URL, got {url!r}.")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise Sage200ConfigError(
            f"Connection field {field!r} uses plain http:// for {parts.hostname!r}; Sage ID and Sage 200 "
            "need https:// (http:// is accepted only for 127.0.0.1/localhost, e.g. the emulator)."
        )
    return url


@dataclass(frozen=True)
class Sage200ConnectionConfig:
    """Everything the hook needs from a ``sage200`` connection, already validated.

    The client secret and the subscription key are left out of the repr and registered with the log masker
    (Airflow masks only connection fields named like a secret: ``subscription_key`` is not).
    """

    conn_id: str
    client_id: str
    client_secret: str = field(repr=False)
    edition: str
    site_id: str | None
    company_id: int | None
    api_url: str
    auth_url: str
    token_url: str
    scope: str
    audience: str
    redirect_uri: str
    subscription_key: str | None = field(repr=False)
    refresh_token_lifetime_days: int
    token_variable: str

    @classmethod
    def from_connection(cls, conn: Connection) -> Sage200ConnectionConfig:
        """Parse and validate an Airflow connection of type ``sage200``."""
        extra: dict[str, Any] = conn.extra_dejson or {}

        def opt(name: str) -> str | None:
            value = extra.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                return None
            if value == REDACTED:
                raise Sage200ConfigError(
                    f"Connection {conn_id!r} field {name!r} holds Airflow's mask '***' instead of a value (saved "
                    "from a form that showed it masked); edit the connection and enter the real value."
                )
            return str(value).strip()

        conn_id = conn.conn_id
        if not conn.login:
            raise Sage200ConfigError(
                f"Connection {conn_id!r} has no Client ID: put the Sage ID client id in the 'login' field."
            )
        if not conn.password:
            raise Sage200ConfigError(
                f"Connection {conn_id!r} has no Client Secret: put the Sage ID client secret in the "
                "'password' field."
            )
        edition = (opt("edition") or DEFAULT_EDITION).lower()
        if edition not in API_BASE_URLS:
            raise Sage200ConfigError(
                f"Connection {conn_id!r} field 'edition' is {edition!r}; use 'standard' (Sage 200 Standard) "
                "or 'professional' (Sage 200 Professional)."
            )
        site_id = opt("site_id")
        if site_id is not None and not _SITE_ID.match(site_id):
            raise Sage200ConfigError(
                f"Connection {conn_id!r} field 'site_id' is {site_id!r}; it must be the site GUID from "
                "`sage200 sites` (e.g. 2f1b8a52-3d4c-4e5f-9a6b-7c8d9e0f1a2b)."
            )
        company_raw = opt("company_id")
        company_id: int | None = None
        if company_raw is not None:
            try:
                company_id = int(company_raw)
            except ValueError:
                raise Sage200ConfigError(
                    f"Connection {conn_id!r} field 'company_id' is {company_raw!r}; it must be the integer "
                    "company id from `sage200 sites`."
                ) from None
        lifetime_raw = opt("refresh_token_lifetime_days") or str(DEFAULT_REFRESH_TOKEN_LIFETIME_DAYS)
        try:
            lifetime = int(lifetime_raw)
        except ValueError:
            lifetime = -1
        if not 1 <= lifetime <= 90:
            raise Sage200ConfigError(
                f"Connection {conn_id!r} field 'refresh_token_lifetime_days' is {lifetime_raw!r}; use the "
                "lifetime (1-90 days) chosen on the Sage 200 API credential request form."
            )
        api_url = check_url("api_url", opt("api_url") or API_BASE_URLS[edition])
        if not api_url.endswith("/"):
            api_url += "/"
        subscription_key = opt("subscription_key")
        for secret in (conn.password, subscription_key):
            mask(secret or "")
        return cls(
            conn_id=conn_id,
            client_id=conn.login,
            client_secret=conn.password,
            edition=edition,
            site_id=site_id.strip("{}") if site_id else None,
            company_id=company_id,
            api_url=api_url,
            auth_url=check_url("auth_url", opt("auth_url") or DEFAULT_AUTH_URL),
            token_url=check_url("token_url", opt("token_url") or DEFAULT_TOKEN_URL),
            scope=opt("scope") or DEFAULT_SCOPE,
            audience=opt("audience") or DEFAULT_AUDIENCE,
            redirect_uri=check_url("redirect_uri", opt("redirect_uri") or DEFAULT_REDIRECT_URI),
            subscription_key=subscription_key,
            refresh_token_lifetime_days=lifetime,
            token_variable=opt("token_variable") or token_variable_key(conn_id),
        )

    def require_site(self) -> tuple[str, int]:
        """Return ``(site_id, company_id)`` or explain how to find them."""
        if self.site_id is None or self.company_id is None:
            missing = " and ".join(
                name for name, v in (("site_id", self.site_id), ("company_id", self.company_id)) if v is None
            )
            raise Sage200ConfigError(
                f"Connection {self.conn_id!r} has no {missing}: every Sage 200 call except 'sites' needs "
                "X-Site and X-Company. Run `sage200 sites` to list the pairs this user can reach, then "
                "`sage200 sites --use <company id>` to store one."
            )
        return self.site_id, self.company_id
