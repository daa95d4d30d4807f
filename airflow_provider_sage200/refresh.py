"""Refresh a rotating Sage ID token exactly once, however many threads, processes and workers want it.

Why this is needed
------------------
Sage ID refresh tokens are single use: every refresh returns a new refresh token and invalidates the one
presented, and presenting a used one again may revoke the whole token family (then a person has to
consent again). Airflow gives task code no lock, and ``Variable.set`` is an unconditional upsert with no
compare-and-set, so two workers that notice an expiring access token at the same moment would both spend
the same refresh token. The coordination below makes sure only one of them talks to Sage ID.

How it works (three layers, each cheaper than the next)
-------------------------------------------------------
1. **Threads** of one process share a ``threading.Lock`` per token Variable (single flight): the first
   thread refreshes, the others wait and then re-read the Variable.
2. **Processes on one host** share an ``fcntl`` file lock in the temp directory, with the same effect.
   ``flock`` is not fair, so a waiter also re-reads the token Variable now and then (every second at most)
   and stops waiting as soon as another process has stored a token it can use.
3. **Workers on different hosts** use a lease kept in a companion Variable
   (``<token variable>__refresh_lease``), claimed with Fischer's timed mutual exclusion:

   a. read the lease; if another owner holds an unexpired lease, wait (polling the token Variable) until
      the token is fresh or the lease expires;
   b. write a claim ``{owner, lease_until}``; if the time from the read in (a) to the end of that write
      exceeded ``claim_write_limit`` (D), abandon the attempt and start again;
   c. wait ``claim_settle`` (> D), then read the lease again: only the owner whose claim is still there
      refreshes, everyone else goes back to (a).

   Why (c) is safe: a competitor can only write a claim if it read the lease before our claim became
   visible, and its write finished within D of that read (else it abandons its claim in (b)). Our claim
   became visible no later than the end of our write, so every such competing write has finished before
   our settle delay ends. After (c) the lease holds the last claim written, exactly one owner sees its
   own claim, and no competitor will write again while the lease is unexpired.

   The claim is kept in its own Variable, never in the token Variable, so a slow competitor can at worst
   overwrite a claim, never the tokens. The token Variable is written only by the lease holder, right
   after Sage ID answers and before the new access token is used; the read-back in
   :meth:`VariableTokenStore.save` proves the write landed.

Before refreshing, the winner re-reads the token: if another worker already refreshed it, no Sage ID call
is made. On ``invalid_grant`` the hook re-reads the Variable and uses a newer refresh token if one appeared.

Limits (documented in docs/concepts.md)
---------------------------------------
* The timing argument assumes a Variable write (worker -> API server -> DB) finishes within
  ``claim_write_limit``; a write that takes longer makes that claimant back off, it cannot win.
* Leases compare wall-clock times across hosts: clocks must agree to well within ``lease_seconds``
  (NTP is enough; the default lease is 120 s).
* A lease holder that dies blocks the others for at most ``lease_seconds``.
* If a worker dies after Sage ID has rotated the token but before the Variable write finished, the new
  refresh token is lost and the old one is spent: a new consent is needed. Nothing on the client side
  can close that window; it is a few milliseconds wide.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from airflow_provider_sage200.exceptions import Sage200AuthError, Sage200ReauthorizationRequired
from airflow_provider_sage200.token import access_seconds_left, login_command
from airflow_provider_sage200.token_store import VariableTokenStore

log = logging.getLogger(__name__)

Token = dict[str, Any]

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@dataclass(frozen=True)
class RefreshTiming:
    """Timings of the cross-worker lease; see the module docstring.

    :param lease_seconds: how long a claim stays valid; must exceed the token request timeout plus the
        Variable write budget.
    :param claim_write_limit: D, the longest a claim write may take (from the lease read) to count.
    :param claim_settle: the wait after a claim write before checking who won; must exceed D.
    :param poll_interval: how often waiters re-read the Variables.
    :param host_lock: also serialise processes on one host with a file lock.
    """

    lease_seconds: float = 120.0
    claim_write_limit: float = 2.0
    claim_settle: float = 2.5
    poll_interval: float = 0.5
    host_lock: bool = True

    def __post_init__(self) -> None:
        if self.claim_settle <= self.claim_write_limit:
            raise ValueError("claim_settle must be longer than claim_write_limit")

    @classmethod
    def from_config(cls) -> RefreshTiming:
        """The timings set in the ``[sage200]`` config section, each option defaulting to the field's default."""
        from airflow_provider_sage200.settings import from_config

        return from_config(cls, TIMING_OPTIONS)


# [sage200] option -> RefreshTiming field.
TIMING_OPTIONS = {
    "refresh_lease_seconds": "lease_seconds",
    "claim_write_limit_seconds": "claim_write_limit",
    "claim_settle_seconds": "claim_settle",
    "lease_poll_seconds": "poll_interval",
    "host_lock": "host_lock",
}


def lease_variable_key(token_variable: str) -> str:
    """Return the key of the Variable holding the refresh lease for ``token_variable``."""
    return f"{token_variable}__refresh_lease"


def _thread_lock(key: str) -> threading.Lock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(key, threading.Lock())


def _host_lock_folder() -> str:
    """This user's folder for host locks, ``<tmp>/airflow-provider-sage200-<uid>``, created private (0700).

    Per user, so another local user cannot take the name; refused (before Sage ID is called) unless it is a
    real folder, ours, and writable by no one else: anyone who can write there can block or break refreshes.
    """
    folder = os.path.join(tempfile.gettempdir(), f"airflow-provider-sage200-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory (a symlink or a file)"
    elif info.st_uid != os.getuid():
        problem = f"belongs to another user (uid {info.st_uid}, this process runs as uid {os.getuid()})"
    elif info.st_mode & 0o022:
        problem = f"is writable by other users (mode {oct(stat.S_IMODE(info.st_mode))})"
    else:
        return folder
    raise Sage200AuthError(
        f"The host refresh-lock folder {folder} {problem}; nothing was refreshed. Remove it (it is recreated "
        "private, mode 0700, on the next refresh) and check who made it, or point TMPDIR at a private folder."
    )


@contextlib.contextmanager
def _host_lock(
    key: str, timeout: float, no_longer_needed: Callable[[], bool], recheck_every: float
) -> Iterator[bool]:
    """An exclusive ``flock`` shared by every process on this host that refreshes ``key``.

    Yields True once the lock is held, or False as soon as ``no_longer_needed()`` (asked every
    ``recheck_every`` seconds while waiting) says the wait is pointless. ``flock`` is not fair: without that
    check, a waiter can lose the lock to newcomers over and over while the token is refreshed around it.
    """
    path = os.path.join(_host_lock_folder(), hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock")
    deadline = time.monotonic() + timeout
    next_check = time.monotonic()  # the first check as soon as the lock is found taken
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + recheck_every
                    if no_longer_needed():
                        yield False
                        return
                if now > deadline:
                    raise Sage200AuthError(
                        f"Timed out after {timeout:.0f}s waiting for another process on this host to "
                        f"finish refreshing the token in Variable {key!r}."
                    ) from None
                time.sleep(0.05)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class RefreshCoordinator:
    """Runs a token refresh so that one caller, system-wide, spends a given refresh token.

    :param store: the token Variable.
    :param timing: lease timings.
    :param conn_id: the connection the token belongs to, named in the re-consent hint.
    :param clock: wall clock (epoch seconds); injectable for tests.
    :param sleep: sleep function; injectable for tests.
    """

    def __init__(
        self,
        store: VariableTokenStore,
        *,
        timing: RefreshTiming | None = None,
        conn_id: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.timing = timing or RefreshTiming()
        self.conn_id = conn_id
        self.clock = clock
        self.sleep = sleep
        self.lease_key = lease_variable_key(store.key)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"

    def ensure_fresh(
        self, needs_refresh: Callable[[Token], bool], do_refresh: Callable[[Token], Token]
    ) -> Token:
        """Return a stored token for which ``needs_refresh`` is false, refreshing it at most once.

        :param needs_refresh: decides, on the freshly read token, whether a refresh is still needed.
        :param do_refresh: calls Sage ID with the token's refresh token and returns the token to store (the
            rotated one, or the same one with what Sage ID said); it is called only by the lease holder, and its
            result is stored before it is returned.
        """
        wait_budget = self.timing.lease_seconds + 30
        with _thread_lock(self.store.key):
            if not self.timing.host_lock:
                return self._refresh_under_lease(needs_refresh, do_refresh, self.clock() + wait_budget)
            fresh: list[Token] = []

            def refreshed_elsewhere() -> bool:
                token = self._load_token()
                if needs_refresh(token):
                    return False
                fresh.append(token)
                return True

            # Not every poll_interval: many waiters re-reading the Variable slow the API server down, and with it
            # the lease holder's claim write (measured in the soak).
            recheck_every = max(self.timing.poll_interval, 1.0)
            with _host_lock(self.store.key, wait_budget, refreshed_elsewhere, recheck_every) as held:
                if not held:
                    return fresh[-1]
                return self._refresh_under_lease(needs_refresh, do_refresh, self.clock() + wait_budget)

    def _refresh_under_lease(
        self, needs_refresh: Callable[[Token], bool], do_refresh: Callable[[Token], Token], deadline: float
    ) -> Token:
        while True:
            token = self._load_token()
            if not needs_refresh(token):
                return token
            read_started = self.clock()
            lease = self._read_lease()
            if read_started > deadline:
                raise Sage200AuthError(
                    f"Gave up after {self.timing.lease_seconds + 30:.0f}s waiting to refresh the token in Variable "
                    f"{self.store.key!r} (last lease holder: {lease.get('owner')})."
                )
            if lease.get("owner") not in (None, self.owner) and lease.get("lease_until", 0) > read_started:
                self.sleep(self.timing.poll_interval)
                continue
            if not self._claim(read_started):
                continue
            return self._refresh_as_owner(needs_refresh, do_refresh)

    def _claim(self, read_started: float) -> bool:
        """Fischer steps (b) and (c); True when this process holds the lease."""
        claim = {"owner": self.owner, "lease_until": read_started + self.timing.lease_seconds}
        self.store.save_raw(self.lease_key, json.dumps(claim), "Sage 200 token refresh lease (internal)")
        if self.clock() - read_started > self.timing.claim_write_limit:
            log.info("Refresh claim write was slower than %.1fs; backing off.", self.timing.claim_write_limit)
            self.sleep(self.timing.claim_settle)
            return False
        self.sleep(self.timing.claim_settle)
        won = self._read_lease().get("owner") == self.owner
        if not won:
            log.info("Another worker claimed the token refresh; waiting for its result.")
        return won

    def _refresh_as_owner(
        self, needs_refresh: Callable[[Token], bool], do_refresh: Callable[[Token], Token]
    ) -> Token:
        try:
            token = self._load_token()
            if not needs_refresh(token):
                return token
            asked = time.monotonic()
            new_token = do_refresh(token)
            answered = time.monotonic()
            self.store.save(new_token)
            if new_token.get("refresh_token") == token.get("refresh_token"):
                return (
                    new_token  # Sage ID did not rotate (it refused an early refresh): the caller logged why
                )
            log.info(
                "Refreshed the Sage 200 token in Variable %r (generation %s, access token valid for %.0fs): "
                "Sage ID answered in %.2fs, saving and reading it back took %.2fs.",
                self.store.key,
                new_token.get("generation"),
                access_seconds_left(new_token, self.clock()),
                answered - asked,
                time.monotonic() - answered,
            )
            return new_token
        finally:
            self._release()

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            if self._read_lease().get("owner") == self.owner:
                released = {"owner": None, "released_at": self.clock()}
                self.store.save_raw(self.lease_key, json.dumps(released), "Sage 200 token refresh lease")

    def reset_lease(self) -> None:
        """Clear the lease (after a new consent: no claim on the old token family may block the new one)."""
        self.store.save_raw(self.lease_key, "{}", "Sage 200 token refresh lease")

    def _load_token(self) -> Token:
        token = self.store.load()
        if token is None:
            raise Sage200ReauthorizationRequired(
                f"No Sage 200 token in Variable {self.store.key!r}. Run {login_command(self.conn_id)} to consent."
            )
        return token

    def _read_lease(self) -> dict[str, Any]:
        raw = self.store.load_raw(self.lease_key)
        if not raw:
            return {}
        try:
            lease = json.loads(raw)
        except ValueError:
            return {}
        return lease if isinstance(lease, dict) else {}
