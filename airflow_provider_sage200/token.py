"""The stored OAuth token: its Variable key, its shape and what it says about expiry.

The token is one plain JSON dict kept in an Airflow Variable::

    {"access_token": ..., "refresh_token": ..., "token_type": "Bearer",
     "expires_at": <epoch s, access token>, "refresh_token_expires_at": <epoch s, fixed at consent>,
     "consented_at": <epoch s>, "refreshed_at": <epoch s>, "generation": <int, +1 per refresh>, ...}

plus whatever else Sage ID returned (``scope``), except an ``id_token``: the API never uses it, and every secret
kept is one more that each worker must register with its log masker. ``refresh_token_expires_at`` is set once,
at consent (consent time + the lifetime chosen on Sage's credential form), and never moved by a refresh:
Sage ID refresh tokens expire at a fixed date.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

TOKEN_VARIABLE_PREFIX = "sage200_token__"
# Facts the provider adds to the stored token (no secrets); a refresh or a new consent builds a token without them.
REFRESH_REFUSED = (
    "refresh_refused"  # {"at", "message", "retry_at"}: Sage ID said "not now" to an early refresh
)
CONSENT_REJECTED = "consent_rejected"  # {"at", "error", "message"}: Sage ID rejected the grant itself
SECRET_FIELDS = ("access_token", "refresh_token", "id_token")
_NOT_STORED = ("expires_in", "expires_at", "id_token")


def token_variable_key(conn_id: str) -> str:
    """Return the default Variable key holding the tokens of connection ``conn_id``."""
    return f"{TOKEN_VARIABLE_PREFIX}{conn_id}"


def login_command(conn_id: str) -> str:
    """The command that records a new consent for ``conn_id``, quoted for a message."""
    return f"`sage200 auth login --conn-id {conn_id}`"


def token_from_grant(
    response: dict[str, Any],
    *,
    now: float,
    refresh_token_lifetime_days: int | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the stored token from a token-endpoint answer.

    :param response: the token endpoint's JSON.
    :param now: when the answer arrived (epoch seconds).
    :param refresh_token_lifetime_days: set for an authorization-code grant (a new consent); ``None`` for a
        refresh, which keeps the previous fixed expiry.
    :param previous: the token that was refreshed (keeps consent facts and a refresh token Sage omitted).
    """
    token = {k: v for k, v in response.items() if k not in _NOT_STORED}
    token["token_type"] = response.get("token_type") or "Bearer"
    token["expires_at"] = int(now + float(response.get("expires_in") or 3600))
    if previous is None or refresh_token_lifetime_days is not None:
        token["consented_at"] = int(now)
        token["refresh_token_expires_at"] = int(now + (refresh_token_lifetime_days or 90) * 86400)
        token["generation"] = 0
    else:
        for kept in ("consented_at", "refresh_token_expires_at"):
            if kept in previous:
                token[kept] = previous[kept]
        token.setdefault("refresh_token", previous.get("refresh_token"))
        token["generation"] = int(previous.get("generation", 0)) + 1
    token["refreshed_at"] = int(now)
    return token


def access_seconds_left(token: dict[str, Any], now: float | None = None) -> float:
    """Seconds until the access token expires (negative when it has)."""
    return float(token.get("expires_at", 0)) - (time.time() if now is None else now)


def refresh_seconds_left(token: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds until the refresh token's fixed expiry, or ``None`` when unknown."""
    expires = token.get("refresh_token_expires_at")
    return None if expires is None else float(expires) - (time.time() if now is None else now)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class TokenStatus:
    """What is known about a connection's tokens, without any secret (safe for logs and XCom)."""

    conn_id: str
    variable: str
    has_token: bool
    access_token_expires_at: str | None = None
    access_token_seconds_left: int | None = None
    refresh_token_expires_at: str | None = None
    refresh_token_seconds_left: int | None = None
    refreshed_at: str | None = None
    generation: int | None = None
    # Sage ID's last refusal of an early refresh of this access token ("not now"), and when to ask again.
    refresh_refused_at: str | None = None
    refresh_refused_reason: str | None = None
    refresh_retry_at: str | None = None
    # Sage ID's rejection of the grant itself (invalid_grant, invalid_client): only a new consent clears it.
    consent_rejected_at: str | None = None
    consent_rejected_error: str | None = None
    consent_rejected_reason: str | None = None

    @classmethod
    def from_token(
        cls, conn_id: str, variable: str, token: dict[str, Any] | None, now: float | None = None
    ) -> TokenStatus:
        if not token or not token.get("refresh_token"):
            return cls(conn_id=conn_id, variable=variable, has_token=False)
        now = time.time() if now is None else now
        refresh_left = refresh_seconds_left(token, now)
        return cls(
            conn_id=conn_id,
            variable=variable,
            has_token=True,
            access_token_expires_at=_iso(token.get("expires_at")),
            access_token_seconds_left=int(access_seconds_left(token, now)),
            refresh_token_expires_at=_iso(token.get("refresh_token_expires_at")),
            refresh_token_seconds_left=None if refresh_left is None else int(refresh_left),
            refreshed_at=_iso(token.get("refreshed_at")),
            generation=token.get("generation"),
            **_refusal_fields(token.get(REFRESH_REFUSED)),
            **_rejection_fields(token.get(CONSENT_REJECTED)),
        )

    @property
    def access_token_valid(self) -> bool:
        return self.has_token and (self.access_token_seconds_left or 0) > 0

    @property
    def refresh_token_valid(self) -> bool:
        return (
            self.has_token
            and self.consent_rejected_error is None
            and (self.refresh_token_seconds_left is None or self.refresh_token_seconds_left > 0)
        )

    @property
    def consent_rejected(self) -> str | None:
        """What Sage ID said when it rejected the grant, with the fix, or ``None`` while it has not."""
        if self.consent_rejected_error is None:
            return None
        return (
            f"Sage ID rejected the consent of connection {self.conn_id!r} at {self.consent_rejected_at}: "
            f"{self.consent_rejected_error} ({self.consent_rejected_reason}). Run {login_command(self.conn_id)} "
            "to consent again."
        )

    def not_refreshed_reason(self) -> str:
        """Why an asked-for refresh did not happen (the operator's ``reason``, the CLI's message)."""
        if self.refresh_refused_reason is not None:
            return (
                f"Sage ID refused an early refresh at {self.refresh_refused_at} ({self.refresh_refused_reason}); "
                f"the current access token stays in use, next attempt after {self.refresh_retry_at}."
            )
        return f"The access token is still fresh ({_span(self.access_token_seconds_left or 0)} left)."

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One human sentence per token, as the ``sage200 token check`` command prints them."""
        if not self.has_token:
            return (
                f"No Sage 200 token stored for connection {self.conn_id!r} (Variable {self.variable!r}). "
                f"Run {login_command(self.conn_id)}."
            )
        lines = []
        left = self.access_token_seconds_left or 0
        if left > 0:
            lines.append(f"Access token expires in {_span(left)}, at {self.access_token_expires_at}.")
        else:
            lines.append(f"Access token has expired (at {self.access_token_expires_at}).")
        if self.refresh_refused_reason is not None and left > 0:
            lines.append(self.not_refreshed_reason())
        if self.consent_rejected is not None:
            lines.append(self.consent_rejected)
        elif self.refresh_token_seconds_left is None:
            lines.append("Refresh token expiry is unknown.")
        elif self.refresh_token_seconds_left > 0:
            lines.append(
                f"Refresh token expires in {_span(self.refresh_token_seconds_left)}, at "
                f"{self.refresh_token_expires_at}."
            )
        else:
            lines.append(
                f"Refresh token has expired (at {self.refresh_token_expires_at}): run "
                f"{login_command(self.conn_id)}."
            )
        return "\n".join(lines)


def refresh_outcome(before: TokenStatus, after: TokenStatus) -> tuple[bool, str]:
    """Whether a refresh asked for happened (``before`` and ``after`` it), and the sentence that says so or why not."""
    if after.generation != before.generation:
        return True, "Token refreshed."
    return False, after.not_refreshed_reason()


def _refusal_fields(refusal: Any) -> dict[str, Any]:
    if not isinstance(refusal, dict):
        return {}
    return {
        "refresh_refused_at": _iso(refusal.get("at")),
        "refresh_refused_reason": refusal.get("message"),
        "refresh_retry_at": _iso(refusal.get("retry_at")),
    }


def _rejection_fields(rejection: Any) -> dict[str, Any]:
    if not isinstance(rejection, dict):
        return {}
    return {
        "consent_rejected_at": _iso(rejection.get("at")),
        "consent_rejected_error": rejection.get("error"),
        "consent_rejected_reason": rejection.get("message"),
    }


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} hours"
    if seconds >= 120:
        return f"{seconds // 60} minutes"
    return f"{seconds} seconds"
