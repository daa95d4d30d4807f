"""Exceptions raised by the Sage 200 provider.

The tree follows what the caller will do next::

    Sage200Error (AirflowException)
    ├── Sage200ConfigError            bad or missing connection field / operator argument: fix the DAG or connection
    ├── Sage200AuthError              a token problem
    │   ├── Sage200ReauthorizationRequired   only a new consent helps: run ``sage200 auth login``
    │   └── Sage200RefreshRefused     Sage ID said "not now" to an early refresh (handled by the provider)
    └── Sage200ApiError               Sage answered with an error status (``status_code`` etc. attached)
        ├── Sage200ClientError        4xx: the request is wrong; never retried
        ├── Sage200RateLimitError     429: retried, honouring ``retry_after``
        └── Sage200ServerError        5xx, gateway pages, dropped connections, timeouts; retried when safe

No exception message ever contains a token or the client secret.
"""

from __future__ import annotations

from airflow_provider_sage200.version_compat import AirflowException


class Sage200Error(AirflowException):
    """Base class for every error raised by this provider."""


class Sage200ConfigError(Sage200Error, ValueError):
    """A connection field, operator argument or query option is invalid; nothing was sent."""


class Sage200AuthError(Sage200Error):
    """The OAuth tokens could not be obtained, refreshed or stored.

    :param oauth_error: Sage ID's error code (``invalid_grant``, ``invalid_client``...), when it answered one.
    :param sage_message: Sage ID's own description of the error (never a secret).
    """

    def __init__(
        self, message: str, *, oauth_error: str | None = None, sage_message: str | None = None
    ) -> None:
        super().__init__(message)
        self.oauth_error = oauth_error
        self.sage_message = sage_message


class Sage200RefreshRefused(Sage200AuthError):
    """Sage ID refused to refresh a grant whose access token has not expired yet: "not now", not a failure."""


class Sage200ReauthorizationRequired(Sage200AuthError):
    """The refresh token is missing, expired or revoked: a person must consent again."""


class Sage200ApiError(Sage200Error):
    """Sage 200 answered with an error, or did not answer at all.

    :param message: Sage's own message, normalised from whichever error body shape arrived.
    :param method: HTTP method of the failed request.
    :param endpoint: endpoint path relative to the API base URL (no query string, so no secrets).
    :param status_code: HTTP status, or ``None`` when no response arrived.
    :param body: the response body (truncated), never request headers.
    :param hint: what to check in the connection or the call, appended to the message.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        endpoint: str,
        status_code: int | None = None,
        body: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.endpoint = endpoint
        self.status_code = status_code
        self.body = body
        self.hint = hint
        status = f"HTTP {status_code}" if status_code is not None else "no response"
        text = f"Sage 200 {method} {endpoint} failed ({status}): {message}"
        if hint:
            text += f"{'' if text.endswith('.') else '.'} {hint}."
        super().__init__(text)


class Sage200ClientError(Sage200ApiError):
    """A 4xx answer: the request itself is wrong and retrying cannot help."""


class Sage200RateLimitError(Sage200ApiError):
    """A 429 answer; ``retry_after`` holds the server's requested wait in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Sage200ServerError(Sage200ApiError):
    """A 5xx answer, a gateway error page, a timeout or a broken connection."""
