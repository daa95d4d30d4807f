"""The ``sage200`` console script: consent, token checks, site discovery and the emulator."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence

DEFAULT_CONN_ID = "sage200_default"
USE_HELP = "store the reachable pair with this company id in the connection's site_id / company_id fields"
SITE_HELP = "with --use: the site, when the company id exists on several sites"
EXAMPLES_HELP = "list the example DAGs shipped with the provider, or copy them into your DAGs folder"
COPY_TO_HELP = "copy the example DAG files into this folder (e.g. your DAGs folder)"
OVERWRITE_HELP = "with --copy-to: replace files of the same name"
AIRFLOW_URL_HELP = (
    "a remote Airflow (MWAA, Composer, Astronomer...): read the connection and the token Variable through its "
    "REST API instead of a local metastore; https:// (http:// only for 127.0.0.1/localhost). Authenticates with "
    "the bearer token in SAGE200_AIRFLOW_TOKEN, else a user and password (asked, never echoed)"
)
AIRFLOW_USER_HELP = "with --airflow-url: the Airflow user (default: SAGE200_AIRFLOW_USER, else asked)"
AIRFLOW_API_HELP = "with --airflow-url: v2 (Airflow 3), v1 (Airflow 2.11), or auto (default: ask the server)"
CONN_EXTRA_HELP = (
    "with --airflow-url: FIELD=VALUE for a connection extra field the API hides as '***' (names containing "
    "'token' or 'secret', e.g. token_url, token_variable); repeatable. The client secret, which the API also "
    "hides, comes from SAGE200_CLIENT_SECRET or a prompt that does not echo"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sage200", description="Sage 200 provider for Apache Airflow: consent, tokens, sites, emulator."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_conn(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--conn-id", default=DEFAULT_CONN_ID, help="the sage200 connection (default: %(default)s)"
        )
        return p

    def with_remote(p: argparse.ArgumentParser) -> None:
        p.add_argument("--airflow-url", metavar="URL", help=AIRFLOW_URL_HELP)
        p.add_argument("--airflow-user", metavar="USER", help=AIRFLOW_USER_HELP)
        p.add_argument("--airflow-api", choices=("auto", "v1", "v2"), default="auto", help=AIRFLOW_API_HELP)
        p.add_argument("--conn-extra", action="append", metavar="FIELD=VALUE", help=CONN_EXTRA_HELP)

    auth = commands.add_parser("auth", help="Sage ID consent").add_subparsers(dest="action", required=True)
    login = with_conn(
        auth.add_parser(
            "login",
            help="one-time consent (authorization-code grant); stores the first token",
            description="Prints the Sage ID consent URL, waits for the redirect on the connection's loopback "
            "redirect_uri (127.0.0.1 only, state checked, forged requests ignored) and stores the token Variable: in the "
            "local metastore, or with --airflow-url through a remote Airflow's REST API (managed Airflow: run it on "
            "your laptop).",
        )
    )
    login.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    login.add_argument(
        "--paste", action="store_true", help="paste the redirect URL instead of a callback server"
    )
    login.add_argument("--timeout", type=float, default=300, help="seconds to wait for the redirect")
    login.add_argument(
        "--pkce",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send a PKCE S256 challenge (default; --no-pkce only for a client that refuses it)",
    )
    with_remote(login)

    token = commands.add_parser("token", help="inspect or refresh the stored tokens").add_subparsers(
        dest="action", required=True
    )
    check = with_conn(
        token.add_parser("check", help="print time to expiry of both tokens; exit 1 if missing or expired")
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    with_remote(check)
    refresh = with_conn(token.add_parser("refresh", help="refresh now, through the rotation-safe path"))
    refresh.add_argument(
        "--min-remaining", type=float, default=None, help="refresh only if fewer seconds than this remain"
    )

    site_cmd = with_conn(commands.add_parser("sites", help="list the X-Site / X-Company pairs you can reach"))
    site_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    site_cmd.add_argument("--use", type=int, metavar="COMPANY_ID", help=USE_HELP)
    site_cmd.add_argument("--site", metavar="SITE_ID", help=SITE_HELP)

    examples = commands.add_parser("examples", help=EXAMPLES_HELP)
    examples.add_argument("--copy-to", metavar="DIR", help=COPY_TO_HELP)
    examples.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    emulator = commands.add_parser("emulator", help="run the Sage 200 emulator (Sage ID + API) on loopback")
    from airflow_provider_sage200.emulator import cli as emulator_cli

    emulator_cli.add_arguments(emulator)
    return parser


def _airflow_output_to_stderr() -> None:
    """Keep stdout for the command's own output (``--json`` is piped; the commands print to the stdout they were
    imported with). Airflow 3.2 puts its root log handler on stdout and logs there while the metastore is read
    (alembic's plugin setup, SQLAlchemy warnings): that handler, and any Airflow sets up later, go to stderr."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            # Airflow 2's RedirectStdHandler has no settable stream: it follows sys.stdout, swapped below.
            with contextlib.suppress(AttributeError):
                handler.setStream(sys.stderr)
    sys.stdout = sys.stderr


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "emulator":
        from airflow_provider_sage200.emulator import cli as emulator_cli

        emulator_cli.run_from_args(args)
        return 0
    from airflow_provider_sage200.cli import airflow_actions as actions

    stdout = sys.stdout
    _airflow_output_to_stderr()
    try:
        if args.command == "auth":
            return actions.auth_login_code(args)
        if args.command == "examples":
            return actions.examples_code(args)
        if args.command == "token":
            check = args.action == "check"
            return actions.token_check_code(args) if check else actions.token_refresh_code(args)
        return actions.sites_code(args)
    finally:
        sys.stdout = stdout


if __name__ == "__main__":
    sys.exit(main())
