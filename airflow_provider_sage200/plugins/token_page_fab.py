"""The "Sage 200 tokens" page on Airflow 2.11: a Flask-AppBuilder view in the webserver under ``/sage200``.

Imported only where :data:`~airflow_provider_sage200.version_compat.TOKEN_PAGE_KIND` is ``"flask"`` (by the
plugin's ``appbuilder_views``), so Airflow 3 never imports Flask or FAB. Only the wiring lives here; what the page
shows and does is :mod:`~airflow_provider_sage200.plugins.token_page_actions`, shared with the Airflow 3 app.

Every route needs a logged-in Airflow user allowed to edit Variables (``airflow.www.auth.has_access_variable``:
the login page without a session, the home page with "Access is Denied" without the permission). The webserver's
app-wide Flask-WTF ``CSRFProtect`` refuses a POST without the session's CSRF token, which each form carries as
a hidden ``csrf_token`` field. The OAuth callback URL comes from ``[webserver] base_url``.
"""

from __future__ import annotations

from airflow.www.auth import has_access_variable
from airflow.www.extensions.init_auth_manager import get_auth_manager
from flask import Blueprint, Response, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_wtf.csrf import generate_csrf

from airflow_provider_sage200.plugins import token_page_actions as actions

#: The menu entry: Admin → Sage 200 tokens.
MENU_NAME = "Sage 200 tokens"
MENU_CATEGORY = "Admin"


def _mask_callback_query() -> None:
    """Before routing and the login check: hide the callback's ``code`` and ``state`` from every log."""
    if request.path.endswith("/oauth/callback"):
        actions.mask_callback_query(request.query_string.decode("latin-1"))


def _user_id() -> str:
    return str(get_auth_manager().get_user().get_id())


def _not_configured(exc: actions.PageNotConfigured) -> Response:
    return Response(str(exc), status=500, mimetype="text/plain")


class Sage200TokensView(BaseView):
    """Token status per ``sage200`` connection, "Refresh now", "Get new token" and the OAuth callback."""

    route_base = "/sage200"
    default_view = "index"

    def create_blueprint(self, appbuilder, endpoint=None, static_folder=None) -> Blueprint:  # type: ignore[no-untyped-def]
        """FAB's blueprint for this view, masking the callback's query before any other handler runs."""
        blueprint = super().create_blueprint(appbuilder, endpoint=endpoint, static_folder=static_folder)
        blueprint.before_request(_mask_callback_query)
        return blueprint

    def _back(self, notice: actions.Notice) -> Response:
        return redirect(f"{url_for(f'{self.endpoint}.index')}?{notice.query()}", code=303)

    @expose("/")
    @has_access_variable("PUT")
    def index(self) -> str:
        """The page, with the notice an action sealed, if any."""
        return actions.page(
            request.args.get("message"),
            request.args.get("error"),
            hidden_fields={"csrf_token": generate_csrf()},
        )

    @expose("/connections/<conn_id>/refresh", methods=["POST"])
    @has_access_variable("PUT")
    def refresh(self, conn_id: str) -> Response:
        """Refresh the connection's access token now."""
        return self._back(actions.refresh(conn_id))

    @expose("/connections/<conn_id>/authorize", methods=["POST"])
    @has_access_variable("PUT")
    def authorize(self, conn_id: str) -> Response:
        """Send the browser to Sage ID's consent page (PKCE, state sealed for this user)."""
        try:
            return redirect(actions.authorization_url(conn_id, _user_id()), code=303)
        except actions.PageNotConfigured as exc:
            return _not_configured(exc)

    @expose("/oauth/callback")
    @has_access_variable("PUT")
    def callback(self) -> Response:
        """Sage ID's answer: exchange the code and store the token, if the state is this user's."""
        args = request.args
        notice = actions.callback(
            args.get("state", ""),
            _user_id(),
            args.get("code"),
            args.get("error"),
            args.get("error_description"),
        )
        return self._back(notice)


def appbuilder_view() -> dict[str, object]:
    """The plugin's ``appbuilder_views`` entry."""
    return {"name": MENU_NAME, "category": MENU_CATEGORY, "view": Sage200TokensView()}
