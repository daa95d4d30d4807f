"""Adapters from ``airflow sage200`` argparse namespaces to the shared command functions."""

from __future__ import annotations

import sys
from argparse import Namespace

from airflow_provider_sage200.cli import commands


def _exit(code: int) -> None:
    if code:
        sys.exit(code)


def auth_login(args: Namespace) -> None:
    _exit(
        commands.run_safely(
            commands.auth_login,
            args.conn_id,
            no_browser=args.no_browser,
            paste=args.paste,
            timeout=args.timeout,
            pkce=args.pkce,
        )
    )


def token_check(args: Namespace) -> None:
    _exit(commands.run_safely(commands.token_check, args.conn_id, as_json=args.json))


def token_refresh(args: Namespace) -> None:
    _exit(commands.run_safely(commands.token_refresh, args.conn_id, min_remaining=args.min_remaining))


def sites(args: Namespace) -> None:
    _exit(commands.run_safely(commands.sites, args.conn_id, as_json=args.json))
