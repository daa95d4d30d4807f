"""Hook for the Sage 200 (UK & Ireland) REST API, authenticated through Sage ID.

Client id and secret live in an Airflow connection of type ``sage200``. The rotating OAuth tokens live in
an Airflow Variable (``sage200_token__<conn_id>`` by default), Fernet-encrypted in the metastore and
refreshed in place. :mod:`airflow_provider_sage200.refresh` explains how a refresh stays single-use across
threads, processes and workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import Any, ClassVar

import msgspec
import requests
from requests.adapters import HTTPAdapter

from airflow_provider_sage200 import __version__
from airflow_provider_sage200.connection import DEFAULT_CONN_ID, Sage200ConnectionConfig
from airflow_provider_sage200.exceptions import (
    Sage200ApiError,
    Sage200AuthError,
    Sage200ReauthorizationRequired,
    Sage200ServerError,
)
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
    uses_key_paging,
    validate_endpoint,
    validate_page_size,
    validate_query,
)
from airflow_provider_sage200.refresh import RefreshCoordinator, RefreshTiming, lease_variable_key
from airflow_provider_sage200.token import TokenStatus, access_seconds_left
from airflow_provider_sage200.token_store import VariableTokenStore
from airflow_provider_sage200.transport import (
    RAW_RECORDS,
    RetryPolicy,
    not_json_message,
    read_json,
    send_with_retries,
)
from airflow_provider_sage200.version_compat import BaseHook, conf

Token = dict[str, Any]


def _config_float(option: str, default: float) -> float:
    return conf.getfloat("sage200", option, fallback=default)


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

    # Access tokens already read in this process, by token Variable: N calls within a token's life cost
    # no Variable reads and no refreshes.
    _token_cache: ClassVar[dict[str, Token]] = {}
    _token_cache_lock: ClassVar[threading.Lock] = threading.Lock()

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
            refresh_margin if refresh_margin is not None else _config_float("refresh_margin_seconds", 300)
        )
        self.retry_policy = retry_policy or RetryPolicy(
            connect_timeout=_config_float("connect_timeout_seconds", 10),
            read_timeout=_config_float("read_timeout_seconds", 60),
            max_attempts=int(_config_float("max_attempts", 10)),
            max_elapsed=_config_float("max_retry_seconds", 300),
            backoff_base=_config_float("backoff_base_seconds", 0.5),
        )
        self.refresh_timing = refresh_timing or RefreshTiming(
            lease_seconds=_config_float("refresh_lease_seconds", 120),
            claim_write_limit=_config_float("claim_write_limit_seconds", 2.0),
            claim_settle=_config_float("claim_settle_seconds", 2.5),
            poll_interval=_config_float("lease_poll_seconds", 0.5),
            host_lock=conf.getboolean("sage200", "host_lock", fallback=True),
        )
        self.pool_size = pool_size

    # -- configuration ---------------------------------------------------------------------------------

    @cached_property
    def config(self) -> Sage200ConnectionConfig:
        """The connection's settings, validated once."""
        return Sage200ConnectionConfig.from_connection(self.get_connection(self.sage200_conn_id))

    @cached_property
    def token_store(self) -> VariableTokenStore:
        return VariableTokenStore(self.config.token_variable)

    @cached_property
    def sage_id(self) -> SageIdClient:
        return SageIdClient(self.config)

    @cached_property
    def coordinator(self) -> RefreshCoordinator:
        return RefreshCoordinator(self.token_store, timing=self.refresh_timing)

    def get_conn(self) -> requests.Session:
        """Return this hook's pooled, keep-alive HTTP session (TLS verification always on)."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=self.pool_size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = f"airflow-provider-sage200/{__version__}"
        return session

    # -- tokens ----------------------------------------------------------------------------------------

    def get_access_token(self) -> str:
        """Return a valid access token, refreshing it (once, system-wide) when it is about to expire."""
        return self._fresh_token()["access_token"]

    def refresh(self, *, force: bool = True, min_remaining: float | None = None) -> TokenStatus:
        """Refresh the tokens through the rotation-safe path and return their status (no secrets).

        :param force: refresh even if the access token is still fresh (unless another worker refreshed it
            while this call waited).
        :param min_remaining: without ``force``, refresh only when fewer seconds than this remain.
        """
        stored = self._load_token()
        if force:
            stale = stored["access_token"]
            token = self._ensure_fresh(lambda t: t["access_token"] == stale)
        else:
            threshold = self.refresh_margin if min_remaining is None else min_remaining
            token = self._ensure_fresh(lambda t: access_seconds_left(t) < threshold)
        return TokenStatus.from_token(self.sage200_conn_id, self.config.token_variable, token)

    def token_status(self) -> TokenStatus:
        """Report both tokens' expiry without refreshing or calling Sage."""
        token = self.token_store.load()
        return TokenStatus.from_token(self.sage200_conn_id, self.config.token_variable, token)

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
        token = self.sage_id.exchange_code(code, redirect_uri, code_verifier)
        self.token_store.save(token)
        self.token_store.save_raw(
            lease_variable_key(self.token_store.key), "{}", "Sage 200 token refresh lease"
        )
        self._remember(token)
        return TokenStatus.from_token(self.sage200_conn_id, self.config.token_variable, token)

    def _load_token(self) -> Token:
        token = self.token_store.load()
        if token is None:
            raise Sage200ReauthorizationRequired(
                f"No Sage 200 token stored for connection {self.sage200_conn_id!r} (Variable "
                f"{self.config.token_variable!r}). Run `sage200 auth login --conn-id {self.sage200_conn_id}`."
            )
        return token

    @staticmethod
    def _lifetime(token: Token) -> float:
        return max(float(token.get("expires_at", 0)) - float(token.get("refreshed_at", 0)), 0)

    def _needs_refresh(self, token: Token) -> bool:
        return access_seconds_left(token) < min(self.refresh_margin, self._lifetime(token) / 2)

    def _fresh_token(self) -> Token:
        key = self.config.token_variable
        with self._token_cache_lock:
            cached = self._token_cache.get(key)
        if cached is not None and not self._needs_refresh(cached):
            return cached
        token = self._load_token()
        if self._needs_refresh(token):
            token = self._ensure_fresh(self._still_needs_refresh(token))
        self._remember(token)
        return token

    def _still_needs_refresh(self, seen: Token) -> Callable[[Token], bool]:
        """Whether a token read while waiting still needs a refresh, given that ``seen`` needed one.

        A token another worker stored since is taken while it is usable, even inside the refresh margin: with
        short-lived tokens the margin may already have begun by the time the new token is readable, and
        waiting for a "fresh" one would make every waiter refresh in turn.
        """

        def still_needs_refresh(token: Token) -> bool:
            if token.get("access_token") == seen.get("access_token"):
                return self._needs_refresh(token)
            return access_seconds_left(token) < min(30.0, self._lifetime(token) / 4)

        return still_needs_refresh

    def _ensure_fresh(self, needs_refresh: Any) -> Token:
        try:
            token = self.coordinator.ensure_fresh(needs_refresh, self.sage_id.refresh)
        except Sage200ReauthorizationRequired:
            # Another worker may have rotated the token between our read and our refresh: use theirs.
            stored = self._load_token()
            if needs_refresh(stored):
                raise
            token = stored
        self._remember(token)
        return token

    def _remember(self, token: Token) -> None:
        with self._token_cache_lock:
            self._token_cache[self.config.token_variable] = token

    def _forget(self, access_token: str) -> None:
        with self._token_cache_lock:
            cached = self._token_cache.get(self.config.token_variable)
            if cached is not None and cached.get("access_token") == access_token:
                del self._token_cache[self.config.token_variable]

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
        """
        method = method.upper()
        if method not in ("GET", "POST", "PUT", "DELETE"):
            raise Sage200ApiError(
                f"method {method!r} is not supported; use GET, POST, PUT or DELETE.",
                method=method,
                endpoint=endpoint,
            )
        endpoint = validate_endpoint(endpoint)
        query = validate_query(params)
        url = self.config.api_url + endpoint
        headers = {"Accept": "application/json"}
        if json is not None:
            headers["Content-Type"] = "application/json"
        if site_headers:
            site_id, company_id = self.config.require_site()
            headers |= {"X-Site": site_id, "X-Company": str(company_id)}
        if self.config.subscription_key:
            headers["ocp-apim-subscription-key"] = self.config.subscription_key
        session = self.get_conn()
        timeout = self.retry_policy.timeout

        def send_once(access_token: str) -> requests.Response:
            def send() -> requests.Response:
                response = session.request(
                    method,
                    url,
                    params=query,
                    json=json,
                    headers={**headers, "Authorization": f"Bearer {access_token}"},
                    timeout=timeout,
                )
                if method == "GET":
                    # Decoded inside the retry loop, so a body cut short is read again, never half-used.
                    response.sage200_json = read_json(response, json_decoder)  # type: ignore[attr-defined]
                return response

            if limiter is not None:
                return send_with_retries(
                    lambda: limiter.call(send), method=method, endpoint=endpoint, policy=self.retry_policy
                )

            return send_with_retries(send, method=method, endpoint=endpoint, policy=self.retry_policy)

        access_token = self.get_access_token()
        try:
            return send_once(access_token)
        except Sage200ApiError as exc:
            if exc.status_code != 401:
                raise
        # One refresh-and-retry: the token may have been revoked or the clocks disagree.
        self._forget(access_token)
        self.log.info("Sage 200 answered 401; refreshing the access token once and retrying.")
        # Another worker's newer token will do, unless it is about to expire too.
        token = self._ensure_fresh(lambda t: t["access_token"] == access_token or access_seconds_left(t) < 1)
        try:
            return send_once(token["access_token"])
        except Sage200ApiError as exc:
            if exc.status_code == 401:
                raise Sage200AuthError(
                    f"Sage 200 {method} {endpoint} answered 401 ({exc.message}) even with a freshly refreshed "
                    "token. Check that the Sage ID user is enabled for API access and can reach this site."
                ) from None
            raise

    def send(
        self,
        endpoint: str,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Call an endpoint and return the parsed JSON (``None`` for an empty body)."""
        response = self.request(method, endpoint, params=query, json=json)
        return self._json(response, method, endpoint)

    def paginate(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        *,
        max_concurrency: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Yield every record of a collection (or the one record of a record path).

        Pages are read by key (``id gt <last>``), which cannot skip or duplicate records that change
        during the read; see :func:`airflow_provider_sage200.query.iter_pages`.
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
    ) -> Iterator[list[Any]]:
        """Yield a collection page by page (lists of records), in ``id`` order when paging by key.

        :param max_concurrency: with more than 1, key-paged reads (no ``$skip``, ``$top`` or ``$orderby``
            other than ``id``) split the id space into ranges read concurrently by this many threads,
            sharing this hook's session and token; see :mod:`airflow_provider_sage200.parallel`.
        :param raw_records: yield each record as its JSON text (:class:`msgspec.Raw`, validated but not decoded
            into a dict), for writers that pass JSON through; :func:`~airflow_provider_sage200.outputs.AtomicExport`
            accepts such pages for ``jsonl`` and ``json``.
        """
        endpoint = validate_endpoint(endpoint)
        query = validate_query(params)
        validate_page_size(page_size)
        validate_max_concurrency(max_concurrency)
        if is_record_path(endpoint):
            yield [self.send(endpoint, query=query)]
            return
        limiter = AdaptiveConcurrency(max_concurrency) if max_concurrency > 1 else None

        decoder = RAW_RECORDS if raw_records else None

        def fetch(page_params: dict[str, str]) -> list[Any]:
            response = self.request(
                "GET", endpoint, params=page_params, limiter=limiter, json_decoder=decoder
            )
            page = self._json(response, "GET", endpoint)
            if not isinstance(page, list):
                raise Sage200ServerError(
                    f"expected a JSON array of records, got {type(page).__name__}",
                    method="GET",
                    endpoint=endpoint,
                )
            return page

        if limiter is None or "$top" in query or not uses_key_paging(query):
            yield from iter_pages(fetch, query, page_size)
            return

        def count(count_params: dict[str, str]) -> int:
            return int(self.send(endpoint, query=count_params))

        self.get_access_token()  # one refresh, if due, before the workers start
        yield from iter_pages_parallel(fetch, count, query, page_size, max_concurrency)

    def get_sites(self) -> list[dict[str, Any]]:
        """Return the site/company pairs the consenting user can reach (for X-Site / X-Company)."""
        response = self.request("GET", "sites", site_headers=False)
        return self._json(response, "GET", "sites")

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
            token = self._load_token()
            response = self.get_conn().get(
                self.config.api_url + "sites",
                headers={"Authorization": f"Bearer {token['access_token']}", "Accept": "application/json"},
                timeout=self.retry_policy.timeout,
            )
            if not response.ok:
                return False, f"Sage 200 answered HTTP {response.status_code} to GET sites."
            return True, f"Connected: {len(response.json())} site/company pair(s) reachable."
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _json(response: requests.Response, method: str, endpoint: str) -> Any:
        if not response.content:
            return None
        decoded = getattr(response, "sage200_json", None)
        if decoded is not None:
            return decoded
        try:
            return msgspec.json.decode(response.content)
        except ValueError:
            raise Sage200ServerError(
                not_json_message(response),
                method=method,
                endpoint=endpoint,
                status_code=response.status_code,
                body=response.text[:500],
            ) from None
