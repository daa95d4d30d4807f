"""The one-time Sage ID consent from a terminal: a loopback callback, or a pasted redirect URL."""

from __future__ import annotations

import errno
import secrets
import threading
import webbrowser
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from airflow_provider_sage200.connection import is_loopback_host
from airflow_provider_sage200.exceptions import Sage200AuthError, Sage200ConfigError
from airflow_provider_sage200.oauth import printable

# Seconds a browser connection may stay silent (a preconnect) before the callback server drops it.
CONNECTION_TIMEOUT = 5.0
_STATE_MISMATCH = "the state parameter is missing or does not match (possible CSRF); try again"


@dataclass
class CallbackResult:
    """What the redirect back from Sage ID carried."""

    code: str | None = None
    error: str | None = None


def state_matches(url: str, expected_state: str) -> bool:
    state = parse_qs(urlsplit(url).query).get("state", [None])[0]
    return bool(state) and secrets.compare_digest(state, expected_state)


def parse_redirect(url: str, expected_state: str) -> CallbackResult:
    """Check ``state`` first, then extract the code (or Sage's error) from a redirect URL.

    An ``error`` is believed only with the right ``state``: anyone can send the callback ``?error=...``.
    """
    if not state_matches(url, expected_state):
        return CallbackResult(error=_STATE_MISMATCH)
    query = parse_qs(urlsplit(url).query)
    if "error" in query:
        description = query.get("error_description", [""])[0]
        return CallbackResult(error=printable(f"{query['error'][0]}: {description}".rstrip(": ")))
    code = query.get("code", [None])[0]
    if not code:
        return CallbackResult(error="the redirect carried no authorization code")
    return CallbackResult(code=code)


class CallbackServer:
    """The loopback ``redirect_uri``, listening from construction (so a port in use is found before the consent
    URL is shown) until :meth:`wait` returns.

    Listens on 127.0.0.1 only and serves each connection in its own thread with a short socket timeout, so an
    idle connection (a browser's preconnect) cannot hold up the redirect. Requests to other paths (a favicon)
    get 404; a redirect whose ``state`` is missing or wrong (a forged request, even one carrying ``?error=``)
    gets 400 and is ignored. The first redirect with the right ``state`` ends the wait.
    """

    def __init__(self, redirect_uri: str, expected_state: str) -> None:
        parts = urlsplit(redirect_uri)
        if not is_loopback_host(parts.hostname) or parts.port is None:
            raise Sage200ConfigError(
                f"redirect_uri {redirect_uri!r} is not a loopback URL with a port; use --paste, or register "
                "e.g. http://127.0.0.1:8765/callback with Sage and set it as the connection's redirect_uri."
            )
        self.redirect_uri = redirect_uri
        self.result = CallbackResult()
        self.ignored = 0
        self._done = threading.Event()
        self._lock = threading.Lock()
        callback = self
        path = parts.path or "/"

        class Handler(BaseHTTPRequestHandler):
            timeout = CONNECTION_TIMEOUT

            def do_GET(self) -> None:
                if urlsplit(self.path).path != path:
                    self.send_error(404)
                    return
                with callback._lock:
                    if callback._done.is_set():
                        accepted = None
                    elif not state_matches(self.path, expected_state):
                        callback.ignored += 1
                        accepted = None
                    else:
                        callback.result = parse_redirect(self.path, expected_state)
                        accepted = callback.result
                        callback._done.set()
                ok = accepted is not None and accepted.code is not None
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                message = (
                    "Sage 200 consent received. You can close this tab."
                    if ok
                    else "Sage 200 consent failed."
                    if accepted is not None
                    else "Ignored: this request does not belong to the consent in progress."
                )
                self.wfile.write(f"<html><body><p>{message}</p></body></html>".encode())

            def log_message(self, format: str, *args: object) -> None:  # the query string holds the code
                pass

        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", parts.port), Handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise Sage200ConfigError(
                f"Cannot listen for the redirect on {redirect_uri}: port {parts.port} of 127.0.0.1 is in use by "
                "another program, which would receive the authorization code. Nothing was shown or opened. Stop "
                "that program, or use --paste."
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,), daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> CallbackResult:
        """Return what the redirect carried; stop listening whatever happens."""
        try:
            if not self._done.wait(timeout):
                raise Sage200AuthError(
                    f"No redirect from Sage ID arrived on {self.redirect_uri} within {timeout:.0f}s; nothing was "
                    "stored. Run the command again and finish the consent in the browser sooner, give a longer "
                    "--timeout, or use --paste when the browser runs on another machine."
                )
            return self.result
        finally:
            self.close()

    def close(self) -> None:
        self._done.set()
        self._server.shutdown()
        self._server.server_close()


def wait_for_callback(redirect_uri: str, expected_state: str, timeout: float) -> CallbackResult:
    """Listen on the loopback ``redirect_uri`` and return what the redirect carried (see :class:`CallbackServer`)."""
    return CallbackServer(redirect_uri, expected_state).wait(timeout)


def open_browser(url: str) -> bool:
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False
