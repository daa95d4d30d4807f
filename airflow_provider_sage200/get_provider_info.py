"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``).

The connection form is declared here (``conn-fields`` / ``ui-field-behaviour``), which is what Airflow 3.2+
serves to the UI without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_sage200 import __version__
from airflow_provider_sage200.connection_defaults import (
    API_BASE_URLS,
    DEFAULT_AUDIENCE,
    DEFAULT_AUTH_URL,
    DEFAULT_EDITION,
    DEFAULT_REDIRECT_URI,
    DEFAULT_REFRESH_TOKEN_LIFETIME_DAYS,
    DEFAULT_SCOPE,
    DEFAULT_TOKEN_URL,
)

# Airflow hides the values of extra fields whose names contain "token" when a connection is edited; their help
# says so, since the names are the provider's public interface and stay.
_MASKED_ON_EDIT = (
    " Shown as *** when you edit the connection (Airflow hides fields named like 'token'); leave *** to keep the "
    "stored value."
)


def _field(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"], **schema}}


def _option(description: str, default: str, type_: str = "float") -> dict[str, Any]:
    return {
        "description": description,
        "version_added": "0.1.0",
        "type": type_,
        "example": default,
        "default": default,
    }


CONN_FIELDS: dict[str, Any] = {
    "edition": {
        "label": "Edition",
        "description": "Sage 200 Standard (cloud) or Professional (on-premises via the Native API tunnel); "
        "picks the API base URL.",
        "schema": {"type": "string", "enum": ["standard", "professional"], "default": DEFAULT_EDITION},
    },
    "site_id": _field(
        "Site ID", "X-Site: the site GUID listed by the sage200 sites command (sage200 sites --use fills it)."
    ),
    "company_id": _field(
        "Company ID",
        "X-Company: the integer company id listed by sage200 sites (sage200 sites --use fills it).",
    ),
    "api_url": _field(
        "API base URL",
        "Overrides the base URL that Edition selects (empty: Edition's, e.g. "
        f"{API_BASE_URLS[DEFAULT_EDITION]} for Professional); set it only for the emulator or a proxy.",
        format="url",
    ),
    "auth_url": _field(
        "Authorization URL", f"Sage ID authorize endpoint (empty: {DEFAULT_AUTH_URL}).", format="url"
    ),
    "token_url": _field(
        "Token URL", f"Sage ID token endpoint (empty: {DEFAULT_TOKEN_URL})." + _MASKED_ON_EDIT, format="url"
    ),
    "scope": _field(
        "Scope",
        f"OAuth scopes, space-separated; offline_access yields the refresh token (empty: {DEFAULT_SCOPE}).",
    ),
    "audience": _field("Audience", f"Sage ID audience for Sage 200 (empty: {DEFAULT_AUDIENCE})."),
    "redirect_uri": _field(
        "Redirect URI",
        f"The callback registered on the Sage 200 API credential form (empty: {DEFAULT_REDIRECT_URI}).",
        format="url",
    ),
    "subscription_key": _field(
        "Subscription key",
        "Legacy ocp-apim-subscription-key; no longer required by Sage, sent only when set.",
        format="password",
    ),
    # No schema default: Airflow's UI masks defaults of fields named like "*token*" and would save "***".
    "refresh_token_lifetime_days": {
        "label": "Refresh token lifetime (days)",
        "description": "As chosen on the Sage 200 API credential request form (at most 90; "
        f"empty: {DEFAULT_REFRESH_TOKEN_LIFETIME_DAYS}).",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 90},
    },
    "token_variable": _field(
        "Token Variable",
        "Airflow Variable holding the rotating tokens (empty: sage200_token__<conn_id>)." + _MASKED_ON_EDIT,
    ),
}


UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["host", "port", "schema"],
    "relabeling": {"login": "Client ID", "password": "Client Secret"},
    # The defaults, shown in the empty fields (a placeholder is never saved).
    "placeholders": {
        "login": "Sage ID client id",
        "password": "Sage ID client secret",
        "site_id": "2f1b8a52-3d4c-4e5f-9a6b-7c8d9e0f1a2b",
        "company_id": "1",
        "api_url": API_BASE_URLS[DEFAULT_EDITION],
        "auth_url": DEFAULT_AUTH_URL,
        "token_url": DEFAULT_TOKEN_URL,
        "scope": DEFAULT_SCOPE,
        "audience": DEFAULT_AUDIENCE,
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "refresh_token_lifetime_days": str(DEFAULT_REFRESH_TOKEN_LIFETIME_DAYS),
        "token_variable": "sage200_token__<conn_id>",
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-sage200",
        "name": "Sage 200",
        "description": "Sage 200 (UK & Ireland) accounting API, with rotation-safe Sage ID OAuth tokens.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Sage 200",
                "external-doc-url": "https://developer.sage.com/200/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {"integration-name": "Sage 200", "python-modules": ["airflow_provider_sage200.hooks.sage200"]}
        ],
        "operators": [
            {"integration-name": "Sage 200", "python-modules": ["airflow_provider_sage200.operators.sage200"]}
        ],
        "sensors": [
            {"integration-name": "Sage 200", "python-modules": ["airflow_provider_sage200.sensors.sage200"]}
        ],
        "triggers": [
            {"integration-name": "Sage 200", "python-modules": ["airflow_provider_sage200.triggers.sage200"]}
        ],
        "cli": ["airflow_provider_sage200.cli.definition.get_sage200_cli_commands"],
        "connection-types": [
            {
                "connection-type": "sage200",
                "hook-class-name": "airflow_provider_sage200.hooks.sage200.Sage200Hook",
                "hook-name": "Sage 200",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
        "config": {
            "sage200": {
                "description": "Token refresh and HTTP behaviour of the Sage 200 provider.",
                "options": {
                    "refresh_margin_seconds": _option(
                        "Refresh the access token when fewer seconds than this remain.", "300"
                    ),
                    "refresh_lease_seconds": _option(
                        "How long a worker's claim to refresh the token stays valid.", "120"
                    ),
                    "claim_write_limit_seconds": _option(
                        "Longest a refresh-claim Variable write may take to count (Fischer's D).", "2.0"
                    ),
                    "claim_settle_seconds": _option(
                        "Wait after a claim before checking who won; must exceed the write limit.", "2.5"
                    ),
                    "lease_poll_seconds": _option("How often waiting workers re-read the token.", "0.5"),
                    "host_lock": _option(
                        "Also serialise refreshes on one host with a file lock.", "True", "boolean"
                    ),
                    "connect_timeout_seconds": _option("HTTP connect timeout.", "10"),
                    "read_timeout_seconds": _option("HTTP read timeout.", "60"),
                    "max_attempts": _option("Attempts per request, the first included.", "10", "integer"),
                    "max_retry_seconds": _option("No retry starts after this many seconds.", "300"),
                    "backoff_base_seconds": _option(
                        "First retry backoff ceiling; doubles per attempt.", "0.5"
                    ),
                },
            }
        },
    }
