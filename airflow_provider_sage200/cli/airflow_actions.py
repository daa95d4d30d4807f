"""Adapters from parsed arguments to the shared command functions, for both ``sage200`` and ``airflow sage200``.

The ``*_code`` functions return the exit code (used by the ``sage200`` console script); the plain ones exit with
it (Airflow's CLI ignores return values).
"""

from __future__ import annotations

import sys
from argparse import Namespace

from airflow_provider_sage200.cli import commands
from airflow_provider_sage200.exceptions import Sage200ConfigError


def remote(args: Namespace) -> commands.Remote | None:
    """The ``--airflow-url`` options (only the ``sage200`` command has them), or ``None`` without the URL."""
    url = getattr(args, "airflow_url", None)
    if not url:
        for flag in ("airflow_user", "conn_extra"):
            if getattr(args, flag, None):
                raise Sage200ConfigError(f"--{flag.replace('_', '-')} needs --airflow-url.")
        return None
    return commands.Remote(
        url=url,
        user=args.airflow_user,
        api_version=args.airflow_api,
        conn_extra=tuple(args.conn_extra or ()),
    )


def auth_login_code(args: Namespace) -> int:
    return commands.run_safely(
        lambda: commands.auth_login(
            args.conn_id,
            no_browser=args.no_browser,
            paste=args.paste,
            timeout=args.timeout,
            pkce=args.pkce,
            remote=remote(args),
        )
    )


def token_check_code(args: Namespace) -> int:
    return commands.run_safely(
        lambda: commands.token_check(args.conn_id, as_json=args.json, remote=remote(args))
    )


def token_refresh_code(args: Namespace) -> int:
    return commands.run_safely(commands.token_refresh, args.conn_id, min_remaining=args.min_remaining)


def sites_code(args: Namespace) -> int:
    return commands.run_safely(commands.sites, args.conn_id, as_json=args.json, use=args.use, site=args.site)


def examples_code(args: Namespace) -> int:
    return commands.run_safely(commands.examples, args.copy_to, overwrite=args.overwrite)


def _exiting(action):
    def run(args: Namespace) -> None:
        code = action(args)
        if code:
            sys.exit(code)

    return run


auth_login = _exiting(auth_login_code)
token_check = _exiting(token_check_code)
token_refresh = _exiting(token_refresh_code)
sites = _exiting(sites_code)
examples = _exiting(examples_code)
