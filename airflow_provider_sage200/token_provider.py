"""When to refresh a connection's Sage ID token, and the per-process cache of it: the token policy in one place.

:class:`Sage200TokenProvider` decides *when* a token needs a refresh (every rule is a named method below, its
reason in its docstring) and keeps the access token each process already read. *How* a refresh stays single use
across threads, processes and hosts is :mod:`airflow_provider_sage200.refresh`; talking to Sage ID is
:mod:`airflow_provider_sage200.oauth`; reading and writing the Variable is
:mod:`airflow_provider_sage200.token_store`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from airflow_provider_sage200.connection import Sage200ConnectionConfig
from airflow_provider_sage200.exceptions import (
    Sage200AuthError,
    Sage200ReauthorizationRequired,
    Sage200RefreshRefused,
)
from airflow_provider_sage200.oauth import SageIdClient
from airflow_provider_sage200.refresh import RefreshCoordinator, RefreshTiming
from airflow_provider_sage200.token import (
    CONSENT_REJECTED,
    REFRESH_REFUSED,
    TokenStatus,
    access_seconds_left,
    login_command,
)
from airflow_provider_sage200.token_store import VariableTokenStore

Token = dict[str, Any]
Rule = Callable[[Token], bool]

log = logging.getLogger(__name__)

# Refresh when fewer seconds than this remain (``[sage200] refresh_margin_seconds``; at most half the lifetime).
REFRESH_MARGIN = 300.0
# A token another worker stored is taken unless fewer than this many seconds (or a quarter of its life) remain.
ANOTHER_WORKERS_TOKEN_FLOOR = 30.0
# An access token with less than this left is treated as expired: it could expire on the way to Sage 200.
USABLE_FLOOR = 1.0
# After Sage ID refuses an early refresh, ask again after half the access token's remaining life, within these.
REFUSAL_BACKOFF_MIN = 1.0
REFUSAL_BACKOFF_MAX = 120.0
# Sage ID's refusal says its access token has not expired; near expiry this host's clock may already disagree.
# Beyond this many seconds past the expiry we know, the clocks are wrong.
REFUSAL_CLOCK_TOLERANCE = 30.0
# Sage ID's answers that mean the grant itself is dead (not a passing failure): recorded in the token Variable.
GRANT_REJECTIONS = ("invalid_grant", "invalid_client")


class Sage200TokenProvider:
    """Hands out a valid access token for one connection, refreshing it (once, system-wide) when a rule says so.

    :param config: the connection's validated settings.
    :param refresh_margin: refresh when fewer than this many seconds remain (at most half the token's life).
    :param refresh_timing: cross-worker lease timings.
    :param store: the token Variable (default: the connection's).
    :param sage_id: the Sage ID client (default: one for the connection).
    """

    # Access tokens already read in this process, by token Variable: N calls within a token's life cost no
    # Variable reads and no refreshes. Shared by every provider (and hook) of the process.
    _cache: ClassVar[dict[str, Token]] = {}
    _cache_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        config: Sage200ConnectionConfig,
        *,
        refresh_margin: float,
        refresh_timing: RefreshTiming | None = None,
        store: VariableTokenStore | None = None,
        sage_id: SageIdClient | None = None,
    ) -> None:
        self.config = config
        self.refresh_margin = refresh_margin
        self.store = store or VariableTokenStore(config.token_variable)
        self.sage_id = sage_id or SageIdClient(config)
        self.coordinator = RefreshCoordinator(self.store, timing=refresh_timing, conn_id=config.conn_id)

    @classmethod
    def clear_cache(cls) -> None:
        """Forget every cached token of this process (as a fresh worker process starts)."""
        with cls._cache_lock:
            cls._cache.clear()

    # -- the freshness rules ---------------------------------------------------------------------------

    @staticmethod
    def lifetime(token: Token) -> float:
        """Seconds the access token was issued for (``expires_at - refreshed_at``)."""
        return max(float(token.get("expires_at", 0)) - float(token.get("refreshed_at", 0)), 0)

    def needs_refresh(self, token: Token) -> bool:
        """Refresh proactively when fewer than ``refresh_margin`` seconds remain, but never earlier than half-way.

        Proactive, so that API calls never carry a token about to expire; capped at half the life, so a short
        lived token (the emulator's 5-second ones, a tenant's 15-minute ones) is not refreshed on every call.
        Not while :meth:`backing_off`.
        """
        due = access_seconds_left(token) < min(self.refresh_margin, self.lifetime(token) / 2)
        return due and not self.backing_off(token)

    @staticmethod
    def backing_off(token: Token) -> bool:
        """Sage ID refused an early refresh of this access token: do not ask again before ``retry_at``.

        Sage ID answers "Rate limit exceeded: access_token not expired" to a refresh while the grant's access
        token is still valid. That is "not now", not a failure: the current token goes on being used, the
        refresh token stays unspent, and the time to ask again is kept in the token Variable, so every worker
        waits instead of each asking in turn. The back-off (:meth:`refusal_backoff`) ends before the access
        token expires, or a second after a refusal at expiry: this host's clock (and the whole seconds the
        expiry is stored in) may differ from Sage ID's by that much, and its word that the token is still valid
        is taken, up to ``REFUSAL_CLOCK_TOLERANCE`` past the expiry we know.
        """
        refusal = token.get(REFRESH_REFUSED)
        if not isinstance(refusal, dict):
            return False
        within_clock_tolerance = access_seconds_left(token) > -REFUSAL_CLOCK_TOLERANCE
        return time.time() < float(refusal.get("retry_at", 0)) and within_clock_tolerance

    @staticmethod
    def refusal_backoff(token: Token) -> float:
        """Seconds to wait after a refusal: half the access token's remaining life, between
        ``REFUSAL_BACKOFF_MIN`` and ``REFUSAL_BACKOFF_MAX``.

        The asks get closer as expiry nears (a handful per token, whatever the margin), so the refresh happens
        soon after Sage ID allows it and at the latest around expiry.
        """
        return min(max(access_seconds_left(token) / 2, REFUSAL_BACKOFF_MIN), REFUSAL_BACKOFF_MAX)

    def usable_from_another_worker(self, seen: Token) -> Rule:
        """While waiting to refresh ``seen``, whether a token read since still needs a refresh.

        A token another worker stored since is taken while it is usable, even inside the refresh margin: with
        short-lived tokens the margin may already have begun by the time the new token is readable, and waiting
        for a "fresh" one would make every waiter refresh in turn (found by the soak). "Usable" is at least
        ``ANOTHER_WORKERS_TOKEN_FLOOR`` seconds, or a quarter of the token's life when that is shorter.
        """

        def still_needs_refresh(token: Token) -> bool:
            if token.get("access_token") == seen.get("access_token"):
                return self.needs_refresh(token)
            return access_seconds_left(token) < min(ANOTHER_WORKERS_TOKEN_FLOOR, self.lifetime(token) / 4)

        return still_needs_refresh

    @staticmethod
    def after_401(rejected: str) -> Rule:
        """After Sage 200 answered 401 to ``rejected``: refresh unless another worker stored a different token.

        The token may have been revoked, or the clocks disagree, so its own expiry proves nothing. Another
        worker's newer token is taken unless it is about to expire too (``USABLE_FLOOR``).
        """
        return lambda token: token["access_token"] == rejected or access_seconds_left(token) < USABLE_FLOOR

    def forced(self, stale: str) -> Rule:
        """An explicit refresh (``force``): refresh ``stale`` unless another worker refreshed it meanwhile, or
        while :meth:`backing_off` (Sage ID would refuse again)."""
        return lambda token: token["access_token"] == stale and not self.backing_off(token)

    def below(self, min_remaining: float) -> Rule:
        """An explicit refresh with a threshold: refresh when fewer than ``min_remaining`` seconds remain, not
        while :meth:`backing_off`."""
        return lambda token: access_seconds_left(token) < min_remaining and not self.backing_off(token)

    # -- tokens ----------------------------------------------------------------------------------------

    def get_access_token(self) -> str:
        """Return a valid access token, refreshing it (once, system-wide) when it is about to expire."""
        return self.get_token()["access_token"]

    def get_token(self) -> Token:
        """The cached token while :meth:`needs_refresh` says no, else the stored one, refreshed if it must be."""
        with self._cache_lock:
            cached = self._cache.get(self.store.key)
        if cached is not None and not self.needs_refresh(cached):
            return cached
        token = self.load()
        if self.needs_refresh(token):
            token = self.ensure_fresh(self.usable_from_another_worker(token))
        self.remember(token)
        return token

    def refresh(self, *, force: bool = True, min_remaining: float | None = None) -> TokenStatus:
        """Refresh through the rotation-safe path and return the tokens' status (no secrets).

        :param force: refresh even if the access token is still fresh (unless another worker refreshed it
            while this call waited).
        :param min_remaining: without ``force``, refresh only when fewer seconds than this remain (default
            ``refresh_margin``).
        """
        if force:
            rule = self.forced(self.load()["access_token"])
        else:
            rule = self.below(self.refresh_margin if min_remaining is None else min_remaining)
        return self.status(self.ensure_fresh(rule))

    def after_rejection(self, rejected: str) -> Token:
        """Refresh once after Sage 200 rejected ``rejected`` with 401 (see :meth:`after_401`)."""
        self.forget(rejected)
        token = self.ensure_fresh(self.after_401(rejected))
        if token["access_token"] == rejected:  # Sage ID refused: it holds the token valid, Sage 200 does not
            self.forget(rejected)
            raise Sage200AuthError(
                f"Sage 200 answered 401 to the access token of connection {self.config.conn_id!r}, and Sage ID "
                f"refused to refresh it ({token[REFRESH_REFUSED]['message']}). Check the connection's "
                "subscription_key, and that the Sage ID user is enabled for API access."
            )
        return token

    def token_status(self) -> TokenStatus:
        """Both tokens' expiry, read from the Variable, without refreshing or calling Sage."""
        return self.status(self.store.load())

    def status(self, token: Token | None) -> TokenStatus:
        return TokenStatus.from_token(self.config.conn_id, self.store.key, token)

    def exchange_code(
        self, code: str, redirect_uri: str | None = None, code_verifier: str | None = None
    ) -> TokenStatus:
        """Trade an authorization code for tokens and store them (a new consent resets the fixed expiry)."""
        token = self.sage_id.exchange_code(code, redirect_uri, code_verifier)
        self.store.save(token)
        self.coordinator.reset_lease()
        self.remember(token)
        return self.status(token)

    def load(self) -> Token:
        """The stored token; :class:`Sage200ReauthorizationRequired` when there is none."""
        token = self.store.load()
        if token is None:
            raise Sage200ReauthorizationRequired(
                f"No Sage 200 token stored for connection {self.config.conn_id!r} (Variable "
                f"{self.store.key!r}). Run {login_command(self.config.conn_id)}."
            )
        return token

    def ensure_fresh(self, needs_refresh: Rule) -> Token:
        """Return a stored token ``needs_refresh`` accepts, refreshing through the coordinator at most once."""
        try:
            token = self.coordinator.ensure_fresh(needs_refresh, self.refresh_or_record)
        except Sage200ReauthorizationRequired:
            # Another worker may have rotated the token between our read and our refresh: use theirs.
            stored = self.load()
            if needs_refresh(stored):
                raise
            token = stored
        self.remember(token)
        return token

    def refresh_or_record(self, token: Token) -> Token:
        """Ask Sage ID to refresh ``token`` (as the lease holder); what to store, or raise.

        A refusal of an early refresh returns ``token`` unchanged but for the refusal and the time to ask again
        (:meth:`backing_off`); with the access token already expired it is an error. A rejected grant
        (``invalid_grant``, ``invalid_client``) is recorded in the Variable before it is raised, so
        ``token check``, the sensor and the token page report it until a new consent replaces the token.
        """
        try:
            return self.sage_id.refresh(token)
        except Sage200RefreshRefused as exc:
            if access_seconds_left(token) <= -REFUSAL_CLOCK_TOLERANCE:
                raise Sage200AuthError(
                    f"{exc}. But the access token already expired at {self.status(token).access_token_expires_at} "
                    f"(more than {REFUSAL_CLOCK_TOLERANCE:.0f}s ago by this host's clock), so there is no token to "
                    "use: check that this host's clock agrees with Sage ID's (NTP)."
                ) from None
            now = time.time()
            retry_at = now + self.refusal_backoff(token)
            log.info(
                "%s; keeping the current access token (%.0fs left) and asking again in %.0fs.",
                exc,
                access_seconds_left(token, now),
                retry_at - now,
            )
            return token | {
                REFRESH_REFUSED: {"at": int(now), "message": exc.sage_message, "retry_at": retry_at}
            }
        except Sage200AuthError as exc:
            if exc.oauth_error in GRANT_REJECTIONS:
                self.record_rejection(token, exc)
            raise

    def record_rejection(self, presented: Token, exc: Sage200AuthError) -> None:
        """Mark the stored token as rejected by Sage ID, unless another worker stored a newer one meanwhile."""
        stored = self.store.load()
        if stored is None or stored.get("refresh_token") != presented.get("refresh_token"):
            return
        rejection = {"at": int(time.time()), "error": exc.oauth_error, "message": exc.sage_message}
        try:
            self.store.save(stored | {CONSENT_REJECTED: rejection})
        except Sage200AuthError:
            log.warning("Could not record Sage ID's %s in Variable %r.", exc.oauth_error, self.store.key)

    def remember(self, token: Token) -> None:
        with self._cache_lock:
            self._cache[self.store.key] = token

    def forget(self, access_token: str) -> None:
        """Drop the cached token if it is still ``access_token`` (rejected by Sage 200)."""
        with self._cache_lock:
            cached = self._cache.get(self.store.key)
            if cached is not None and cached.get("access_token") == access_token:
                del self._cache[self.store.key]
