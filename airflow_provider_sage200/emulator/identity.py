"""Sage ID state: authorization codes, token families, rotation, reuse detection and absolute expiry.

Modelled on Auth0 refresh-token rotation, which Sage ID is built on: every refresh returns a new refresh token
and invalidates the one presented (after an optional reuse grace); presenting an invalidated one again is
treated as theft and revokes the whole family, access tokens included; a family dies at a fixed date counted
from consent, which refreshing does not move.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_sage200.emulator.config import EmulatorConfig

# What Sage ID says when asked to refresh a grant whose access token is still valid (seen in the wild; hotglue's
# target-sage-200 matches this text).
EARLY_REFRESH_REFUSAL = "Rate limit exceeded: access_token not expired"


class OAuthError(Exception):
    """An RFC 6749 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass
class AuthCode:
    code: str
    redirect_uri: str
    expires_at: float
    code_challenge: str | None
    challenge_method: str | None
    used: bool = False
    family: str | None = None


@dataclass
class Family:
    id: str
    expires_at: float
    current_refresh: str
    previous_refresh: str | None = None
    rotated_at: float = 0.0
    revoked: bool = False
    access_tokens: list[str] = field(default_factory=list)
    current_pair: dict[str, Any] = field(default_factory=dict)


class Identity:
    """Everything Sage ID remembers."""

    def __init__(self, config: EmulatorConfig, stats: dict[str, Any]) -> None:
        self.config = config
        self.stats = stats
        self.codes: dict[str, AuthCode] = {}
        self.families: dict[str, Family] = {}
        self.refresh_index: dict[str, str] = {}  # refresh token -> family id (current and spent ones)
        self.access: dict[str, tuple[str, float]] = {}  # access token -> (family id, expires_at)
        self.issued: dict[str, list[str]] = {"access_tokens": [], "refresh_tokens": [], "auth_codes": []}

    # -- authorize -----------------------------------------------------------------------------------

    def redirect_allowed(self, redirect_uri: str) -> bool:
        if redirect_uri in self.config.redirect_uris:
            return True
        if not self.config.allow_loopback_redirect_any_port:
            return False
        from urllib.parse import urlsplit

        parts = urlsplit(redirect_uri)
        return (
            parts.scheme == "http"
            and parts.hostname in ("127.0.0.1", "localhost")
            and parts.path in ("/callback", "/sage200/oauth/callback")
        )

    def issue_code(self, redirect_uri: str, now: float, challenge: str | None, method: str | None) -> str:
        code = "ac_" + secrets.token_urlsafe(24)
        self.codes[code] = AuthCode(code, redirect_uri, now + self.config.auth_code_ttl, challenge, method)
        self.issued["auth_codes"].append(code)
        return code

    # -- token endpoint ------------------------------------------------------------------------------

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        if client_id != self.config.client_id or client_secret != self.config.client_secret:
            self.stats["invalid_client"] += 1
            raise OAuthError(
                "invalid_client", "Client authentication failed (unknown client or wrong secret).", 401
            )

    def grant_code(self, form: dict[str, str], now: float) -> dict[str, Any]:
        code = self.codes.get(form.get("code", ""))
        if code is None or code.expires_at < now:
            raise OAuthError("invalid_grant", "Invalid or expired authorization code.")
        if code.used:
            # RFC 6749 10.5: a reused code revokes what it issued.
            if code.family:
                self.revoke(code.family)
            raise OAuthError("invalid_grant", "Authorization code has already been used.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the one used to obtain the code.")
        if code.code_challenge:
            verifier = form.get("code_verifier")
            if not verifier:
                raise OAuthError("invalid_grant", "code_verifier is required (PKCE).")
            if code.challenge_method == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            else:
                computed = verifier
            if not secrets.compare_digest(computed, code.code_challenge):
                raise OAuthError("invalid_grant", "PKCE verification failed.")
        elif self.config.require_pkce:
            raise OAuthError("invalid_request", "PKCE is required.")
        code.used = True
        family = Family(
            id=secrets.token_hex(8),
            expires_at=now + self.config.refresh_token_lifetime_days * 86400,
            current_refresh="",
        )
        self.families[family.id] = family
        code.family = family.id
        self.stats["token_grants"]["authorization_code"] += 1
        return self._issue(family, now)

    def grant_refresh(self, form: dict[str, str], now: float) -> dict[str, Any]:
        presented = form.get("refresh_token")
        if not presented:
            raise OAuthError("invalid_request", "refresh_token is required.")
        family_id = self.refresh_index.get(presented)
        family = self.families.get(family_id or "")
        if family is None:
            raise OAuthError("invalid_grant", "Unknown refresh token.")
        if family.revoked:
            raise OAuthError("invalid_grant", "Refresh token has been revoked.")
        if family.expires_at <= now:
            raise OAuthError("invalid_grant", "Refresh token has expired.")
        if presented != family.current_refresh:
            in_grace = (
                presented == family.previous_refresh and now - family.rotated_at <= self.config.reuse_grace
            )
            if in_grace:
                self.stats["token_grants"]["refresh_token"] += 1
                return dict(family.current_pair)
            self.stats["reuse_detected"] += 1
            if self.config.reuse_detection:
                self.revoke(family.id)
            raise OAuthError("invalid_grant", "Refresh token has already been used (reuse detected).")
        if self.refuses_early_refresh(family, now):
            self.stats["early_refresh_refused"] += 1
            raise OAuthError(
                "too_many_requests", EARLY_REFRESH_REFUSAL, self.config.early_refresh_refusal_status
            )
        self.stats["token_grants"]["refresh_token"] += 1
        family.previous_refresh, family.rotated_at = presented, now
        return self._issue(family, now)

    def refuses_early_refresh(self, family: Family, now: float) -> bool:
        """With ``early_refresh_refusal_seconds`` set: the newest access token has more than that left."""
        threshold = self.config.early_refresh_refusal_seconds
        if threshold is None or not family.access_tokens:
            return False
        _, expires_at = self.access[family.access_tokens[-1]]
        return expires_at - now > threshold

    def _issue(self, family: Family, now: float) -> dict[str, Any]:
        access = "at_" + secrets.token_urlsafe(48)
        refresh = "rt_" + secrets.token_urlsafe(48)
        family.current_refresh = refresh
        family.access_tokens.append(access)
        self.refresh_index[refresh] = family.id
        self.access[access] = (family.id, now + self.config.access_token_ttl)
        self.issued["access_tokens"].append(access)
        self.issued["refresh_tokens"].append(refresh)
        family.current_pair = {
            "access_token": access,
            "refresh_token": refresh,
            "id_token": "idt_" + secrets.token_urlsafe(24),
            "scope": "openid profile email offline_access",
            "expires_in": int(self.config.access_token_ttl),
            "token_type": "Bearer",
        }
        return dict(family.current_pair)

    def revoke(self, family_id: str) -> None:
        family = self.families[family_id]
        if not family.revoked:
            family.revoked = True
            self.stats["families_revoked"] += 1

    def access_valid(self, token: str, now: float) -> bool:
        entry = self.access.get(token)
        if entry is None:
            return False
        family_id, expires_at = entry
        return expires_at > now and not self.families[family_id].revoked
