"""The token Variable of a remote Airflow, through its REST API: consent from a laptop for managed Airflow.

On MWAA, Cloud Composer or Astronomer nobody has a shell next to the metastore, so ``sage200 auth login
--airflow-url URL`` runs the consent on a laptop and stores the token through the API server, which encrypts the
Variable with its Fernet key as a local ``auth login`` would. Airflow 3 serves ``/api/v2`` (a JWT from
``POST /auth/token``, or a given bearer token); Airflow 2.11 serves ``/api/v1`` (basic auth, or a bearer token).

The API hides secrets in what it returns: a connection's password and every extra field whose name contains
``token`` or ``secret`` come back as ``***``, and so does every string in the token Variable (its key contains
``token``). So the client secret is asked for (or read from ``SAGE200_CLIENT_SECRET``), a hidden extra field is
given with ``--conn-extra FIELD=VALUE``, and the read-back after a write compares what the API shows.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import requests
import requests.auth

from airflow_provider_sage200.connection import REDACTED, Sage200ConnectionConfig, is_loopback_host
from airflow_provider_sage200.exceptions import Sage200AuthError, Sage200ConfigError, Sage200Error
from airflow_provider_sage200.masking import mask, mask_token
from airflow_provider_sage200.token_store import VariableTokenStore

TOKEN_ENV = "SAGE200_AIRFLOW_TOKEN"
USER_ENV = "SAGE200_AIRFLOW_USER"
CLIENT_SECRET_ENV = "SAGE200_CLIENT_SECRET"
API_VERSIONS = ("auto", "v1", "v2")
TIMEOUT = 30.0

_STATUS_MEANING = {
    401: "wrong user/password or token",
    403: "the user lacks the permission for this (editing Variables needs e.g. the Op or Admin role)",
}


class RemoteAirflowError(Sage200Error):
    """The remote Airflow refused or failed a request; the message names the URL and the HTTP status."""


def check_airflow_url(url: str) -> str:
    """``url`` without a trailing slash; https:// required except for 127.0.0.1/localhost."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Sage200ConfigError(
            f"--airflow-url must be the absolute https:// URL of the Airflow web server / API server "
            f"(e.g. https://airflow.example.com), got {url!r}."
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise Sage200ConfigError(
            f"--airflow-url uses plain http:// for {parts.hostname!r}; the password and tokens would cross the "
            "network in clear. Use https:// (http:// is accepted only for 127.0.0.1/localhost)."
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise Sage200ConfigError(
            "--airflow-url must hold no user, password, query or fragment: give the credentials through "
            f"{TOKEN_ENV} or the prompt."
        )
    return url.strip().rstrip("/")


class _Bearer(requests.auth.AuthBase):
    """``Authorization: Bearer``; as an auth object, so requests never swaps in credentials from ``~/.netrc``."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer(***)"


class AirflowApi:
    """A small client of one Airflow's REST API: connections read, Variables read and written.

    Redirects are never followed (a redirect must not carry the credentials elsewhere), TLS is always verified.

    :param url: the Airflow base URL (checked by :func:`check_airflow_url`).
    :param token: a bearer token (Airflow 3 JWT, or what the platform's API accepts).
    :param username: with ``password``: Airflow 3 trades them for a JWT, Airflow 2 sends them as basic auth.
    :param version: ``v1`` (Airflow 2.11), ``v2`` (Airflow 3), or ``auto`` to ask the public health endpoints.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        version: str = "auto",
        session: requests.Session | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        if version not in API_VERSIONS:
            raise Sage200ConfigError(
                f"--airflow-api must be one of {', '.join(API_VERSIONS)}, got {version!r}."
            )
        if not token and not (username and password):
            raise Sage200ConfigError(f"No Airflow credentials: set {TOKEN_ENV}, or give a user and password.")
        self.url = check_airflow_url(url)
        self.timeout = timeout
        self._session = session or requests.Session()
        self._session.headers["Accept"] = "application/json"
        self._auth: requests.auth.AuthBase | None = None
        self.version = self._detect_version() if version == "auto" else version
        if token:
            mask(token)
            self._auth = _Bearer(token)
        elif self.version == "v2":
            mask(password or "")
            self._auth = _Bearer(self._jwt(username or "", password or ""))
        else:
            mask(password or "")
            self._auth = requests.auth.HTTPBasicAuth(username or "", password or "")

    def __repr__(self) -> str:
        return f"AirflowApi({self.url!r}, version={self.version!r})"

    @property
    def api(self) -> str:
        return f"{self.url}/api/{self.version}"

    # -- requests ------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._session.request(
                method, url, auth=self._auth, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.exceptions.SSLError:
            raise RemoteAirflowError(
                f"{method} {url}: the TLS certificate could not be verified. Verification stays on; if the "
                "server uses a private CA, point REQUESTS_CA_BUNDLE at its certificate."
            ) from None
        except requests.RequestException as exc:
            raise RemoteAirflowError(f"{method} {url}: no answer ({type(exc).__name__}).") from None
        if response.is_redirect or 300 <= response.status_code < 400:
            raise RemoteAirflowError(
                f"{method} {url} answered HTTP {response.status_code} redirecting to "
                f"{response.headers.get('Location', '?')!r}; redirects are not followed with credentials. Give "
                "the Airflow URL the API answers on as --airflow-url (a login page in front of the API, e.g. "
                "IAP, needs a bearer token in "
                f"{TOKEN_ENV})."
            )
        return response

    def _forbidden(self, lacks: str) -> str:
        """What a 403 means: Airflow 2.11's API answers 403, not 401, to a wrong user or password too."""
        if isinstance(self._auth, requests.auth.HTTPBasicAuth):
            return f"a wrong user or password, or the user lacks {lacks}: Airflow 2's API answers 403 to both"
        return f"the user lacks {lacks}"

    def _fail(self, method: str, url: str, response: requests.Response, what: str) -> RemoteAirflowError:
        meaning = _STATUS_MEANING.get(response.status_code, "unexpected answer")
        return RemoteAirflowError(f"{what}: {method} {url} answered HTTP {response.status_code} ({meaning}).")

    def _detect_version(self) -> str:
        answers = []
        for version, path in (("v2", "/api/v2/monitor/health"), ("v1", "/api/v1/health")):
            response = self._send("GET", self.url + path)
            if response.status_code == 200:
                return version
            answers.append(f"{path}: HTTP {response.status_code}")
        raise RemoteAirflowError(
            f"No Airflow REST API answered at {self.url} ({'; '.join(answers)}). Check --airflow-url, or name "
            "the API with --airflow-api v2 (Airflow 3) / v1 (Airflow 2.11)."
        )

    def _jwt(self, username: str, password: str) -> str:
        url = f"{self.url}/auth/token"
        response = self._send("POST", url, json={"username": username, "password": password})
        if response.status_code not in (200, 201):
            raise self._fail("POST", url, response, f"Could not log in to Airflow as {username!r}")
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise RemoteAirflowError(f"POST {url} answered without an access_token.") from None
        mask(token)
        return token

    # -- connections and Variables -------------------------------------------------------------------

    def _read(self, url: str, what: str, objects: str) -> dict[str, Any] | None:
        """GET ``url``: its JSON, ``None`` on 404; a 403 or any other failure raises naming ``what``."""
        response = self._send("GET", url)
        if response.status_code == 404:
            return None
        if response.status_code == 403:
            raise RemoteAirflowError(
                f"{what}: GET {url} answered HTTP 403 ({self._forbidden(f'permission to read {objects}')})."
            )
        if response.status_code != 200:
            raise self._fail("GET", url, response, what)
        return response.json()

    def get_connection(self, conn_id: str) -> dict[str, Any]:
        url = f"{self.api}/connections/{quote(conn_id, safe='')}"
        connection = self._read(url, f"Reading connection {conn_id!r}", "connections")
        if connection is None:
            raise RemoteAirflowError(
                f"Connection {conn_id!r} does not exist in the Airflow at {self.url} (GET {url} answered HTTP "
                "404); create it there first (see docs/index.md, step 3), or give its id with --conn-id."
            )
        return connection

    def get_variable(self, key: str) -> dict[str, Any] | None:
        """The Variable as the API shows it (``value`` possibly redacted), or ``None`` when there is none."""
        return self._read(
            f"{self.api}/variables/{quote(key, safe='')}", f"Reading Variable {key!r}", "Variables"
        )

    def set_variable(self, key: str, value: str, description: str | None) -> None:
        """Create or replace Variable ``key`` (PATCH, then POST when it does not exist yet)."""
        body = {"key": key, "value": value, "description": description}
        url = f"{self.api}/variables/{quote(key, safe='')}"
        response = self._send("PATCH", url, json=body)
        method = "PATCH"
        if response.status_code == 404:
            url, method = f"{self.api}/variables", "POST"
            response = self._send("POST", url, json=body)
        if response.status_code == 403:
            lacks = "Variable edit permission; it needs e.g. the Op or Admin role"
            raise RemoteAirflowError(
                f"Writing Variable {key!r}: {method} {url} answered HTTP 403 ({self._forbidden(lacks)}). "
                "Nothing was stored."
            )
        if response.status_code not in (200, 201, 204):
            # The body is not shown: a validation error would echo the value, which holds the tokens.
            raise self._fail(method, url, response, f"Writing Variable {key!r}")


class _RemoteVariables:
    """The ``get`` / ``set`` of :class:`VariableTokenStore`'s backend, over the REST API."""

    def __init__(self, api: AirflowApi) -> None:
        self.api = api

    def get(self, key: str) -> str | None:
        variable = self.api.get_variable(key)
        return None if variable is None else variable.get("value")

    def set(self, key: str, value: str, description: str | None) -> None:
        self.api.set_variable(key, value, description)


class RemoteVariableTokenStore(VariableTokenStore):
    """:class:`VariableTokenStore` with the remote Airflow's REST API as its backend.

    Reading a token back shows only its non-secret fields: the API hides every string of a Variable whose key
    contains ``token``. :meth:`save` therefore compares the fields the API shows (the expiry times, the
    generation) and accepts ``***`` where a string was written. The API reads the metastore row itself, so a
    secrets backend shadowing the key is not seen here (``sage200 token check`` on a worker, or the token page,
    reports it).
    """

    def __init__(self, api: AirflowApi, key: str) -> None:
        super().__init__(key, write_attempts=1, outage_wait=0)
        self.api = api
        self._variables = _RemoteVariables(api)

    @property
    def _backend(self) -> Any:
        return self._variables

    def load(self) -> dict[str, Any] | None:
        raw = self._backend.get(self.key)
        if raw is None:
            return None
        token = self._parse(raw)
        mask_token({field: value for field, value in token.items() if value != REDACTED})
        return token

    def save(self, token: dict[str, Any]) -> None:
        mask_token(token)
        value = json.dumps(token, sort_keys=True)
        self.api.set_variable(self.key, value, self.description)
        stored = self.api.get_variable(self.key)
        try:
            shown = json.loads(stored["value"]) if stored and stored.get("value") else None
        except ValueError:
            shown = None
        if not _same_as_shown(token, shown):
            raise Sage200AuthError(
                f"Wrote Variable {self.key!r} through {self.api.url} but reading it back returned a different "
                "value: another writer may have replaced it. Run the command again."
            )


def _same_as_shown(written: Any, shown: Any) -> bool:
    """Whether ``shown`` (as the API returned it) is ``written`` with some strings replaced by ``***``."""
    if isinstance(written, str):
        return shown in (written, REDACTED)
    if isinstance(written, dict):
        return (
            isinstance(shown, dict)
            and shown.keys() == written.keys()
            and all(_same_as_shown(value, shown[key]) for key, value in written.items())
        )
    if isinstance(written, list):
        return (
            isinstance(shown, list)
            and len(shown) == len(written)
            and all(_same_as_shown(a, b) for a, b in zip(written, shown, strict=True))
        )
    return shown == written


class RemoteConnection:
    """The fields of a connection as the REST API returned them, shaped as :meth:`Sage200ConnectionConfig.
    from_connection` reads a connection."""

    def __init__(self, conn_id: str, login: str | None, password: str | None, extra: dict[str, Any]) -> None:
        self.conn_id = conn_id
        self.login = login
        self.password = password
        self.extra_dejson = extra

    def __repr__(self) -> str:
        return f"RemoteConnection({self.conn_id!r})"


def parse_extra_overrides(values: list[str] | None) -> dict[str, str]:
    """``--conn-extra FIELD=VALUE`` options as a dict."""
    overrides: dict[str, str] = {}
    for value in values or []:
        field, sep, given = value.partition("=")
        if not sep or not field.strip() or not given.strip():
            raise Sage200ConfigError(
                f"--conn-extra {value.split('=')[0]!r}...: give FIELD=VALUE, e.g. --conn-extra "
                "token_url=https://id.sage.com/oauth/token."
            )
        overrides[field.strip()] = given.strip()
    return overrides


def remote_config(
    api: AirflowApi,
    conn_id: str,
    *,
    client_secret: Callable[[], str],
    extra_overrides: Mapping[str, str] | None = None,
    for_login: bool = True,
) -> Sage200ConnectionConfig:
    """Read connection ``conn_id`` through the API and parse it as a local connection is parsed.

    :param client_secret: asked only when the API hides the password (it does unless the server sets
        ``[core] hide_sensitive_var_conn_fields = False``).
    :param extra_overrides: values of extra fields the API hides (``***``); only hidden fields may be given.
    :param for_login: every hidden field is needed (a consent); else only ``token_variable`` (reading the token).
    """
    answer = api.get_connection(conn_id)
    try:
        extra = json.loads(answer.get("extra") or "{}")
    except ValueError:
        extra = None
    if not isinstance(extra, dict):
        raise Sage200ConfigError(f"Connection {conn_id!r} in {api.url}: its extra is not a JSON object.")
    overrides = dict(extra_overrides or {})
    for field, value in overrides.items():
        if extra.get(field) != REDACTED:
            raise Sage200ConfigError(
                f"--conn-extra {field}=...: the Airflow API does not hide connection {conn_id!r} field {field!r}, "
                "so its stored value is used; give --conn-extra only for fields the API shows as '***'."
            )
        extra[field] = value
    hidden = sorted(field for field, value in extra.items() if value == REDACTED)
    if not for_login:
        # Reading the token needs only its Variable key; a hidden field that does not name it is left out.
        hidden = [field for field in hidden if field == "token_variable"]
        extra = {field: value for field, value in extra.items() if value != REDACTED}
    if hidden:
        raise Sage200ConfigError(
            f"The Airflow API at {api.url} hides connection {conn_id!r} field(s) {', '.join(hidden)} ('***': their "
            "names contain 'token' or 'secret'). Give each with the value stored in the connection: "
            + " ".join(f"--conn-extra {field}=VALUE" for field in hidden)
            + "."
        )
    password = answer.get("password")
    if not password or password == REDACTED:
        password = client_secret()
    connection = RemoteConnection(conn_id, answer.get("login"), password, extra)
    return Sage200ConnectionConfig.from_connection(connection)  # type: ignore[arg-type]


def ask_client_secret(
    conn_id: str,
    *,
    env: Mapping[str, str] = os.environ,
    ask: Callable[[str], str] = getpass.getpass,
) -> str:
    """The Sage ID client secret: ``SAGE200_CLIENT_SECRET``, else a prompt that does not echo."""
    secret = env.get(CLIENT_SECRET_ENV) or ask(
        f"Sage ID client secret of connection {conn_id!r} (the Airflow API hides it; or set {CLIENT_SECRET_ENV}): "
    )
    if not secret:
        raise Sage200ConfigError(f"No client secret given for connection {conn_id!r}; nothing was sent.")
    mask(secret)
    return secret


def connect(
    url: str,
    *,
    user: str | None = None,
    version: str = "auto",
    env: Mapping[str, str] = os.environ,
    ask_user: Callable[[], str] | None = None,
    ask_password: Callable[[str], str] = getpass.getpass,
    err: TextIO = sys.stderr,
) -> AirflowApi:
    """An :class:`AirflowApi` authenticated as the person: ``SAGE200_AIRFLOW_TOKEN``, else user and password.

    The password is read without echo and kept only in memory (for Airflow 3, only until the JWT is issued).
    """
    check_airflow_url(url)
    token = env.get(TOKEN_ENV)
    if token:
        return AirflowApi(url, token=token, version=version)
    user = user or env.get(USER_ENV)
    if not user:
        print(f"Airflow user for {url.rstrip('/')}: ", end="", file=err, flush=True)
        user = (ask_user or sys.stdin.readline)().strip()
    if not user:
        raise Sage200ConfigError(f"No Airflow user given: use --airflow-user, {USER_ENV} or {TOKEN_ENV}.")
    password = ask_password(f"Airflow password of {user!r}: ")
    if not password:
        raise Sage200ConfigError(f"No Airflow password given for {user!r}; nothing was sent.")
    return AirflowApi(url, username=user, password=password, version=version)
