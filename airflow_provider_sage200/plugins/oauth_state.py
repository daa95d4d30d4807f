"""An OAuth ``state`` that carries its own context, sealed with Airflow's Fernet key.

The state names the Airflow user who started the consent, the connection, a PKCE verifier and an expiry. Sage ID
echoes it back untouched; the callback opens it, checks the user is the same one and that it has not expired or
been used before. Nothing is kept server-side, so it works with several API-server workers.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass

STATE_TTL_SECONDS = 600

_used_nonces: dict[str, float] = {}
_used_lock = threading.Lock()


@dataclass(frozen=True)
class ConsentState:
    user: str
    conn_id: str
    code_verifier: str
    nonce: str
    expires_at: float


def _fernet():
    from airflow.models.crypto import get_fernet

    fernet = get_fernet()
    if not getattr(fernet, "is_encrypted", True):
        raise RuntimeError("The Sage 200 consent page needs [core] fernet_key to be set.")
    return fernet


def seal(user: str, conn_id: str, code_verifier: str) -> str:
    payload = {
        "user": user,
        "conn_id": conn_id,
        "code_verifier": code_verifier,
        "nonce": secrets.token_urlsafe(16),
        "expires_at": time.time() + STATE_TTL_SECONDS,
    }
    return _fernet().encrypt(json.dumps(payload).encode()).decode()


def open_state(state: str, user: str) -> ConsentState:
    """Return the state's content, or raise ``ValueError`` saying why it is refused."""
    try:
        payload = json.loads(_fernet().decrypt(state.encode()))
    except Exception:
        raise ValueError("the state parameter is not one this Airflow issued") from None
    sealed = ConsentState(**payload)
    if sealed.expires_at < time.time():
        raise ValueError("the consent took longer than 10 minutes; start again")
    if sealed.user != user:
        raise ValueError("the consent was started by another Airflow user")
    with _used_lock:
        now = time.time()
        for nonce, expiry in list(_used_nonces.items()):
            if expiry < now:
                del _used_nonces[nonce]
        if sealed.nonce in _used_nonces:
            raise ValueError("this consent response was already used")
        _used_nonces[sealed.nonce] = sealed.expires_at
    return sealed


NOTICE_TTL_SECONDS = 300


def seal_notice(text: str) -> str:
    """A notice for the token page, sealed so the page shows only messages it wrote itself."""
    return _fernet().encrypt(text.encode()).decode()


def open_notice(sealed: str | None) -> str | None:
    """The text of a notice sealed here in the last few minutes; ``None`` for anything else."""
    if not sealed:
        return None
    try:
        return _fernet().decrypt(sealed.encode(), ttl=NOTICE_TTL_SECONDS).decode()
    except Exception:
        return None
