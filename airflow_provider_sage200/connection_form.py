"""The connection form for Airflow 2.11, 3.0 and 3.1, built from the declarative ``conn-fields``.

Airflow 3.2+ reads ``conn-fields`` / ``ui-field-behaviour`` from provider info and skips the hook's Python
methods. Older lines call ``get_connection_form_widgets`` / ``get_ui_field_behaviour`` on the hook: the FAB form
on 2.11 with real WTForms fields, the React form on 3.0/3.1 with Airflow's stand-ins for the same WTForms
names (only ``StringField``, ``IntegerField``, ``PasswordField``, ``BooleanField``, ``Optional`` and ``any_of``
exist there, so only those are used). One field list serves every line: :data:`CONN_FIELDS`.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_sage200.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR


def connection_form_widgets() -> dict[str, Any]:
    """WTForms fields for the extra fields, keyed by field name (Airflow adds the ``extra__sage200__`` prefix)."""
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for name, field in CONN_FIELDS.items():
        schema = field["schema"]
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        validators: list[Any] = [Optional()]
        if "enum" in schema:
            validators.append(any_of(schema["enum"]))
        kwargs: dict[str, Any] = {"validators": validators, "description": field["description"]}
        if "default" in schema:
            kwargs["default"] = schema["default"]
        label = lazy_gettext(field["label"])
        if schema.get("format") == "password":
            widgets[name] = PasswordField(label, widget=BS3PasswordFieldWidget(), **kwargs)
        elif "integer" in types:
            widgets[name] = IntegerField(label, widget=BS3TextFieldWidget(), **kwargs)
        else:
            widgets[name] = StringField(label, widget=BS3TextFieldWidget(), **kwargs)
    return widgets


def ui_field_behaviour() -> dict[str, Any]:
    """``hidden_fields`` / ``relabeling`` / ``placeholders`` in the hook-method spelling."""
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }
