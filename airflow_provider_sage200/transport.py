"""HTTP behaviour shared by API calls and Sage ID calls: timeouts, retries and error mapping.

Retry table (one place; the hook and the token client both use it):

=============================  ==========================  =====================================
what happened                  GET / PUT / DELETE          POST (incl. token requests)
=============================  ==========================  =====================================
429                            retry after ``Retry-After``  retry after ``Retry-After`` (not processed)
502 / 503 / 504, HTML gateway  retry with backoff + jitter  fail: the write may have happened
connection refused / connect   retry with backoff + jitter  retry (nothing reached the server)
timeout
read timeout, dropped or       retry with backoff + jitter  fail: the write may have happened
truncated response
400 / 403 / 404 / other 4xx    fail at once                 fail at once
401                            the hook refreshes once and repeats the call, then fails
=============================  ==========================  =====================================

Attempts and total time are bounded by :class:`RetryPolicy`.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import requests
from requests.exceptions import ChunkedEncodingError, ConnectTimeout, ContentDecodingError
from urllib3.exceptions import NewConnectionError

from airflow_provider_sage200.exceptions import (
    Sage200ApiError,
    Sage200ClientError,
    Sage200RateLimitError,
    Sage200ServerError,
)
from airflow_provider_sage200.query import RAW_RECORDS, check_utf8, is_record_path  # noqa: F401 (RAW_RECORDS re-exported)

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
# The methods the Sage 200 API takes, and those that may be repeated after an ambiguous failure.
ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE")
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE"})

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and pacing of retries.

    :param max_attempts: attempts in total, the first included.
    :param backoff_base: first backoff in seconds; doubles per attempt, with "equal jitter" (half fixed, half
        random), so the waits add up to at least half the ceilings: the defaults wait >= 60 s over 10 attempts,
        enough to ride out a Professional tunnel restarting (about 30 s of 503s).
    :param backoff_max: largest backoff ceiling.
    :param max_elapsed: no new attempt starts after this many seconds since the first.
    :param retry_after_max: the longest ``Retry-After`` that is honoured; longer waits fail instead.
    :param connect_timeout: seconds to establish a connection.
    :param read_timeout: seconds to wait for response bytes.
    """

    max_attempts: int = 10
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_elapsed: float = 300.0
    retry_after_max: float = 120.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @classmethod
    def from_config(cls) -> RetryPolicy:
        """The policy set in the ``[sage200]`` config section, each option defaulting to the field's default."""
        from airflow_provider_sage200.settings import from_config

        return from_config(cls, RETRY_OPTIONS)

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


# [sage200] option -> RetryPolicy field.
RETRY_OPTIONS = {
    "connect_timeout_seconds": "connect_timeout",
    "read_timeout_seconds": "read_timeout",
    "max_attempts": "max_attempts",
    "max_retry_seconds": "max_elapsed",
    "backoff_base_seconds": "backoff_base",
}


# delta-seconds is ASCII digits only (RFC 9110); str.isdigit() would also take "²", which float() refuses.
_DELTA_SECONDS = re.compile(r"[0-9]{1,12}")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Return the wait a ``Retry-After`` header asks for, in seconds (delta-seconds or HTTP-date).

    Anything else (``²``, ``1.5``, ``-1``, text) is ``None``: the normal backoff applies.
    """
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_message(response: requests.Response) -> str:
    """Sage's own error text, from whichever of its error-body shapes arrived (never request data)."""
    text = response.text or ""
    try:
        body: Any = response.json()
    except ValueError:
        if "<html" in text[:500].lower():
            return f"the gateway returned an HTML error page ({response.reason or response.status_code})"
        return text[:300].strip() or (response.reason or f"HTTP {response.status_code}")
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        for key in ("Message", "message", "error_description", "$message", "error", "title"):
            if body.get(key):
                detail = body.get("ExceptionMessage") or body.get("detail")
                return f"{body[key]} ({detail})" if detail else str(body[key])
    return json.dumps(body)[:300]


def not_json_message(response: requests.Response) -> str:
    """Explain a successful answer whose body is not the JSON Sage 200 always sends."""
    content_type = response.headers.get("Content-Type")
    if response.text.lstrip()[:1] == "<":
        return (
            f"the response is an HTML page (Content-Type {content_type!r}), not JSON: the connection's api_url "
            "points at a web page or a sign-in proxy rather than the Sage 200 API (Professional: the Microsoft "
            "Entra application proxy must pass API calls through without pre-authentication)"
        )
    return (
        f"the response is not valid JSON (Content-Type {content_type!r}, {len(response.content)} bytes): the "
        "body was cut short or is not from the Sage 200 API"
    )


def raise_for_response(
    response: requests.Response, *, method: str, endpoint: str, api_hints: bool = True
) -> requests.Response:
    """Return ``response`` when it succeeded, else raise the matching :class:`Sage200ApiError`.

    :param api_hints: add what to check when the Sage 200 API answers 403 or 404 (not for Sage ID).
    """
    if response.ok:
        return response
    status = response.status_code
    kwargs = {"method": method, "endpoint": endpoint, "status_code": status, "body": response.text[:2000]}
    message = error_message(response)
    hint = _status_hint(status, endpoint) if api_hints else None
    if hint:
        kwargs["hint"] = hint
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise Sage200RateLimitError(message, retry_after=retry_after, **kwargs)
    if status >= 500:
        raise Sage200ServerError(message, **kwargs)
    raise Sage200ClientError(message, **kwargs)


def _status_hint(status: int, endpoint: str) -> str | None:
    """What to check when Sage 200 (not Sage ID) answers 403 or 404."""
    if status == 403:
        return (
            "Check the connection's site_id and company_id: `sage200 sites` lists the site/company pairs this "
            "Sage ID user can reach"
        )
    if status == 404 and not is_record_path(endpoint):
        return (
            "Check the endpoint name, and the connection's edition: Sage 200 Standard is 'standard' "
            "(/uk/sage200/), Professional is 'professional' (/uk/sage200extra/); the wrong edition answers 404 "
            "everywhere"
        )
    return None


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


class RedirectGuard:
    """A :class:`requests.Session` mixin deciding which redirects are followed.

    Never followed: a redirect of anything but a read (GET), one to another origin (scheme, host, port), one from
    https to http, and, with ``follow_reads=False`` (token requests), any redirect at all: the request carries the
    client secret, a refresh token or the bearer token and subscription key, and 301/302 would turn a write into a
    GET. The refusal is a :class:`Sage200ClientError` naming the status and the Location (without its query).
    """

    follow_reads = True
    max_redirects = 3

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)  # type: ignore[misc]
        if target is None:
            return None
        from urllib.parse import urljoin

        location = urljoin(resp.url, target)
        request = resp.request
        if not (self.follow_reads and request.method == "GET" and _origin(location) == _origin(request.url)):
            parts = urlsplit(location)
            shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
            raise Sage200ClientError(
                f"the server answered with a redirect (HTTP {resp.status_code}) to {shown}; it was not followed: "
                "a Sage request is never redirected to another origin, to http, or as a write (it carries "
                "credentials). Set the connection's URL to the final address",
                method=request.method or "?",
                endpoint=urlsplit(request.url).path,
                status_code=resp.status_code,
            )
        return target


class GuardedSession(RedirectGuard, requests.Session):
    """The API session: reads follow same-origin redirects only; nothing else is redirected."""


def was_not_sent(exc: BaseException) -> bool:
    """True when a transport error proves the request never reached the server (refused, connect timeout)."""
    if isinstance(exc, ConnectTimeout):
        return True
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        linked = (getattr(current, "reason", None), current.__cause__, current.__context__, *current.args)
        stack.extend(item for item in linked if isinstance(item, BaseException))
    return False


def send_with_retries(
    send: Callable[[], T],
    *,
    method: str,
    endpoint: str,
    policy: RetryPolicy,
    url_field: str = "api_url",
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``send`` until it succeeds or the retry table says stop; raise a :class:`Sage200ApiError`.

    ``send`` performs one attempt and returns its result (for a request: the body fully read and decoded). It
    reports an HTTP error by raising :class:`Sage200ApiError` (:func:`raise_for_response`) and a broken
    connection by letting the :class:`requests.RequestException` out; anything else it raises is not retried.

    :param url_field: the connection field naming the host, for a message when it cannot be reached.
    """
    started = time.monotonic()
    idempotent = method.upper() in IDEMPOTENT_METHODS
    attempt = 0
    while True:
        attempt += 1
        try:
            return send()
        except Sage200ApiError as exc:
            error: Sage200ApiError = exc
            retryable = exc.status_code in RETRYABLE_STATUS and (idempotent or exc.status_code == 429)
            wait = exc.retry_after if isinstance(exc, Sage200RateLimitError) else None
        except requests.RequestException as exc:
            not_sent = was_not_sent(exc)
            error = Sage200ServerError(
                _transport_message(exc, idempotent or not_sent, url_field), method=method, endpoint=endpoint
            )
            retryable = idempotent or not_sent
            wait = None
        if not retryable:
            raise error
        elapsed = time.monotonic() - started
        if wait is not None and (wait > policy.retry_after_max or elapsed + wait > policy.max_elapsed):
            raise _with_note(
                error,
                f"the server asked to wait {describe_seconds(wait)} ({wait:.0f} s) before retrying, more than "
                f"the retry budget allows (at most {policy.retry_after_max:.0f} s per wait, "
                f"{policy.max_elapsed:.0f} s in all); not retried",
            ) from None
        # A Retry-After shorter than the backoff (0, say) would retry in a tight loop: the backoff is the floor.
        delay = max(policy.backoff(attempt), wait or 0.0)
        if attempt >= policy.max_attempts or elapsed + delay > policy.max_elapsed:
            raise _with_note(error, f"gave up after {attempt} attempts in {elapsed:.0f}s") from None
        log.warning(
            "Sage 200 %s %s: %s; retrying in %.1fs (attempt %d of %d).",
            method,
            endpoint,
            error.message,
            delay,
            attempt + 1,
            policy.max_attempts,
        )
        sleep(delay)


def _with_note(error: Sage200ApiError, note: str) -> Sage200ApiError:
    """``error`` again, its message followed by ``note`` in parentheses."""
    kwargs: dict[str, Any] = {}
    if isinstance(error, Sage200RateLimitError):
        kwargs["retry_after"] = error.retry_after
    return type(error)(
        f"{error.message} ({note})",
        method=error.method,
        endpoint=error.endpoint,
        status_code=error.status_code,
        body=error.body,
        hint=error.hint,
        **kwargs,
    )


def describe_seconds(seconds: float) -> str:
    """``seconds`` in the largest whole unit that fits: "1 day", "2 hours", "10 minutes", "45 seconds"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    count = round(seconds)
    return f"{count} second{'' if count == 1 else 's'}"


class TruncatedBody(ContentDecodingError):
    """A complete response whose JSON is cut short: retried like a broken connection, for reads only."""


def read_json(
    response: requests.Response, decoder: msgspec.json.Decoder | None = None, *, endpoint: str = ""
) -> Any:
    """Decode a successful response's JSON once; a cut-short body raises :class:`TruncatedBody`.

    HTML (a gateway or sign-in page) and empty bodies are left to the caller: retrying cannot fix them.

    :param decoder: a typed decoder (e.g. :data:`RAW_RECORDS`); a body of another shape is decoded as any JSON,
        for the caller to reject with a message about what it got.
    :param endpoint: named in the :class:`Sage200ServerError` for a body that is not UTF-8 (not retried).
    """
    if not response.ok or not response.content or response.content.lstrip()[:1] == b"<":
        return None
    try:
        if decoder is not None:
            try:
                return decoder.decode(response.content)
            except msgspec.ValidationError:
                pass
        return msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        check_utf8(response.content, endpoint)
        raise TruncatedBody(not_json_message(response), response=response) from None


def _transport_message(exc: requests.RequestException, safe_to_retry: bool, url_field: str) -> str:
    kind = {
        requests.exceptions.ConnectTimeout: "connection timed out",
        requests.exceptions.ReadTimeout: "no response within the read timeout",
        ChunkedEncodingError: "the connection broke while reading the response",
        ContentDecodingError: "the response body could not be decoded",
    }.get(type(exc), "connection failed")
    if isinstance(exc, TruncatedBody):
        kind = str(exc)
    if was_not_sent(exc):
        # Name the host (never the path or query) and the connection field that chose it.
        url = getattr(exc.request, "url", None) or ""
        parts = urlsplit(url)
        if parts.scheme and parts.hostname:
            origin = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            kind += (
                f" to {origin}; check the connection's {url_field} and that this worker can reach that host"
            )
    if safe_to_retry:
        return kind
    return f"{kind}; the server may or may not have processed this write, so it was not repeated"
