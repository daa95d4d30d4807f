"""The "Sage 200 tokens" page on Airflow 3: the FastAPI app the API server serves under ``/sage200``.

Only the wiring lives here; what the page shows and does is :mod:`~airflow_provider_sage200.plugins.token_page_actions`
(shared with the Flask-AppBuilder view of Airflow 2.11). Every route needs an authenticated Airflow user allowed
to edit Variables (on 3.0, whose API server reads no cookie, through
:mod:`~airflow_provider_sage200.plugins.ui_session_bridge`). Actions are POSTs, and a POST authenticated by the
session cookie must come from the Airflow UI's own origin (``Origin``, else ``Referer``, equal to
``[api] base_url``'s): the cookie is SameSite=Lax, which another site on the same registrable domain would get past.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_variable
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from airflow_provider_sage200.plugins import token_page_actions as actions
from airflow_provider_sage200.plugins.ui_session_bridge import FROM_COOKIE, UiSessionBridge
from airflow_provider_sage200.version_compat import API_READS_UI_COOKIE


def _base_url() -> str:
    try:
        return actions.base_url()
    except actions.PageNotConfigured as exc:
        raise HTTPException(500, str(exc)) from None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request) -> None:
    """Refuse a cookie-authenticated POST that did not come from the Airflow UI's own origin (CSRF)."""
    if request.headers.get("authorization") and not request.scope.get(FROM_COOKIE):
        return  # a bearer token: a browser never attaches one to another site's request
    sent = request.headers.get("origin") or request.headers.get("referer")
    if not sent or _origin(sent) != _origin(_base_url()):
        raise HTTPException(403, "This action must be started from the Sage 200 tokens page of this Airflow.")


def _notice_redirect(path: str, notice: actions.Notice) -> RedirectResponse:
    return RedirectResponse(f"{path}?{notice.query()}", status_code=303)


class MaskCallbackQuery:
    """ASGI middleware: register the OAuth callback's ``code`` and ``state`` with the log masker first.

    The API server's access log records the query string of every request after it is answered, also when the
    auth dependencies refuse it (401 without a session, 403 for a viewer) before the handler runs; so the values
    are masked here, before routing (:func:`~airflow_provider_sage200.plugins.token_page_actions.mask_callback_query`).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/oauth/callback"):
            actions.mask_callback_query(scope.get("query_string", b"").decode("latin-1"))
        await self.app(scope, receive, send)


def create_app() -> FastAPI:
    """The page's FastAPI app, to be mounted at ``/sage200``."""
    app = FastAPI(title="Sage 200 tokens", docs_url=None, redoc_url=None, openapi_url=None)
    if not API_READS_UI_COOKIE:
        app.add_middleware(UiSessionBridge)
    app.add_middleware(MaskCallbackQuery)  # the outermost: before anything can answer
    can_edit_variables = [Depends(requires_access_variable("PUT"))]
    can_act = [*can_edit_variables, Depends(same_origin)]

    @app.get("/", response_class=HTMLResponse, dependencies=can_edit_variables)
    def index(message: str | None = None, error: str | None = None) -> HTMLResponse:
        return HTMLResponse(actions.page(message, error))

    @app.post("/connections/{conn_id}/refresh", dependencies=can_act)
    def refresh(conn_id: str) -> RedirectResponse:
        return _notice_redirect("../../", actions.refresh(conn_id))

    @app.post("/connections/{conn_id}/authorize", dependencies=can_act)
    def authorize(conn_id: str, user: GetUserDep) -> RedirectResponse:
        _base_url()  # a missing base URL is a 500 saying so
        return RedirectResponse(actions.authorization_url(conn_id, user.get_id()), status_code=303)

    @app.get("/oauth/callback", dependencies=can_edit_variables)
    def callback(
        user: GetUserDep,
        state: str = "",
        code: str | None = None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> RedirectResponse:
        notice = actions.callback(state, user.get_id(), code, error, error_description)
        return _notice_redirect("../", notice)

    return app
