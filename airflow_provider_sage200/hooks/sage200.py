"""Hook for the Sage 200 (UK & Ireland) REST API, authenticated through Sage ID.

Client id and secret live in an Airflow connection of type ``sage200``. The rotating OAuth tokens live in
an Airflow Variable (``sage200_token__<conn_id>`` by default), Fernet-encrypted in the metastore and
refreshed in place. :mod:`airflow_provider_sage200.refresh` explains how a refresh stays single-use across
threads, processes and workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import Any

import msgspec
import requests
from requests.adapters import HTTPAdapter

from airflow_provider_sage200 import __version__
from airflow_provider_sage200.connection import DEFAULT_CONN_ID, Sage200ConnectionConfig
from airflow_provider_sage200.exceptions import (
    Sage200ApiError,
    Sage200AuthError,
    Sage200ConfigError,
    Sage200ServerError,
)
from airflow_provider_sage200.masking import warn_if_comms_logged_at_debug
from airflow_provider_sage200.oauth import SageIdClient
from airflow_provider_sage200.parallel import (
    AdaptiveConcurrency,
    iter_pages_parallel,
    validate_max_concurrency,
)
from airflow_provider_sage200.query import (
    DEFAULT_PAGE_SIZE,
    is_record_path,
    iter_pages,
    paging_key,
    paging_mode,
    validate_endpoint,
    validate_page_size,
    validate_query,
)
from airflow_provider_sage200.refresh import RefreshCoordinator, RefreshTiming
from airflow_provider_sage200.resources import resource_or_unknown
from airflow_provider_sage200.settings import option
from airflow_provider_sage200.token import TokenStatus
from airflow_provider_sage200.token_provider import REFRESH_MARGIN, Sage200TokenProvider
from airflow_provider_sage200.token_store import VariableTokenStore
from airflow_provider_sage200.transport import (
    ALLOWED_METHODS,
    RAW_RECORDS,
    GuardedSession,
    RetryPolicy,
    error_message,
    not_json_message,
    raise_for_response,
    read_json,
    send_with_retries,
)
from airflow_provider_sage200.version_compat import BaseHook, get_connection


class Sage200Hook(BaseHook):
    """Interact with Sage 200 through its REST API.

    .. seealso:: ``docs/reference.md`` for every method, and ``docs/concepts.md`` for the token lifecycle.

    :param sage200_conn_id: the ``sage200`` connection holding the client id and secret.
    :param refresh_margin: refresh the access token when fewer than this many seconds remain (default
        ``[sage200] refresh_margin_seconds``, 300; never more than half the token's lifetime).
    :param retry_policy: timeouts and retry bounds for API calls.
    :param refresh_timing: cross-worker lease timings (default from the ``[sage200]`` config section).
    :param pool_size: HTTP connections kept alive per host (raise it for parallel exports).
    """

    conn_name_attr = "sage200_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "sage200"
    hook_name = "Sage 200"

    # The connection form on Airflow 2.11, 3.0 and 3.1 (3.2+ reads conn-fields from provider info instead).
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from airflow_provider_sage200.connection_form import connection_form_widgets

        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_provider_sage200.connection_form import ui_field_behaviour

        return ui_field_behaviour()

    def __init__(
        self,
        sage200_conn_id: str = default_conn_name,
        *,
        refresh_margin: float | None = None,
        retry_policy: RetryPolicy | None = None,
        refresh_timing: RefreshTiming | None = None,
        pool_size: int = 10,
    ) -> None:
        super().__init__()
        self.sage200_conn_id = sage200_conn_id
        self.refresh_margin = (
            refresh_margin if refresh_margin is not None else option("refresh_margin_seconds", REFRESH_MARGIN)
        )
        self.retry_policy = retry_policy or RetryPolicy.from_config()
        self.refresh_timing = refresh_timing or RefreshTiming.from_config()
        self.pool_size = pool_size

    # -- configuration ---------------------------------------------------------------------------------

    @cached_property
    def config(self) -> Sage200ConnectionConfig:
        """The connection's settings, validated once."""
        warn_if_comms_logged_at_debug()
        return Sage200ConnectionConfig.from_connection(get_connection(self.sage200_conn_id))

    @cached_property
    def token_provider(self) -> Sage200TokenProvider:
        """When to refresh, and the per-process token cache (see :mod:`airflow_provider_sage200.token_provider`)."""
        return Sage200TokenProvider(
            self.config, refresh_margin=self.refresh_margin, refresh_timing=self.refresh_timing
        )

    @property
    def token_store(self) -> VariableTokenStore:
        return self.token_provider.store

    @property
    def sage_id(self) -> SageIdClient:
        return self.token_provider.sage_id

    @property
    def coordinator(self) -> RefreshCoordinator:
        return self.token_provider.coordinator

    def get_conn(self) -> requests.Session:
        """Return this hook's pooled, keep-alive HTTP session (TLS verification always on)."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        session = GuardedSession()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=self.pool_size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = f"airflow-provider-sage200/{__version__}"
        return session

    # -- tokens (the policy lives in Sage200TokenProvider) ----------------------------------------------

    def get_access_token(self) -> str:
        """Return a valid access token, refreshing it (once, system-wide) when it is about to expire."""
        return self.token_provider.get_access_token()

    def refresh(self, *, force: bool = True, min_remaining: float | None = None) -> TokenStatus:
        """Refresh the tokens through the rotation-safe path and return their status (no secrets).

        :param force: refresh even if the access token is still fresh (unless another worker refreshed it
            while this call waited).
        :param min_remaining: without ``force``, refresh only when fewer seconds than this remain.
        """
        return self.token_provider.refresh(force=force, min_remaining=min_remaining)

    def token_status(self) -> TokenStatus:
        """Report both tokens' expiry without refreshing or calling Sage."""
        return self.token_provider.token_status()

    def authorization_url(
        self, state: str, redirect_uri: str | None = None, code_challenge: str | None = None
    ) -> str:
        """Return the Sage ID consent URL for this connection.

        :param state: an unguessable value the callback must see again (CSRF protection).
        :param redirect_uri: where Sage ID sends the browser back; defaults to the connection's.
        :param code_challenge: optional PKCE S256 challenge.
        """
        return self.sage_id.authorization_url(state, redirect_uri, code_challenge)

    def exchange_code(
        self, code: str, redirect_uri: str | None = None, code_verifier: str | None = None
    ) -> TokenStatus:
        """Trade an authorization code for tokens and store them (a new consent resets the fixed expiry)."""
        return self.token_provider.exchange_code(code, redirect_uri, code_verifier)

    # -- HTTP ------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        *,
        site_headers: bool = True,
        limiter: AdaptiveConcurrency | None = None,
        json_decoder: msgspec.json.Decoder | None = None,
    ) -> requests.Response:
        """Send one request with authentication, site headers, timeouts and retries; return the response.

        :param method: GET, POST, PUT or DELETE.
        :param endpoint: path relative to the API base URL, e.g. ``sop_orders`` or ``customers/7``.
        :param params: OData query options (validated, URL-encoded).
        :param json: request body for POST/PUT.
        :param site_headers: send ``X-Site``/``X-Company`` (every endpoint except ``sites`` needs them).
        :param limiter: shared concurrency limit for parallel reads (backs off on 429/503/timeouts).
        :param json_decoder: a typed decoder for a GET's body (default: any JSON).
        :raises Sage200ClientError: on 400/403/404 (never retried), carrying Sage's message.
        :raises Sage200ConfigError: for a method other than GET, POST, PUT or DELETE (nothing sent).
        """
        response, _ = self._call(
            method,
            endpoint,
            params,
            json,
            site_headers=site_headers,
            limiter=limiter,
            json_decoder=json_decoder,
        )
        return response

    def _call(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        **options: Any,
    ) -> tuple[requests.Response, Any]:
        """:meth:`request` (``options``: its keyword arguments), returning the response and its decoded body."""
        site_headers: bool = options.get("site_headers", True)
        limiter: AdaptiveConcurrency | None = options.get("limiter")
        json_decoder: msgspec.json.Decoder | None = options.get("json_decoder")
        method = method.upper()
        if method not in ALLOWED_METHODS:
            raise Sage200ConfigError(
                f"method {method!r} is not supported; use one of {', '.join(ALLOWED_METHODS)}."
            )
        endpoint = validate_endpoint(endpoint)
        query = validate_query(params)
        url = self.config.api_url + endpoint
        headers = self._headers(site_headers=site_headers, has_body=json is not None)
        session = self.get_conn()
        timeout = self.retry_policy.timeout

        def send_once(access_token: str) -> tuple[requests.Response, Any]:
            def send() -> requests.Response:
                return session.request(
                    method,
                    url,
                    params=query,
                    json=json,
                    headers={**headers, "Authorization": f"Bearer {access_token}"},
                    timeout=timeout,
                )

            def attempt() -> tuple[requests.Response, Any]:
                response = send() if limiter is None else limiter.call(send)
                raise_for_response(response, method=method, endpoint=endpoint)
                # Decoded inside the retry loop, so a body cut short is read again, never half-used.
                return response, self._decode(response, method, endpoint, json_decoder)

            return send_with_retries(attempt, method=method, endpoint=endpoint, policy=self.retry_policy)

        access_token = self.get_access_token()
        try:
            return send_once(access_token)
        except Sage200ApiError as exc:
            if exc.status_code != 401:
                raise
        # One refresh-and-retry: the token may have been revoked or the clocks disagree.
        self.log.info("Sage 200 answered 401; refreshing the access token once and retrying.")
        token = self.token_provider.after_rejection(access_token)
        try:
            return send_once(token["access_token"])
        except Sage200ApiError as exc:
            if exc.status_code == 401:
                raise Sage200AuthError(
                    f"Sage 200 {method} {endpoint} answered 401 ({exc.message}) even with a freshly refreshed "
                    "token. Check that the Sage ID user is enabled for API access and can reach this site."
                ) from None
            raise

    def _headers(self, *, site_headers: bool = True, has_body: bool = False) -> dict[str, str]:
        """Every header an API call carries except ``Authorization``: one place for all of them."""
        headers = {"Accept": "application/json"}
        if has_body:
            headers["Content-Type"] = "application/json"
        if site_headers:
            site_id, company_id = self.config.require_site()
            headers |= {"X-Site": site_id, "X-Company": str(company_id)}
        if self.config.subscription_key:
            headers["ocp-apim-subscription-key"] = self.config.subscription_key
        return headers

    def send(
        self,
        endpoint: str,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Call an endpoint and return the parsed JSON (``None`` for an empty body)."""
        _, body = self._call(method, endpoint, params=query, json=json)
        return body

    def paginate(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        *,
        max_concurrency: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Yield every record of a collection (or the one record of a record path).

        Pages are read by the resource's key (``id gt <last>``, or a view's own key), which cannot skip or
        duplicate records that change during the read; a view without a key by offset in a stable order. See
        :func:`airflow_provider_sage200.query.iter_pages`.
        """
        for page in self.iter_pages(endpoint, params, page_size, max_concurrency=max_concurrency):
            yield from page

    def iter_pages(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        *,
        max_concurrency: int = 1,
        raw_records: bool = False,
        on_total: Callable[[int], None] | None = None,
    ) -> Iterator[list[Any]]:
        """Yield a collection page by page (lists of records), in key order when paging by key.

        :param max_concurrency: with more than 1, key-paged reads (no ``$skip``, ``$top`` or ``$orderby``
            other than the key) split the key space into ranges read concurrently by this many threads,
            sharing this hook's session and token; see :mod:`airflow_provider_sage200.parallel`.
        :param raw_records: yield each record as its JSON text (:class:`msgspec.Raw`, validated but not decoded
            into a dict), for writers that pass JSON through; :func:`~airflow_provider_sage200.outputs.AtomicExport`
            accepts such pages for ``jsonl`` and ``json``.
        :param on_total: called with the number of matching records when the read learns it (a parallel read
            asks for it to plan its ranges; a sequential read never does), e.g. for progress as a percentage.
        """
        endpoint = validate_endpoint(endpoint)
        query = validate_query(params)
        validate_page_size(page_size)
        validate_max_concurrency(max_concurrency)
        resource_or_unknown(endpoint).plan_paging(query)
        if is_record_path(endpoint):
            yield [self.send(endpoint, query=query)]
            return
        limiter = AdaptiveConcurrency(max_concurrency) if max_concurrency > 1 else None

        decoder = RAW_RECORDS if raw_records else None

        def fetch(page_params: dict[str, str]) -> list[Any]:
            _, page = self._call("GET", endpoint, params=page_params, limiter=limiter, json_decoder=decoder)
            if not isinstance(page, list):
                raise Sage200ServerError(
                    f"expected a JSON array of records, got {type(page).__name__}",
                    method="GET",
                    endpoint=endpoint,
                )
            return page

        key = paging_key(endpoint)
        if paging_mode(endpoint, query, max_concurrency) != "key_ranges":
            yield from iter_pages(fetch, query, page_size, endpoint=endpoint, key=key)
            return

        def count(count_params: dict[str, str]) -> Any:
            total = self.send(endpoint, query=count_params)
            if on_total is not None and isinstance(total, int) and not isinstance(total, bool):
                on_total(total)
            return total

        self.get_access_token()  # one refresh, if due, before the workers start
        yield from iter_pages_parallel(
            fetch, count, query, page_size, max_concurrency, endpoint=endpoint, key=key or "id"
        )

    def get_sites(self) -> list[dict[str, Any]]:
        """Return the site/company pairs the consenting user can reach (for X-Site / X-Company)."""
        return self._call("GET", "sites", site_headers=False)[1]

    def test_connection(self) -> tuple[bool, str]:
        """Check the connection with the stored access token, read-only: never refreshes or rotates."""
        try:
            status = self.token_status()
            if not status.has_token:
                return False, status.describe()
            if not status.access_token_valid:
                return (
                    False,
                    "The stored access token has expired; run `sage200 token refresh` (no call made).",
                )
            token = self.token_provider.load()
            response = self.get_conn().get(
                self.config.api_url + "sites",
                headers=self._headers(site_headers=False)
                | {"Authorization": f"Bearer {token['access_token']}"},
                timeout=self.retry_policy.timeout,
            )
            if not response.ok:
                return (
                    False,
                    f"Sage 200 answered HTTP {response.status_code} to GET sites: {error_message(response)}",
                )
            return True, f"Connected: {len(response.json())} site/company pair(s) reachable."
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _decode(
        response: requests.Response, method: str, endpoint: str, decoder: msgspec.json.Decoder | None
    ) -> Any:
        """The JSON body of a successful answer (``None`` when empty); anything else is a server error."""
        if not response.content:
            return None
        body = read_json(response, decoder, endpoint=endpoint)
        if body is None:  # an HTML page where JSON was due: retrying cannot fix it
            raise Sage200ServerError(
                not_json_message(response),
                method=method,
                endpoint=endpoint,
                status_code=response.status_code,
                body=response.text[:500],
            )
        return body
