"""The "Sage 200 tokens" page: token status per connection, "Refresh now" and "Get new token" with the OAuth callback.

Served by the API server under ``/sage200``. Every route needs an authenticated Airflow user allowed to edit
Variables. Actions are POSTs, and a POST authenticated by the session cookie must come from the Airflow UI's own
origin (``Origin``, else ``Referer``, equal to ``[api] base_url``'s): the cookie is SameSite=Lax, which another
site on the same registrable domain would get past. Notices are sealed with the Fernet key, so the page shows
only messages it wrote itself, and the OAuth callback URL comes from ``[api] base_url``, never from the request's
``Host`` header. No token value is ever rendered.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_variable
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from airflow_provider_sage200.oauth import pkce_pair, printable
from airflow_provider_sage200.plugins.oauth_state import open_notice, open_state, seal, seal_notice
from airflow_provider_sage200.plugins.token_page_view import (
    ConnectionView,
    error_sentence,
    render_card,
    render_page,
)


def _sage200_conn_ids() -> list[str]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(Connection.conn_id).filter(Connection.conn_type == "sage200").all()
    return sorted(row[0] for row in rows)


def _base_url() -> str:
    from airflow_provider_sage200.version_compat import conf

    base_url = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    if not urlsplit(base_url).netloc:
        raise HTTPException(
            500,
            "The Sage 200 token page needs [api] base_url (the URL people open Airflow at, e.g. "
            "https://airflow.example.com): the OAuth callback URL and the allowed origin are built from it.",
        )
    return base_url


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _callback_url() -> str:
    """``<[api] base_url>/sage200/oauth/callback``: the redirect URI to register with Sage."""
    return f"{_base_url()}/sage200/oauth/callback"


def same_origin(request: Request) -> None:
    """Refuse a cookie-authenticated POST that did not come from the Airflow UI's own origin (CSRF)."""
    if request.headers.get("authorization"):
        return  # a bearer token: a browser never attaches one to another site's request
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent or _origin(sent) != _origin(_base_url()):
        raise HTTPException(403, "This action must be started from the Sage 200 tokens page of this Airflow.")


def _notice_redirect(path: str, kind: str, text: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?" + urlencode({kind: seal_notice(text)}), status_code=303)


#: Seconds the page waits for Sage to list one connection's sites (all connections are asked at once).
SITES_TIMEOUT = 5.0


def _connection_view(conn_id: str) -> ConnectionView:
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
            view.status = (
                hook.token_status()
            )  # a rejected consent is recorded with the token: the badge says so
    return view


def _connection_views(conn_ids: list[str]) -> list[ConnectionView]:
    """Every connection's view, asked for concurrently; one Sage that does not answer delays no other card."""
    if not conn_ids:
        return []
    pool = ThreadPoolExecutor(max_workers=min(8, len(conn_ids)), thread_name_prefix="sage200-page")
    futures = [pool.submit(_connection_view, conn_id) for conn_id in conn_ids]
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


def _card(conn_id: str) -> str:
    return render_card(_connection_view(conn_id))


def _page(message: str | None = None, error: str | None = None) -> HTMLResponse:
    views = _connection_views(_sage200_conn_ids())
    return HTMLResponse(render_page(views, open_notice(message), open_notice(error)))


class MaskCallbackQuery:
    """ASGI middleware: register the OAuth callback's ``code`` and ``state`` with the log masker first.

    The API server's access log records the query string of every request after it is answered, also when the
    auth dependencies refuse it (401 without a session, 403 for a viewer) before the handler runs; so the values
    are masked here, before routing, both as sent (URL-encoded, as uvicorn's access log shows them) and decoded.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/oauth/callback"):
            from airflow_provider_sage200.masking import mask

            for pair in scope.get("query_string", b"").decode("latin-1").split("&"):
                name, _, raw = pair.partition("=")
                if unquote_plus(name) in ("code", "state") and raw:
                    mask(raw)
                    mask(unquote_plus(raw))
        await self.app(scope, receive, send)


def create_app() -> FastAPI:
    app = FastAPI(title="Sage 200 tokens", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(MaskCallbackQuery)
    can_edit_variables = [Depends(requires_access_variable("PUT"))]
    can_act = [*can_edit_variables, Depends(same_origin)]

    @app.get("/", response_class=HTMLResponse, dependencies=can_edit_variables)
    def index(message: str | None = None, error: str | None = None) -> HTMLResponse:
        return _page(message, error)

    @app.post("/connections/{conn_id}/refresh", dependencies=can_act)
    def refresh(conn_id: str) -> RedirectResponse:
        from airflow_provider_sage200.hooks.sage200 import Sage200Hook
        from airflow_provider_sage200.token import refresh_outcome

        try:
            hook = Sage200Hook(conn_id)
            before = hook.token_status()
            _, outcome = refresh_outcome(before, hook.refresh(force=True))
            return _notice_redirect("../../", "message", f"{conn_id}: {outcome}")
        except Exception as exc:
            return _notice_redirect(
                "../../", "error", error_sentence(f"Refresh of {conn_id} failed", exc, conn_id)
            )

    @app.post("/connections/{conn_id}/authorize", dependencies=can_act)
    def authorize(conn_id: str, user: GetUserDep) -> RedirectResponse:
        from airflow_provider_sage200.hooks.sage200 import Sage200Hook

        verifier, challenge = pkce_pair()
        state = seal(user.get_id(), conn_id, verifier)
        url = Sage200Hook(conn_id).authorization_url(state, _callback_url(), code_challenge=challenge)
        return RedirectResponse(url, status_code=303)

    @app.get("/oauth/callback", dependencies=can_edit_variables)
    def callback(
        user: GetUserDep,
        state: str = "",
        code: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> RedirectResponse:
        from airflow_provider_sage200.hooks.sage200 import Sage200Hook

        try:
            sealed = open_state(state, user.get_id())
        except ValueError as exc:
            return _notice_redirect("../", "error", f"Consent refused: {exc}.")
        if error or not code:
            detail = f"{error}: {error_description}" if error else "no authorization code"
            return _notice_redirect("../", "error", printable(f"Sage ID said {detail}"))
        try:
            status = Sage200Hook(sealed.conn_id).exchange_code(code, _callback_url(), sealed.code_verifier)
        except Exception as exc:
            return _notice_redirect("../", "error", f"Code exchange failed: {exc}")
        return _notice_redirect(
            "../",
            "message",
            f"New token stored for {sealed.conn_id}; refresh token expires {status.refresh_token_expires_at}.",
        )

    return app
