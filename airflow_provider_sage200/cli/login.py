"""The one-time Sage ID consent from a terminal: a one-shot loopback callback, or a pasted redirect URL."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import webbrowser
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from airflow_provider_sage200.connection import is_loopback_host
from airflow_provider_sage200.exceptions import Sage200AuthError, Sage200ConfigError


@dataclass
class CallbackResult:
    """What the redirect back from Sage ID carried."""

    code: str | None = None
    error: str | None = None


def pkce_pair() -> tuple[str, str]:
    """Return ``(code_verifier, S256 code_challenge)``."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def parse_redirect(url: str, expected_state: str) -> CallbackResult:
    """Check ``state`` and extract the code (or Sage's error) from a redirect URL."""
    query = parse_qs(urlsplit(url).query)
    if "error" in query:
        description = query.get("error_description", [""])[0]
        return CallbackResult(error=f"{query['error'][0]}: {description}".rstrip(": "))
    state = query.get("state", [None])[0]
    if not state or not secrets.compare_digest(state, expected_state):
        return CallbackResult(
            error="the state parameter is missing or does not match (possible CSRF); try again"
        )
    code = query.get("code", [None])[0]
    if not code:
        return CallbackResult(error="the redirect carried no authorization code")
    return CallbackResult(code=code)


def wait_for_callback(redirect_uri: str, expected_state: str, timeout: float) -> CallbackResult:
    """Serve one request on the loopback ``redirect_uri`` and return what it carried.

    Listens on 127.0.0.1 only, answers exactly one request to the redirect path (other paths, such as a
    browser's favicon request, get 404 and do not count), and gives up after ``timeout`` seconds.
    """
    parts = urlsplit(redirect_uri)
    if not is_loopback_host(parts.hostname) or parts.port is None:
        raise Sage200ConfigError(
            f"redirect_uri {redirect_uri!r} is not a loopback URL with a port; use --paste, or register "
            "e.g. http://127.0.0.1:8765/callback with Sage and set it as the connection's redirect_uri."
        )
    result = CallbackResult()
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlsplit(self.path).path != (parts.path or "/"):
                self.send_error(404)
                return
            result.__dict__.update(parse_redirect(self.path, expected_state).__dict__)
            ok = result.code is not None
            self.send_response(200 if ok else 400)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            message = (
                "Sage 200 consent received. You can close this tab." if ok else "Sage 200 consent failed."
            )
            self.wfile.write(f"<html><body><p>{message}</p></body></html>".encode())
            done.set()

        def log_message(self, format: str, *args: object) -> None:  # the query string holds the code
            pass

    server = HTTPServer(("127.0.0.1", parts.port), Handler)
    server.timeout = 0.5
    thread = threading.Thread(target=lambda: _serve_until(server, done), daemon=True)
    try:
        thread.start()
        if not done.wait(timeout):
            raise Sage200AuthError(
                f"No redirect from Sage ID arrived on {redirect_uri} within {timeout:.0f}s; nothing was stored. "
                "Run the command again and finish the consent in the browser sooner, give a longer --timeout, "
                "or use --paste when the browser runs on another machine."
            )
    finally:
        # Stop the serving thread before closing its socket (closing first crashes it mid-select).
        done.set()
        thread.join(2)
        server.server_close()
    return result


def _serve_until(server: HTTPServer, done: threading.Event) -> None:
    while not done.is_set():
        server.handle_request()


def open_browser(url: str) -> bool:
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False
