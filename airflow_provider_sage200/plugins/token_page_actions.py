"""What the "Sage 200 tokens" page does, whichever web framework serves it.

The FastAPI app of Airflow 3 (:mod:`~airflow_provider_sage200.plugins.token_page`) and the Flask-AppBuilder view
of Airflow 2.11 (:mod:`~airflow_provider_sage200.plugins.token_page_fab`) only wire these functions to routes,
authentication and CSRF protection. Here: which connections get a card and what each card shows (every
connection asked at once, none waiting on another), what "Refresh now" reports, the consent URL (PKCE and a
sealed state bound to the Airflow user), what the OAuth callback does with Sage ID's answer, and which query
values are masked before any log sees them. Notices are sealed (:func:`Notice.query`) so a page shows only
messages it wrote itself; the callback URL comes from the configured base URL, never from a request. No token
value ever reaches a page.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus, urlencode, urlsplit

from airflow_provider_sage200.oauth import pkce_pair, printable
from airflow_provider_sage200.plugins.oauth_state import open_notice, open_state, seal, seal_notice
from airflow_provider_sage200.plugins.token_page_view import (
    ConnectionView,
    error_sentence,
    render_card,
    render_page,
)

#: Seconds the page waits for Sage to list one connection's sites (all connections are asked at once).
SITES_TIMEOUT = 5.0

#: Path of the OAuth callback under the configured base URL: the redirect URI to register with Sage.
CALLBACK_PATH = "/sage200/oauth/callback"


class PageNotConfigured(RuntimeError):
    """The base URL the page builds its callback URL and allowed origin from is not set."""


@dataclass(frozen=True)
class Notice:
    """A one-line outcome shown at the top of the page after an action."""

    kind: Literal["message", "error"]
    text: str

    def query(self) -> str:
        """The query string (without ``?``) carrying this notice, sealed with the Fernet key."""
        return urlencode({self.kind: seal_notice(self.text)})


def base_url() -> str:
    """The URL people open Airflow at (``[api] base_url`` on 3.x, ``[webserver] base_url`` on 2.11).

    :raises PageNotConfigured: if it is not set to an absolute URL.
    """
    from airflow_provider_sage200.version_compat import UI_BASE_URL_OPTION, conf

    section, key = UI_BASE_URL_OPTION
    url = (conf.get(section, key, fallback="") or "").rstrip("/")
    if not urlsplit(url).netloc:
        raise PageNotConfigured(
            f"The Sage 200 token page needs [{section}] {key} (the URL people open Airflow at, e.g. "
            "https://airflow.example.com): the OAuth callback URL and the allowed origin are built from it."
        )
    return url


def callback_url() -> str:
    """``<base URL>/sage200/oauth/callback``: the redirect URI to register with Sage."""
    return f"{base_url()}{CALLBACK_PATH}"


def sage200_conn_ids() -> list[str]:
    """The ids of the metastore's connections of type ``sage200``, sorted."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(Connection.conn_id).filter(Connection.conn_type == "sage200").all()
    return sorted(row[0] for row in rows)


def connection_view(conn_id: str) -> ConnectionView:
    """Token status, chosen site and reachable sites of one connection; failures become sentences."""
    from airflow_provider_sage200.hooks.sage200 import Sage200Hook
    from airflow_provider_sage200.transport import RetryPolicy

    view = ConnectionView(conn_id)
    # One quick attempt: a page waits for no retries.
    quick = RetryPolicy(
        max_attempts=1, max_elapsed=SITES_TIMEOUT, connect_timeout=3, read_timeout=SITES_TIMEOUT
    )
    try:
        hook = Sage200Hook(conn_id, retry_policy=quick)
        view.status = hook.token_status()
        view.site_id, view.company_id = hook.config.site_id, hook.config.company_id
    except Exception as exc:
        view.error = error_sentence("The connection cannot be read", exc, conn_id)
        return view
    if view.status.access_token_valid:
        try:
            view.sites = hook.get_sites()
        except Exception as exc:
            view.sites_error = error_sentence("Could not list the sites", exc, conn_id)
            # A rejected consent is recorded with the token: the badge says so.
            view.status = hook.token_status()
    return view


def connection_views(conn_ids: list[str]) -> list[ConnectionView]:
    """Every connection's view, asked for concurrently; one Sage that does not answer delays no other card."""
    if not conn_ids:
        return []
    pool = ThreadPoolExecutor(max_workers=min(8, len(conn_ids)), thread_name_prefix="sage200-page")
    futures = [pool.submit(connection_view, conn_id) for conn_id in conn_ids]
    deadline = time.monotonic() + SITES_TIMEOUT + 5
    views = []
    for conn_id, future in zip(conn_ids, futures, strict=True):
        try:
            views.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except FutureTimeout:
            views.append(
                ConnectionView(conn_id, error=f"Sage 200 did not answer within {SITES_TIMEOUT:.0f} seconds.")
            )
    pool.shutdown(wait=False, cancel_futures=True)
    return views


def card(conn_id: str, hidden_fields: Mapping[str, str] | None = None) -> str:
    """The HTML card of one connection.

    :param hidden_fields: name and value of hidden inputs every action form carries (a CSRF token).
    """
    return render_card(connection_view(conn_id), hidden_fields)


def page(
    message: str | None = None, error: str | None = None, hidden_fields: Mapping[str, str] | None = None
) -> str:
    """The whole page: a card per ``sage200`` connection under the notice, if any.

    :param message: a sealed notice from the query string (shown only if this Airflow sealed it recently).
    :param error: the same, for an error.
    :param hidden_fields: name and value of hidden inputs every action form carries (a CSRF token).
    """
    views = connection_views(sage200_conn_ids())
    return render_page(views, open_notice(message), open_notice(error), hidden_fields)


def refresh(conn_id: str) -> Notice:
    """Refresh ``conn_id``'s access token now ("Refresh now") and say what happened."""
    from airflow_provider_sage200.hooks.sage200 import Sage200Hook
    from airflow_provider_sage200.token import refresh_outcome

    try:
        hook = Sage200Hook(conn_id)
        before = hook.token_status()
        _, outcome = refresh_outcome(before, hook.refresh(force=True))
        return Notice("message", f"{conn_id}: {outcome}")
    except Exception as exc:
        return Notice("error", error_sentence(f"Refresh of {conn_id} failed", exc, conn_id))


def authorization_url(conn_id: str, user_id: str) -> str:
    """Sage ID's consent URL for ``conn_id`` ("Get new token"): PKCE S256, and a state sealed for ``user_id``."""
    from airflow_provider_sage200.hooks.sage200 import Sage200Hook

    verifier, challenge = pkce_pair()
    state = seal(user_id, conn_id, verifier)
    return Sage200Hook(conn_id).authorization_url(state, callback_url(), code_challenge=challenge)


def callback(
    state: str,
    user_id: str,
    code: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Notice:
    """Handle Sage ID's answer to a consent: open the state for ``user_id``, exchange the code, store the token.

    A state this Airflow did not seal, one sealed for another user, an expired or a replayed one is refused
    before the code is used.
    """
    from airflow_provider_sage200.hooks.sage200 import Sage200Hook

    try:
        sealed = open_state(state, user_id)
    except ValueError as exc:
        return Notice("error", f"Consent refused: {exc}.")
    if error or not code:
        detail = f"{error}: {error_description}" if error else "no authorization code"
        return Notice("error", printable(f"Sage ID said {detail}"))
    try:
        status = Sage200Hook(sealed.conn_id).exchange_code(code, callback_url(), sealed.code_verifier)
    except Exception as exc:
        return Notice("error", f"Code exchange failed: {exc}")
    return Notice(
        "message",
        f"New token stored for {sealed.conn_id}; refresh token expires {status.refresh_token_expires_at}.",
    )


def mask_callback_query(query_string: str) -> None:
    """Register the callback's ``code`` and ``state`` with the log masker, as sent (URL-encoded) and decoded.

    Called before routing and authentication: the access log records the query string of every request,
    also one refused before the handler runs.
    """
    from airflow_provider_sage200.masking import mask

    for pair in query_string.split("&"):
        name, _, raw = pair.partition("=")
        if unquote_plus(name) in ("code", "state") and raw:
            mask(raw)
            mask(unquote_plus(raw))
