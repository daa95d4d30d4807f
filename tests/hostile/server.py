"""A small hostile HTTP server of the tests' own (stdlib ``http.server``), standing in for Sage 200 or Sage ID.

A test gives it a *play*: a function from the :class:`Request` it received to the :class:`Reply` it sends.
Every request is recorded, and after ``max_requests`` the server answers 418, so a client that loops forever
against a misbehaving server still ends (the tests then assert the request count stayed small).

:class:`Collection` plays a Sage 200 collection of records with given ids and can misbehave the ways older or
broken servers do: cap ``$top``, ignore ``$filter`` or ``$skip``, answer ids going down, repeat the boundary record,
over-send past ``$top``, refuse ``$count`` or answer it with a list, put a non-UTF-8 byte in a record.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | list | dict | int | None = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Play = Callable[[Request], Reply]


class HostileServer:
    """``ThreadingHTTPServer`` on ``host`` (127.0.0.2 plays another host) playing ``play``; ``requests`` lists
    what reached it."""

    def __init__(self, play: Play, *, max_requests: int = 200, host: str = "127.0.0.1") -> None:
        self.play = play
        self.max_requests = max_requests
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    parts.path,
                    dict(parse_qsl(parts.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                with server._lock:
                    server.requests.append(request)
                    over = len(server.requests) > server.max_requests
                reply = Reply(418, {"message": "request budget spent"}) if over else server.play(request)
                body = reply.encoded()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def paths(self, prefix: str = "") -> list[Request]:
        return [r for r in self.requests if r.path.startswith(prefix)]


_ID_GT = re.compile(r"\bid gt (-?\d+)")
_ID_LT = re.compile(r"\bid lt (-?\d+)")


@dataclass
class Collection:
    """A collection of records with ``ids``, answering Sage 200 style OData paging (``id gt``/``id lt``, ``$top``,
    ``$skip``, ``$orderby id desc``, ``$count``), with the misbehaviours switched on by the fields below."""

    ids: list[int] | range
    cap: int | None = None  # return at most this many records, whatever $top says (older Professional builds)
    ignore_filter: bool = False
    ignore_skip: bool = False
    descending: bool = False  # ids going down whatever $orderby says
    repeat_boundary: bool = False  # each page starts with the last record of the previous one
    over_send: int = 0  # records sent beyond $top
    count: object = "exact"  # "exact", "refuse" (400) or any JSON value to answer
    body_for: Callable[[list[dict]], bytes] | None = None  # how a page is encoded (default JSON)
    record: Callable[[int], object] = lambda i: {"id": i, "document_no": f"{i:010d}"}

    def __call__(self, request: Request) -> Reply:
        q = request.query
        flt = "" if self.ignore_filter else q.get("$filter", "")
        lower = int(m.group(1)) if (m := _ID_GT.search(flt)) else None
        upper = int(m.group(1)) if (m := _ID_LT.search(flt)) else None
        selected = [i for i in self.ids if (lower is None or i > lower) and (upper is None or i < upper)]
        if q.get("$count") == "true":
            if self.count == "refuse":
                return Reply(400, {"message": "$count is not supported"})
            return Reply(200, len(selected) if self.count == "exact" else self.count)
        if self.descending or q.get("$orderby", "").endswith("desc"):
            selected.reverse()
        if self.repeat_boundary and lower is not None and lower in self.ids:
            selected.insert(0, lower)
        if not self.ignore_skip:
            selected = selected[int(q.get("$skip", 0)) :]
        top = int(q.get("$top", 500))
        if self.cap is not None:
            top = min(top, self.cap)
        page = [self.record(i) for i in selected[: top + self.over_send]]
        body = self.body_for(page) if self.body_for else json.dumps(page).encode()
        return Reply(200, body)
