"""Sage ID (OAuth 2.0 authorization-code grant with rotating refresh tokens) on requests-oauthlib.

This module only talks to Sage ID; it does not store anything. Storing, and making sure one refresh
happens at a time, is the job of :mod:`airflow_provider_sage200.refresh`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
import time
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from airflow_provider_sage200.connection import Sage200ConnectionConfig, is_loopback_host
from airflow_provider_sage200.exceptions import (
    Sage200ApiError,
    Sage200AuthError,
    Sage200ReauthorizationRequired,
    Sage200RefreshRefused,
)
from airflow_provider_sage200.masking import mask_token
from airflow_provider_sage200.token import login_command, normalise_grant, token_from_grant
from airflow_provider_sage200.transport import (
    RedirectGuard,
    RetryPolicy,
    error_message,
    raise_for_response,
    send_with_retries,
)

TOKEN_ENDPOINT = "oauth/token"
# Sage ID's answer to a refresh while the access token is still valid, lower-cased ("Rate limit exceeded:
# access_token not expired").
EARLY_REFRESH_REFUSAL = "access_token not expired"


class _DropDebugRecords(logging.Filter):
    """requests-oauthlib logs request bodies and tokens at DEBUG; such records never leave this process."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


for _name in ("requests_oauthlib", "requests_oauthlib.oauth2_session", "oauthlib"):
    logging.getLogger(_name).addFilter(_DropDebugRecords())

log = logging.getLogger(__name__)
_insecure_env_lock = threading.Lock()


def pkce_pair() -> tuple[str, str]:
    """Return ``(code_verifier, S256 code_challenge)``."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def printable(text: str, limit: int = 300) -> str:
    """``text`` without control characters (ANSI escapes, bells, line breaks), so it cannot drive a terminal."""
    return "".join(c for c in text if not unicodedata.category(c).startswith("C"))[:limit]


@contextlib.contextmanager
def _allow_loopback_http(url: str) -> Iterator[None]:
    """Let oauthlib use plain HTTP for a loopback URL (the emulator), and only for that call."""
    if urlsplit(url).scheme == "https" or not is_loopback_host(urlsplit(url).hostname):
        yield
        return
    with _insecure_env_lock:
        previous = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
            else:
                os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = previous


class _SageIdSession(RedirectGuard, OAuth2Session):
    """Token requests carry the client secret and a code or refresh token: no redirect is ever followed."""

    follow_reads = False


class SageIdClient:
    """Calls Sage ID's authorize and token endpoints for one connection.

    :param config: the validated connection settings.
    :param policy: timeouts and retry bounds for token requests.
    """

    def __init__(self, config: Sage200ConnectionConfig, policy: RetryPolicy | None = None) -> None:
        self.config = config
        self.policy = policy or RetryPolicy(max_attempts=4, max_elapsed=60, read_timeout=30)

    def authorization_url(
        self, state: str, redirect_uri: str | None = None, code_challenge: str | None = None
    ) -> str:
        """Return the Sage ID consent URL (with ``audience``, ``offline_access`` scope and ``state``)."""
        extra: dict[str, str] = {"audience": self.config.audience}
        if code_challenge:
            extra |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        session = OAuth2Session(
            self.config.client_id,
            redirect_uri=redirect_uri or self.config.redirect_uri,
            scope=self.config.scope.split(),
        )
        with _allow_loopback_http(self.config.auth_url):
            url, _ = session.authorization_url(self.config.auth_url, state=state, **extra)
        return url

    def exchange_code(
        self, code: str, redirect_uri: str | None = None, code_verifier: str | None = None
    ) -> dict[str, Any]:
        """Trade an authorization code for the first token (a new consent: fixed refresh expiry starts)."""
        session = _SageIdSession(self.config.client_id, redirect_uri=redirect_uri or self.config.redirect_uri)
        extra = {"code_verifier": code_verifier} if code_verifier else {}
        response = self._token_call(
            lambda: session.fetch_token(
                self.config.token_url,
                code=code,
                client_secret=self.config.client_secret,
                include_client_id=True,
                timeout=self.policy.timeout,
                **extra,
            ),
            session,
            grant="authorization_code",
        )
        return token_from_grant(
            response, now=time.time(), refresh_token_lifetime_days=self.config.refresh_token_lifetime_days
        )

    def refresh(self, token: dict[str, Any]) -> dict[str, Any]:
        """Spend ``token['refresh_token']`` once and return the rotated token (not yet stored)."""
        now = time.time()
        expires = token.get("refresh_token_expires_at")
        if expires is not None and expires <= now:
            raise Sage200ReauthorizationRequired(
                f"The Sage 200 refresh token of connection {self.config.conn_id!r} expired at its fixed "
                f"expiry ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(expires))}). Run "
                f"{login_command(self.config.conn_id)} to consent again."
            )
        session = _SageIdSession(self.config.client_id)
        response = self._token_call(
            lambda: session.refresh_token(
                self.config.token_url,
                refresh_token=token["refresh_token"],
                client_id=self.config.client_id,
                client_secret=self.config.client_secret,
                timeout=self.policy.timeout,
            ),
            session,
            grant="refresh_token",
        )
        return token_from_grant(response, now=time.time(), previous=token)

    def _token_call(self, call: Any, session: OAuth2Session, *, grant: str) -> dict[str, Any]:
        """Run one token request under the POST retry rules and turn OAuth errors into ours."""

        def check_status(response: requests.Response) -> requests.Response:
            if response.status_code >= 400 and refuses_early_refresh(response):
                raise Sage200RefreshRefused(
                    f"Sage ID refused to refresh the token of connection {self.config.conn_id!r} before its "
                    f"access token expires: {error_message(response)}",
                    oauth_error=_error_code(response),
                    sage_message=error_message(response),
                )
            # Gateway failures and throttling surface as HTTP errors before oauthlib parses the body.
            if response.status_code == 429 or response.status_code >= 500:
                raise_for_response(response, method="POST", endpoint=TOKEN_ENDPOINT, api_hints=False)
            return _normalised(response)

        session.register_compliance_hook("access_token_response", check_status)
        session.register_compliance_hook("refresh_token_response", check_status)

        def send() -> dict[str, Any]:
            with _allow_loopback_http(self.config.token_url):
                token = dict(call())
            mask_token(token)
            return token

        try:
            return send_with_retries(
                send, method="POST", endpoint=TOKEN_ENDPOINT, policy=self.policy, url_field="token_url"
            )
        except OAuth2Error as exc:
            raise self._oauth_error(exc, grant) from None
        except Sage200ApiError as exc:
            raise Sage200AuthError(
                f"Sage ID token request ({grant}) failed: {exc.message}. The stored token was not changed."
            ) from None

    def _oauth_error(self, exc: OAuth2Error, grant: str) -> Sage200AuthError:
        description = exc.description or exc.error
        conn_id = self.config.conn_id
        said = {"oauth_error": exc.error, "sage_message": description}
        if exc.error == "invalid_grant":
            return Sage200ReauthorizationRequired(
                f"Sage ID rejected the {grant.replace('_', ' ')} for connection {conn_id!r}: invalid_grant "
                f"({description}). The refresh token is expired, revoked or already used. Run "
                f"{login_command(conn_id)} to consent again.",
                **said,
            )
        if exc.error == "invalid_client":
            return Sage200AuthError(
                f"Sage ID rejected the client credentials of connection {conn_id!r}: invalid_client "
                f"({description}). Check the Client ID (login) and Client Secret (password).",
                **said,
            )
        return Sage200AuthError(
            f"Sage ID token request ({grant}) failed: {exc.error} ({description}).", **said
        )


def _normalised(response: requests.Response) -> requests.Response:
    """``response`` with its JSON answer made parseable by oauthlib (:func:`normalise_grant`)."""
    if not response.ok:
        return response
    try:
        answer = response.json()
    except ValueError:
        return response
    if not isinstance(answer, dict):
        return response
    fixed = normalise_grant(answer)
    if fixed != answer:
        log.warning(
            "Sage ID's token answer had fields oauthlib cannot parse (%s); using them normalised.",
            ", ".join(
                sorted(
                    k
                    for k in answer.keys() | fixed.keys()
                    if k not in answer or k not in fixed or answer[k] is not fixed[k]
                )
            ),
        )
        response._content = json.dumps(fixed).encode()
        response.encoding = "utf-8"
    return response


def refuses_early_refresh(response: requests.Response) -> bool:
    """Whether a Sage ID error answer is its refusal of an early refresh ("access_token not expired").

    Sage ID answers it with a rate-limit status and this text while the grant's access token is still valid;
    the text is the only reliable mark (hotglue's target-sage-200 matches it too).
    """
    return EARLY_REFRESH_REFUSAL in error_message(response).lower()


def _error_code(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None
