"""``airflow sage200 ...`` commands (Airflow Core 3.2+ loads provider CLI groups; older versions ignore this).

Kept light: the actions are imported only when a command runs.
"""

from __future__ import annotations

import argparse

from airflow.cli.cli_config import ActionCommand, Arg, GroupCommand, lazy_load_command

from airflow_provider_sage200.cli.main import (
    COPY_TO_HELP,
    EXAMPLES_HELP,
    OVERWRITE_HELP,
    SITE_HELP,
    USE_HELP,
)

_CONN_ID = Arg(
    ("--conn-id",), default="sage200_default", help="the sage200 connection (default: sage200_default)"
)
_JSON = Arg(("--json",), action="store_true", help="machine-readable output")
_ACTIONS = "airflow_provider_sage200.cli.airflow_actions"


def _action(name: str, help: str, func: str, *args: Arg) -> ActionCommand:
    return ActionCommand(name=name, help=help, func=lazy_load_command(f"{_ACTIONS}.{func}"), args=args)


def get_sage200_cli_commands() -> list[GroupCommand]:
    login = _action(
        "login",
        "One-time Sage ID consent; stores the first token",
        "auth_login",
        _CONN_ID,
        Arg(("--no-browser",), action="store_true", help="print the URL only"),
        Arg(("--paste",), action="store_true", help="paste the redirect URL"),
        Arg(("--timeout",), type=float, default=300, help="seconds to wait for the redirect"),
        Arg(
            ("--pkce",),
            action=argparse.BooleanOptionalAction,
            default=True,
            help="send a PKCE challenge (default; --no-pkce only for a client that refuses it)",
        ),
    )
    check = _action(
        "check",
        "Print time to expiry of both tokens; exit 1 if missing or expired",
        "token_check",
        _CONN_ID,
        _JSON,
    )
    refresh = _action(
        "refresh",
        "Refresh the token now through the rotation-safe path",
        "token_refresh",
        _CONN_ID,
        Arg(("--min-remaining",), type=float, default=None, help="only when fewer seconds remain"),
    )
    sites = _action(
        "sites",
        "List the X-Site / X-Company pairs the user can reach (--use: store one in the connection)",
        "sites",
        _CONN_ID,
        _JSON,
        Arg(("--use",), type=int, metavar="COMPANY_ID", help=USE_HELP),
        Arg(("--site",), metavar="SITE_ID", help=SITE_HELP),
    )
    examples = _action(
        "examples",
        EXAMPLES_HELP,
        "examples",
        Arg(("--copy-to",), metavar="DIR", help=COPY_TO_HELP),
        Arg(("--overwrite",), action="store_true", help=OVERWRITE_HELP),
    )
    return [
        GroupCommand(
            name="sage200",
            help="Sage 200 provider: consent, token checks and site discovery",
            subcommands=[
                GroupCommand(name="auth", help="Sage ID consent", subcommands=[login]),
                GroupCommand(
                    name="token", help="Inspect or refresh the stored tokens", subcommands=[check, refresh]
                ),
                sites,
                examples,
            ],
        )
    ]
