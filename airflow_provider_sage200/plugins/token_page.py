"""The "Sage 200 tokens" page: token status per connection, "Refresh now" and "Get new token" with the OAuth callback.

Served by the API server under ``/sage200``. Every route needs an authenticated Airflow user allowed to edit
Variables. Actions are POSTs, and a POST authenticated by the session cookie must come from the Airflow UI's own
origin (``Origin``, else ``Referer``, equal to ``[api] base_url``'s): the cookie is SameSite=Lax, which another
site on the same registrable domain would get past. Notices are sealed with the Fernet key, so the page shows
only messages it wrote itself, and the OAuth callback URL comes from ``[api] base_url``, never from the request's
``Host`` header. No token value is ever rendered.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote, unquote_plus, urlencode, urlsplit

from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_variable
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from airflow_provider_sage200.cli.login import pkce_pair, printable
from airflow_provider_sage200.plugins.oauth_state import open_notice, open_state, seal, seal_notice


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


def _card(conn_id: str) -> str:
    from airflow_provider_sage200.hooks.sage200 import Sage200Hook

    e = html.escape
    try:
        hook = Sage200Hook(conn_id)
        status = hook.token_status()
        sites: list[dict[str, Any]] = []
        if status.access_token_valid:
            try:
                sites = hook.get_sites()
            except Exception as exc:
                sites = [{"company_name": f"(could not list sites: {type(exc).__name__})"}]
        rows = "".join(
            f"<li>{e(str(s.get('company_name', '')))} (X-Company {e(str(s.get('company_id', '')))}, "
            f"X-Site {e(str(s.get('site_id', '')))})</li>"
            for s in sites
        )
        body = (
            f"<p class='status'>{e(status.describe()).replace(chr(10), '<br>')}</p>"
            f"<ul class='sites'>{rows}</ul>"
        )
    except Exception as exc:
        body = f"<p class='error'>{e(type(exc).__name__)}: {e(str(exc))}</p>"
    q = quote(conn_id)
    return (
        f"<section data-conn-id='{e(conn_id)}'><h2>{e(conn_id)}</h2>{body}"
        f"<form method='post' action='connections/{q}/refresh'><button>Refresh now</button></form> "
        f"<form method='post' action='connections/{q}/authorize'><button>Get new token</button></form></section>"
    )


def _page(message: str | None = None, error: str | None = None) -> HTMLResponse:
    notice = ""
    message, error = open_notice(message), open_notice(error)
    if message:
        notice = f"<p class='message'>{html.escape(message)}</p>"
    if error:
        notice = f"<p class='error'>{html.escape(error)}</p>"
    cards = "".join(_card(c) for c in _sage200_conn_ids()) or "<p>No connections of type sage200.</p>"
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'><title>Sage 200 tokens</title>"
        "<style>body{font-family:sans-serif;margin:2em}section{border:1px solid #ccc;padding:1em;margin:1em 0}"
        "form{display:inline}.error{color:#b00}.message{color:#070}</style></head>"
        f"<body><h1>Sage 200 tokens</h1>{notice}{cards}</body></html>"
    )


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
            return _notice_redirect("../../", "error", f"Refresh of {conn_id} failed: {exc}")

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
