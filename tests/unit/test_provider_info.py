from __future__ import annotations

import subprocess
import sys

import pytest

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
    from tests.compat import redact

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
    from airflow_provider_sage200.version_compat import AIRFLOW_V_3_0_PLUS, DECLARATIVE_CONN_FIELDS

    if AIRFLOW_V_3_0_PLUS and not DECLARATIVE_CONN_FIELDS:
        return  # 3.0/3.1 build the React form elsewhere: test_the_react_form_of_3_0_and_3_1_shows_the_fields
    assert "extra__sage200__edition" in out
    assert "extra__sage200__token_variable" in out


def test_the_react_form_of_3_0_and_3_1_shows_the_fields():
    """3.0/3.1's /ui/connections/hook_meta runs the hook's form methods against Airflow's WTForms stand-ins."""
    import importlib.util

    from airflow_provider_sage200.version_compat import (
        AIRFLOW_V_3_0_PLUS,
        AIRFLOW_V_3_1_PLUS,
        DECLARATIVE_CONN_FIELDS,
    )

    if not AIRFLOW_V_3_0_PLUS or DECLARATIVE_CONN_FIELDS:
        pytest.skip("only Airflow 3.0 and 3.1 build the React form from the hook's methods")
    if not AIRFLOW_V_3_1_PLUS and importlib.util.find_spec("flask_appbuilder") is None:
        pytest.skip("Airflow 3.0 shows custom fields of any provider only with the FAB provider installed")
    code = (
        "from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService as S\n"
        "m = [h for h in S.hook_meta_data() if h.connection_type == 'sage200'][0]\n"
        "print(m.hook_name, m.standard_fields.login.title, m.standard_fields.host.hidden)\n"
        "print(sorted(m.extra_fields))\n"
        "print(m.extra_fields['edition']['schema']['enum'], m.extra_fields['subscription_key']['schema'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Sage 200 Client ID True" in out
    assert "'token_variable'" in out and "'site_id'" in out
    assert "['standard', 'professional']" in out and "'format': 'password'" in out


def test_connection_form_help_is_plain_text_and_names_every_default():
    from airflow_provider_sage200 import connection
    from airflow_provider_sage200.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
    from tests.compat import redact

    for name, field in CONN_FIELDS.items():
        assert "`" not in field["description"], name  # the form shows Markdown literally
    defaults = {
        "auth_url": connection.DEFAULT_AUTH_URL,
        "token_url": connection.DEFAULT_TOKEN_URL,
        "scope": connection.DEFAULT_SCOPE,
        "audience": connection.DEFAULT_AUDIENCE,
        "redirect_uri": connection.DEFAULT_REDIRECT_URI,
        "api_url": connection.API_BASE_URLS[connection.DEFAULT_EDITION],
        "refresh_token_lifetime_days": str(connection.DEFAULT_REFRESH_TOKEN_LIFETIME_DAYS),
    }
    placeholders = UI_FIELD_BEHAVIOUR["placeholders"]
    for name, default in defaults.items():
        assert placeholders[name] == default, name
        assert default in CONN_FIELDS[name]["description"], name
    assert "Edition" in CONN_FIELDS["api_url"]["description"]
    assert "Overrides" in CONN_FIELDS["api_url"]["description"]
    # Fields whose stored text Airflow shows as *** on Edit say so, and that saving *** keeps the value.
    for name, field in CONN_FIELDS.items():
        masked = redact("some text", name) == "***"
        assert masked == ("Shown as ***" in field["description"]) or "integer" in str(field["schema"]), name
    assert redact("https://id.sage.com/oauth/token", "token_url") == "***"


def test_hook_form_methods_carry_the_same_help_and_placeholders():
    """2.11, 3.0 and 3.1 build the form from the hook's methods: the same texts as conn-fields."""
    import importlib.util

    from airflow_provider_sage200.connection_form import connection_form_widgets, ui_field_behaviour
    from airflow_provider_sage200.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR

    assert ui_field_behaviour()["placeholders"] == UI_FIELD_BEHAVIOUR["placeholders"]
    if importlib.util.find_spec("flask_appbuilder") is None:
        return  # the WTForms fields need FAB; the React form of 3.2+ reads CONN_FIELDS directly
    widgets = connection_form_widgets()
    assert {name: w.kwargs["description"] for name, w in widgets.items()} == {
        name: f["description"] for name, f in CONN_FIELDS.items()
    }
