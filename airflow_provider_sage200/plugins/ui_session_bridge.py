"""Airflow 3.0 only: carry the person's Airflow UI login to the token page.

Airflow 3.0's UI keeps the user's JWT in the browser's localStorage (key ``token``) and deletes the ``_token``
cookie its login set, and 3.0's API server reads a JWT from the ``Authorization`` header only. A plain navigation
to ``/sage200/`` (a bookmark, or Sage ID's redirect back to the OAuth callback) therefore reaches the page without
credentials. From 3.1 the cookie stays and the API server reads it, as for every plugin page; this middleware makes
3.0 behave the same:

* a GET without credentials gets a small page whose script copies the UI's token into a ``_token`` cookie scoped
  to the token page's path (SameSite=Lax, as 3.1 sets it; Secure over https) and reloads; without a token it asks
  the person to sign in to Airflow;
* a request carrying that cookie goes on with it as its bearer token, marked :data:`FROM_COOKIE` so the page's
  same-origin check for POSTs still applies (:func:`~airflow_provider_sage200.plugins.token_page.same_origin`);
* a GET the API server answers 401 (the token expired) gets the same small page, which takes the UI's newer token
  or asks the person to sign in again.

The cookie holds the token the UI already keeps where any script of the origin can read it.
"""

from __future__ import annotations

import json
from http.cookies import CookieError, SimpleCookie
from typing import Any

from starlette.responses import HTMLResponse

#: The cookie Airflow 3.1+ authenticates browser requests with, here scoped to the token page's path.
COOKIE = "_token"
#: Where Airflow 3.0's UI keeps the JWT in localStorage.
UI_TOKEN_KEY = "token"
#: ASGI scope key: the ``Authorization`` header was made from the cookie (so the request may be cross-site).
FROM_COOKIE = "sage200.authorization_from_cookie"

_SIGN_IN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sage 200 tokens</title></head>
<body style="font-family: system-ui, sans-serif; margin: 2rem">
<p id="sign-in" hidden>Sign in to Airflow first, then open this page again: <a href={ui}>Airflow</a>.</p>
<script>
(() => {{
  const token = localStorage.getItem({key});
  const sent = (document.cookie.split("; ").find((c) => c.startsWith({prefix})) || "").slice({skip});
  if (token && token !== sent) {{
    document.cookie = {prefix} + token + {attributes};
    location.reload();
  }} else {{
    document.getElementById("sign-in").hidden = false;
  }}
}})();
</script>
</body></html>
"""


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key.lower() == name), None)


def _cookie(scope: dict[str, Any]) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    try:
        morsel = SimpleCookie(raw.decode("latin-1")).get(COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel is not None and morsel.value else None


def sign_in_page(scope: dict[str, Any]) -> HTMLResponse:
    """The small page that copies the UI's token into the cookie, or asks the person to sign in (401)."""
    path = scope.get("root_path") or "/"
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    html = _SIGN_IN.format(
        ui=json.dumps(path.rsplit("/sage200", 1)[0] + "/"),
        key=json.dumps(UI_TOKEN_KEY),
        prefix=json.dumps(f"{COOKIE}="),
        skip=len(COOKIE) + 1,
        attributes=json.dumps(f"; path={path}; SameSite=Lax{secure}"),
    )
    return HTMLResponse(html, status_code=401, headers={"Cache-Control": "no-store"})


class UiSessionBridge:
    """ASGI middleware of the token page's app on Airflow 3.0 (see the module's docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or _header(scope, b"authorization"):
            await self.app(scope, receive, send)
            return
        token = _cookie(scope)
        if token is None:
            if scope["method"] == "GET":
                await sign_in_page(scope)(scope, receive, send)
            else:
                await self.app(scope, receive, send)  # refused by the page's auth dependencies
            return
        bearer = (b"authorization", f"Bearer {token}".encode("latin-1"))
        scope = {**scope, "headers": [*scope["headers"], bearer], FROM_COOKIE: True}
        if scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        refused = False

        async def send_or_sign_in(message: dict[str, Any]) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 401:
                refused = True
                await sign_in_page(scope)(scope, receive, send)
            elif not refused:
                await send(message)

        await self.app(scope, receive, send_or_sign_in)
