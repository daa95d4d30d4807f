"""Read and write the token Variable, inside a task or outside one.

Inside a running task (a worker, ``dag.test()``) Airflow 3 forbids metadata-DB access, so the store goes
through the Task SDK's ``Variable``, which talks to the API server. Outside a task (the ``sage200``
command, a plugin in the API server, a test seeding a token), and everywhere on Airflow 2.11, the store
uses Airflow's metastore ``Variable`` model directly. Both paths store the same Fernet-encrypted row;
:func:`airflow_provider_sage200.version_compat.task_variables` picks the path.

Reads bypass nothing: every :meth:`VariableTokenStore.load` asks the backend afresh, because the refresh
coordination (see :mod:`airflow_provider_sage200.refresh`) depends on seeing other workers' writes.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, ClassVar

from airflow_provider_sage200.exceptions import Sage200AuthError
from airflow_provider_sage200.masking import mask_token
from airflow_provider_sage200.token import check_token
from airflow_provider_sage200.version_compat import task_variables

_MISSING = object()

log = logging.getLogger(__name__)

# How long a token Variable this process has read before may be missing (or a write fail) before that is an
# error. Airflow's Task SDK reports a Variable it could not fetch, because the API server is down or
# restarting, as not found; the provider never deletes a token Variable, so its absence is taken for an outage.
OUTAGE_WAIT_SECONDS = 60.0


class VariableTokenStore:
    """The token of one connection, kept as JSON in one Airflow Variable.

    :param key: Variable key, e.g. ``sage200_token__sage200_default``.
    :param write_attempts: how often a write is tried at least before giving up (a rotated refresh token that
        is not stored is lost, so writes are retried).
    :param outage_wait: seconds a write keeps being retried, and a token Variable this process has read before
        re-read while it seems missing, to ride out an API server restart (``0``: no waiting).
    """

    description = "Sage 200 OAuth tokens (managed by airflow-provider-sage200; do not edit by hand)"
    # Token Variables this process has read: missing afterwards means the backend could not be reached.
    _seen: ClassVar[set[str]] = set()

    def __init__(
        self, key: str, *, write_attempts: int = 5, outage_wait: float = OUTAGE_WAIT_SECONDS
    ) -> None:
        self.key = key
        self.write_attempts = write_attempts
        self.outage_wait = outage_wait

    @property
    def _backend(self) -> Any:
        return task_variables()

    def load(self) -> dict[str, Any] | None:
        """Return the stored token (secrets masked), or ``None`` when there is none."""
        raw = self._read_token()
        if raw is None:
            return None
        token = check_token(raw, self.key) if isinstance(raw, dict) else self._parse(raw)
        mask_token(token)
        return token

    def save(self, token: dict[str, Any]) -> None:
        """Write ``token``, retrying transient failures, then check it reads back.

        The read-back catches a secrets backend or ``AIRFLOW_VAR_*`` variable that shadows the
        metastore value: writes would succeed but every read would return the stale token.
        """
        mask_token(token)
        value = json.dumps(token, sort_keys=True)
        self._write(self.key, value, self.description)
        stored = self._backend.get(self.key)
        stored_token = stored if isinstance(stored, dict) else self._parse(stored) if stored else None
        if stored_token is None or stored_token.get("refresh_token") != token.get("refresh_token"):
            raise Sage200AuthError(
                f"Wrote Variable {self.key!r} but reading it back returned a different value. Another "
                "secrets backend (or an AIRFLOW_VAR_* environment variable) answers for this key and shadows "
                "the metastore; exclude it there (e.g. a variables lookup pattern without 'sage200_')."
            )

    def load_raw(self, key: str) -> str | None:
        """Read a companion Variable (e.g. the refresh lease) as text."""
        raw = self._backend.get(key)
        return raw if raw is None or isinstance(raw, str) else json.dumps(raw)

    def save_raw(self, key: str, value: str, description: str | None = None) -> None:
        """Write a companion Variable (one attempt: callers decide what a failure means)."""
        self._backend.set(key, value, description)

    def _read_token(self) -> Any:
        raw = self._backend.get(self.key)
        if raw is not None:
            self._seen.add(self.key)
            return raw
        if self.key not in self._seen or self.outage_wait <= 0:
            return None
        log.warning(
            "Variable %r, which this process has read before, reads as missing: taking it for the API server "
            "being unreachable (Airflow reports that as not found) and reading again for up to %.0fs.",
            self.key,
            self.outage_wait,
        )
        deadline = time.monotonic() + self.outage_wait
        delay = 0.5
        while raw is None and time.monotonic() < deadline:
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            raw = self._backend.get(self.key)
            delay = min(delay * 2, 2.0)
        return raw

    def _write(self, key: str, value: str, description: str | None) -> None:
        # A short, capped delay: once the backend is back, the writer (often the lease holder with a rotated
        # token only it knows) must get its write in before other hosts take its lease for expired.
        delay = 0.2
        deadline = time.monotonic() + self.outage_wait
        attempt = 0
        while True:
            attempt += 1
            try:
                self._backend.set(key, value, description)
                return
            except Exception as exc:
                if attempt >= self.write_attempts and time.monotonic() >= deadline:
                    raise Sage200AuthError(
                        f"Could not store the Sage 200 token in Variable {key!r} after {attempt} attempts "
                        f"({type(exc).__name__})."
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _parse(self, raw: str) -> dict[str, Any]:
        try:
            token = json.loads(raw)
        except ValueError:
            raise Sage200AuthError(
                f"Variable {self.key!r} does not hold JSON. It must hold the token written by "
                "`sage200 auth login`; run that command again to replace it."
            ) from None
        return check_token(token, self.key)
