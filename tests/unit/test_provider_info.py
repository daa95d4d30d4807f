from __future__ import annotations

import subprocess
import sys

from airflow_provider_sage200.get_provider_info import get_provider_info


def test_connection_form_declares_the_documented_fields():
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "sage200"
    assert conn_type["hook-name"] == "Sage 200"
    assert set(conn_type["ui-field-behaviour"]["hidden-fields"]) == {"host", "port", "schema"}
    assert conn_type["ui-field-behaviour"]["relabeling"] == {
        "login": "Client ID",
        "password": "Client Secret",
    }
    fields = conn_type["conn-fields"]
    assert list(fields) == [
        "edition",
        "site_id",
        "company_id",
        "api_url",
        "auth_url",
        "token_url",
        "scope",
        "audience",
        "redirect_uri",
        "subscription_key",
        "refresh_token_lifetime_days",
        "token_variable",
    ]
    assert fields["edition"]["schema"]["enum"] == ["standard", "professional"]
    assert fields["edition"]["schema"]["default"] == "professional"
    assert fields["subscription_key"]["schema"]["format"] == "password"
    # Airflow's UI masks defaults of fields whose names contain "token" and would save the mask.
    from airflow.sdk.log import redact

    for name, field in fields.items():
        if "default" in field["schema"]:
            assert redact(str(field["schema"]["default"]), name) != "***", name


def test_airflow_discovers_the_provider_and_its_form():
    """Airflow's own providers manager (in a fresh process) loads the entry point and the form metadata."""
    code = (
        "from airflow.providers_manager import ProvidersManager as P\n"
        "pm = P()\n"
        "assert 'airflow-provider-sage200' in pm.providers, sorted(pm.providers)\n"
        "hook = pm.hooks['sage200']\n"
        "print(hook.hook_class_name, hook.connection_type)\n"
        "print(sorted(k for k in pm.connection_form_widgets if k.startswith('extra__sage200__')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "airflow_provider_sage200.hooks.sage200.Sage200Hook sage200" in out
    assert "extra__sage200__edition" in out
    assert "extra__sage200__token_variable" in out
