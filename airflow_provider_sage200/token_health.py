"""Judge a token's health against thresholds, in words a person can act on (shared by sensor and trigger)."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_sage200.token import TokenStatus, login_command


@dataclass(frozen=True)
class TokenVerdict:
    """``healthy`` plus, when not, what is wrong and whether a refresh (rather than a person) can fix it."""

    healthy: bool
    reason: str
    refresh_can_fix: bool = False


def judge(status: TokenStatus, min_access_token_ttl: float, min_refresh_token_ttl: float) -> TokenVerdict:
    """Compare ``status`` with the thresholds (seconds)."""
    login = login_command(status.conn_id)
    if not status.has_token:
        return TokenVerdict(
            False,
            f"No Sage 200 token for connection {status.conn_id!r} (Variable {status.variable!r}); run {login}.",
        )
    if status.consent_rejected is not None:
        return TokenVerdict(False, status.consent_rejected)
    refresh_left = status.refresh_token_seconds_left
    if refresh_left is not None and refresh_left <= 0:
        return TokenVerdict(
            False,
            f"The refresh token of {status.conn_id!r} expired on {status.refresh_token_expires_at}; "
            f"re-consent needed: run {login}.",
        )
    if refresh_left is not None and refresh_left < min_refresh_token_ttl:
        days = refresh_left / 86400
        return TokenVerdict(
            False,
            f"The refresh token of {status.conn_id!r} expires in {days:.1f} days on "
            f"{status.refresh_token_expires_at} (threshold {min_refresh_token_ttl / 86400:.1f} days); "
            f"re-consent before then: run {login}.",
        )
    access_left = status.access_token_seconds_left or 0
    if access_left < min_access_token_ttl:
        state = "has expired" if access_left <= 0 else f"has {access_left}s left"
        return TokenVerdict(
            False,
            f"The access token of {status.conn_id!r} {state} (needs {min_access_token_ttl:.0f}s); a refresh "
            "(Sage200RefreshTokenOperator or `sage200 token refresh`) fixes this.",
            refresh_can_fix=True,
        )
    return TokenVerdict(
        True,
        f"Token healthy: access token {access_left}s left, refresh token expires {status.refresh_token_expires_at}.",
    )
