"""The actions behind the ``sage200`` command (and the ``airflow sage200`` group): no argument parsing here.

Each function prints for a person and returns the process exit code.
"""

from __future__ import annotations

import json
import secrets
import sys
from dataclasses import dataclass
from typing import TextIO

from airflow_provider_sage200.cli.login import CallbackServer, open_browser, parse_redirect
from airflow_provider_sage200.exceptions import Sage200ConfigError, Sage200Error
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.oauth import pkce_pair
from airflow_provider_sage200.token import refresh_outcome
from airflow_provider_sage200.token_provider import REFRESH_MARGIN, Sage200TokenProvider
from airflow_provider_sage200.version_compat import AirflowNotFoundException


@dataclass(frozen=True)
class Remote:
    """Where ``--airflow-url`` sends the token: a remote Airflow's REST API instead of the local metastore.

    :param url: the Airflow base URL.
    :param user: the Airflow user (else ``SAGE200_AIRFLOW_USER``, else a prompt); unused with a token.
    :param api_version: ``auto``, ``v2`` (Airflow 3) or ``v1`` (Airflow 2.11).
    :param conn_extra: ``FIELD=VALUE`` for connection extra fields the API hides.
    """

    url: str
    user: str | None = None
    api_version: str = "auto"
    conn_extra: tuple[str, ...] = ()


# Stands in for the client secret when only the token is read: nothing is sent to Sage ID then.
_UNUSED_SECRET = "not-needed-to-read-the-token"


def token_provider(conn_id: str, remote: Remote | None, *, for_login: bool) -> Sage200TokenProvider:
    """The connection's token provider: the local metastore's, or one whose store is the remote Airflow's API."""
    if remote is None:
        return Sage200Hook(conn_id).token_provider
    from airflow_provider_sage200.cli import remote_airflow

    overrides = remote_airflow.parse_extra_overrides(list(remote.conn_extra))
    api = remote_airflow.connect(remote.url, user=remote.user, version=remote.api_version)
    secret = (lambda: remote_airflow.ask_client_secret(conn_id)) if for_login else (lambda: _UNUSED_SECRET)
    config = remote_airflow.remote_config(
        api, conn_id, client_secret=secret, extra_overrides=overrides, for_login=for_login
    )
    store = remote_airflow.RemoteVariableTokenStore(api, config.token_variable)
    return Sage200TokenProvider(config, refresh_margin=REFRESH_MARGIN, store=store)


def auth_login(
    conn_id: str,
    *,
    no_browser: bool = False,
    paste: bool = False,
    timeout: float = 300,
    pkce: bool = True,
    remote: Remote | None = None,
    out: TextIO = sys.stdout,
    stdin: TextIO = sys.stdin,
) -> int:
    """Run the authorization-code grant once and store the first token (with ``remote``: through that Airflow's
    REST API).

    The loopback callback listens before the consent URL is printed, so a port in use fails first.
    """
    provider = token_provider(conn_id, remote, for_login=True)
    redirect_uri = provider.config.redirect_uri
    state = secrets.token_urlsafe(24)
    callback = None if paste else CallbackServer(redirect_uri, state)
    verifier, challenge = pkce_pair() if pkce else (None, None)
    url = provider.sage_id.authorization_url(state, redirect_uri, code_challenge=challenge)
    print(
        f"Open this URL, sign in with the Sage ID user whose data Airflow will read:\n\n  {url}\n", file=out
    )
    out.flush()
    if callback is None:
        print("Then paste the full URL your browser was redirected to:", file=out)
        result = parse_redirect(stdin.readline().strip(), state)
    else:
        if not no_browser:
            open_browser(url)
        print(f"Waiting for the redirect on {redirect_uri} (up to {timeout:.0f}s)...", file=out)
        out.flush()
        result = callback.wait(timeout)
    if result.code is None:
        print(f"Consent failed: {result.error}", file=sys.stderr)
        return 1
    status = provider.exchange_code(result.code, redirect_uri, code_verifier=verifier)
    where = f" through the Airflow API at {remote.url.rstrip('/')}" if remote else ""
    print(f"Stored the token in Variable {status.variable!r}{where}.\n{status.describe()}", file=out)
    return 0


def token_check(
    conn_id: str, *, as_json: bool = False, remote: Remote | None = None, out: TextIO = sys.stdout
) -> int:
    """Print both tokens' expiry; exit 1 when a token is missing, either token has expired, or Sage ID rejected
    the consent."""
    status = token_provider(conn_id, remote, for_login=False).token_status()
    print(json.dumps(status.to_dict(), indent=2) if as_json else status.describe(), file=out)
    return 0 if status.access_token_valid and status.refresh_token_valid else 1


def token_refresh(conn_id: str, *, min_remaining: float | None = None, out: TextIO = sys.stdout) -> int:
    """Refresh the tokens now (or only when fewer than ``min_remaining`` seconds are left)."""
    hook = Sage200Hook(conn_id)
    before = hook.token_status()
    status = hook.refresh(force=min_remaining is None, min_remaining=min_remaining)
    _, reason = refresh_outcome(before, status)
    print(f"{reason}\n{status.describe()}", file=out)
    return 0


def sites(
    conn_id: str,
    *,
    as_json: bool = False,
    use: int | None = None,
    site: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """List the X-Site / X-Company pairs the consenting user can reach; with ``use``, store one in the connection."""
    rows = Sage200Hook(conn_id).get_sites()
    if use is not None:
        return use_site(conn_id, rows, use, site, out)
    if as_json:
        print(json.dumps(rows, indent=2), file=out)
        return 0
    print(f"{'site_id':<38} {'company_id':>10}  company_name (site_name)", file=out)
    for row in rows:
        print(
            f"{row.get('site_id', ''):<38} {row.get('company_id', ''):>10}  "
            f"{row.get('company_name', '')} ({row.get('site_name', '')})",
            file=out,
        )
    return 0


def use_site(conn_id: str, rows: list[dict], company_id: int, site_id: str | None, out: TextIO) -> int:
    """Put the reachable pair with ``company_id`` (on ``site_id``, when given) into the connection's extras."""
    matches = [
        row
        for row in rows
        if str(row.get("company_id")) == str(company_id)
        and (site_id is None or str(row.get("site_id", "")).lower() == site_id.strip("{}").lower())
    ]
    reachable = ", ".join(f"{row.get('company_id')} on {row.get('site_id')}" for row in rows) or "none"
    if not matches:
        raise Sage200ConfigError(
            f"--use {company_id}: the connection's user cannot reach company {company_id}"
            + (f" on site {site_id}" if site_id else "")
            + f"; reachable: {reachable}."
        )
    if len(matches) > 1:
        raise Sage200ConfigError(
            f"--use {company_id}: company {company_id} exists on several sites; add --site with one of "
            + ", ".join(str(row.get("site_id")) for row in matches)
            + "."
        )
    chosen = matches[0]
    changes = update_connection_extra(
        conn_id, {"site_id": str(chosen["site_id"]), "company_id": int(chosen["company_id"])}
    )
    for field, (before, after) in changes.items():
        shown = "(empty)" if before in (None, "") else repr(before)
        print(f"Connection {conn_id!r}: {field} {shown} -> {after!r}", file=out)
    if not changes:
        print(
            f"Connection {conn_id!r} already uses site {chosen['site_id']}, company {company_id}.", file=out
        )
    print(f"Now using {chosen.get('company_name', '')} ({chosen.get('site_name', '')}).", file=out)
    return 0


def update_connection_extra(conn_id: str, values: dict[str, object]) -> dict[str, tuple[object, object]]:
    """Set ``values`` in the extras of the metastore connection ``conn_id``; returns ``{field: (before, after)}``.

    Airflow has no ``connections edit``; this writes the row as the UI's Edit would. A connection defined by an
    environment variable or a secrets backend cannot be changed here, and the error says where to change it.
    """
    from airflow.models.connection import Connection as StoredConnection
    from airflow.utils.session import create_session

    with create_session() as session:
        stored = session.query(StoredConnection).filter_by(conn_id=conn_id).one_or_none()
        if stored is None:
            settings = ", ".join(f"{key}={value}" for key, value in values.items())
            raise Sage200ConfigError(
                f"Connection {conn_id!r} is not in the Airflow metastore (it comes from an environment variable "
                f"or a secrets backend), so it cannot be changed from here: set {settings} in its extra there."
            )
        extra = stored.extra_dejson
        changes = {key: (extra.get(key), value) for key, value in values.items() if extra.get(key) != value}
        stored.set_extra(json.dumps(extra | values))
    return changes


def examples(copy_to: str | None, *, overwrite: bool = False, out: TextIO = sys.stdout) -> int:
    """List the example DAG files, or copy them into ``copy_to``."""
    from pathlib import Path

    from airflow_provider_sage200.examples import copy_examples, example_files, examples_dir

    if copy_to is None:
        print(f"Example DAGs in {examples_dir()}:", file=out)
        for path in example_files():
            print(f"  {path.name}", file=out)
        print("Copy them into your DAGs folder with: sage200 examples --copy-to <DAGs folder>", file=out)
        return 0
    for path in copy_examples(Path(copy_to), overwrite=overwrite):
        print(f"Copied {path}", file=out)
    return 0


def run_safely(action, *args, **kwargs) -> int:
    """Run an action, turning provider errors into one clear line and exit code 1."""
    try:
        return action(*args, **kwargs)
    except Sage200Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except AirflowNotFoundException as exc:
        print(f"error: {exc}. Create it first (see docs/index.md, step 3).", file=sys.stderr)
        return 1
