"""Defect 9: with ``[logging] logging_level = DEBUG`` Airflow's own comms log prints the provider's secrets.

Airflow's Task SDK logs each message a task sends its supervisor at DEBUG (``MaskSecret``, ``PutVariable``) as the
message object, which its masker does not look inside. That is Airflow's to fix; the provider warns when those
loggers are at DEBUG, and these tests pin down that its own log lines never hold a secret, even at DEBUG.
"""

from __future__ import annotations

import logging
import time

import pytest

from airflow_provider_sage200 import masking
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.token_provider import Sage200TokenProvider
from tests.conftest import CONN_ID, TEST_DAGS, connection_json
from tests.dag_runner import run_dag_in_process_with_output

WARNING = "is DEBUG: Airflow's Task SDK then logs each message a task sends its supervisor"
KEY = "debug-subscription-key"


@pytest.mark.parametrize(
    ("levels", "warned"),
    [
        ({"LOGGING_LEVEL": "DEBUG"}, True),
        ({"LOGGING_LEVEL": "INFO", "NAMESPACE_LEVELS": "sqlalchemy=WARNING supervisor=DEBUG"}, True),
        ({"LOGGING_LEVEL": "INFO", "NAMESPACE_LEVELS": "sqlalchemy.engine=DEBUG"}, False),
        ({"LOGGING_LEVEL": "INFO"}, False),
    ],
)
def test_the_hook_warns_once_when_the_comms_log_is_at_debug(
    sage200_conn, monkeypatch, caplog, levels, warned
):
    for name, value in levels.items():
        monkeypatch.setenv(f"AIRFLOW__LOGGING__{name}", value)
    monkeypatch.setattr(masking, "_debug_warned", False, raising=False)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_sage200.masking"):
        _ = Sage200Hook().config
        _ = Sage200Hook().config
    assert caplog.text.count(WARNING) == (1 if warned else 0)


def test_at_debug_secrets_appear_only_in_airflows_comms_messages(consented, emulator, monkeypatch):
    """A dag.test() at DEBUG that refreshes inside the task: the warning is logged, and every line holding a
    token, the client secret or the subscription key is one of Airflow's MaskSecret/PutVariable messages."""
    variable = Sage200Hook().config.token_variable
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        connection_json(emulator, token_variable=variable, subscription_key=KEY),
    )
    hook = Sage200Hook()
    hook.token_store.save(hook.token_store.load() | {"expires_at": int(time.time()) - 10})
    Sage200TokenProvider.clear_cache()
    env = {
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        "AIRFLOW__SAGE200__CLAIM_WRITE_LIMIT_SECONDS": "5",
        "AIRFLOW__SAGE200__CLAIM_SETTLE_SECONDS": "5.5",
    }
    results, output = run_dag_in_process_with_output(TEST_DAGS, "t_hook_call", env=env)
    assert results["call_api"][0] == "success"
    assert WARNING in output
    issued = emulator.client.issued_tokens()
    assert len(issued["refresh_tokens"]) >= 2  # the task refreshed: a rotated token was sent and stored
    secrets = [*issued["access_tokens"], *issued["refresh_tokens"], "emulator-secret", KEY]
    leaking = [line for line in output.splitlines() if any(s in line for s in secrets)]
    not_airflows = [line for line in leaking if "MaskSecret(" not in line and "PutVariable(" not in line]
    assert not_airflows == []
