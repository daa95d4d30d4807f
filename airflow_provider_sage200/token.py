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

import math
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_provider_sage200.exceptions import Sage200AuthError

TOKEN_VARIABLE_PREFIX = "sage200_token__"
# Facts the provider adds to the stored token (no secrets); a refresh or a new consent builds a token without them.
REFRESH_REFUSED = (
    "refresh_refused"  # {"at", "message", "retry_at"}: Sage ID said "not now" to an early refresh
)
CONSENT_REJECTED = "consent_rejected"  # {"at", "error", "message"}: Sage ID rejected the grant itself
SECRET_FIELDS = ("access_token", "refresh_token", "id_token")
_NOT_STORED = ("expires_in", "expires_at", "id_token")
_EPOCH_BOUND = 10**11
DEFAULT_ACCESS_LIFETIME = 3600  # seconds, when Sage ID's answer gives no usable expires_in


# What the refresh path reads from the stored token; checked before Sage ID is called, because the refresh token
# is spent the moment Sage ID answers and a field failing after that loses the rotated one.
_REQUIRED_TEXT = ("access_token",)
_REQUIRED_EPOCHS = ("expires_at",)
_OPTIONAL_EPOCHS = ("refresh_token_expires_at", "consented_at", "refreshed_at")
_OPTIONAL_TEXT = ("token_type",)


def check_token(token: Any, variable: str) -> dict[str, Any]:
    """Return ``token`` (a stored token read from Variable ``variable``) when every field the refresh path uses
    has the right type, else raise :class:`Sage200AuthError` naming the field and what would be right."""
    if not isinstance(token, dict) or not isinstance(token.get("refresh_token"), str):
        raise Sage200AuthError(
            f"Variable {variable!r} does not hold a Sage 200 token (a JSON object with a string "
            "'refresh_token'). Run `sage200 auth login` to replace it."
        )

    def refuse(field: str, problem: str) -> Sage200AuthError:
        return Sage200AuthError(
            f"Variable {variable!r} field {field!r} {problem}. Nothing was sent to Sage ID (the refresh token is "
            "unspent): correct the field in the Variable, or run `sage200 auth login` to replace the token."
        )

    if not token["refresh_token"]:
        raise refuse("refresh_token", "must be a non-empty string, got ''")
    for field in (*_REQUIRED_TEXT, *_REQUIRED_EPOCHS):
        if field not in token:
            raise refuse(field, "is missing (every stored token has it)")
    for field in (*_REQUIRED_TEXT, *_OPTIONAL_TEXT):
        if field in token and not isinstance(token[field], str):
            raise refuse(field, f"must be a string, got {_shown(token[field])}")
    for field in (*_REQUIRED_EPOCHS, *_OPTIONAL_EPOCHS):
        if field in token and not _is_epoch(token[field]):
            raise refuse(field, f"must be epoch seconds (a number), got {_shown(token[field])}")
    generation = token.get("generation", 0)
    if not _is_whole(generation):
        raise refuse("generation", f"must be a whole number (the refresh count), got {_shown(generation)}")
    return token


def _is_epoch(value: Any) -> bool:
    """A finite number of seconds within ±3000 years of 1970 (a bigger one cannot be shown as a date)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return (math.isfinite(value) if isinstance(value, float) else True) and abs(value) < _EPOCH_BOUND


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} (not finite)"
    if isinstance(value, str):
        return repr(value[:20])  # never a whole secret pasted into the wrong field
    kind = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}.get(type(value))
    return f"{kind or type(value).__name__} {value!r}"


def token_variable_key(conn_id: str) -> str:
    """Return the default Variable key holding the tokens of connection ``conn_id``."""
    return f"{TOKEN_VARIABLE_PREFIX}{conn_id}"


def login_command(conn_id: str | None) -> str:
    """The command that records a new consent for ``conn_id`` (the default connection if ``None``), quoted for a
    message."""
    return f"`sage200 auth login --conn-id {conn_id}`" if conn_id else "`sage200 auth login`"


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
    token_type = response.get("token_type")
    token["token_type"] = token_type if isinstance(token_type, str) and token_type else "Bearer"
    token["expires_at"] = int(now + (lifetime_seconds(response.get("expires_in")) or DEFAULT_ACCESS_LIFETIME))
    if previous is None or refresh_token_lifetime_days is not None:
        token["consented_at"] = int(now)
        token["refresh_token_expires_at"] = int(now + (refresh_token_lifetime_days or 90) * 86400)
        token["generation"] = 0
    else:
        for kept in ("consented_at", "refresh_token_expires_at"):
            if kept in previous:
                token[kept] = previous[kept]
        if not isinstance(token.get("refresh_token"), str) or not token["refresh_token"]:
            token["refresh_token"] = previous.get("refresh_token")  # Sage ID did not rotate it
        generation = previous.get("generation", 0)
        token["generation"] = (generation if _is_whole(generation) else 0) + 1
    token["refreshed_at"] = int(now)
    return token


def normalise_grant(answer: dict[str, Any]) -> dict[str, Any]:
    """Sage ID's token answer with the fields oauthlib parses made parseable, before it parses them.

    The refresh token is spent once Sage ID has answered, so a field oauthlib cannot parse (``expires_in`` of
    ``"3600.5"`` or NaN, a numeric ``scope``) must not fail the refresh before the rotated token is stored:
    ``expires_in`` becomes whole seconds or is dropped (the default lifetime applies), an unusable
    ``token_type`` becomes ``Bearer``, and a ``scope`` or ``refresh_token`` that is not text is dropped.
    """
    fixed = dict(answer)
    if "expires_in" in fixed:
        lifetime = lifetime_seconds(fixed["expires_in"])
        if lifetime is None:
            del fixed["expires_in"]
        else:
            fixed["expires_in"] = lifetime
    if not isinstance(fixed.get("token_type"), str) or not fixed["token_type"]:
        fixed["token_type"] = "Bearer"
    for field in ("scope", "refresh_token"):
        if field in fixed and not isinstance(fixed[field], str):
            del fixed[field]
    return fixed


def lifetime_seconds(expires_in: Any) -> int | None:
    """Sage ID's ``expires_in`` as whole seconds: a positive finite number, or such a number as text
    (``"3600"``, ``"3600.5"``); ``None`` for anything else (missing, ``null``, ``"soon"``, NaN, negative)."""
    if isinstance(expires_in, str):
        try:
            expires_in = float(expires_in)
        except ValueError:
            return None
    if not _is_epoch(expires_in) or expires_in <= 0:
        return None
    return int(expires_in)


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
