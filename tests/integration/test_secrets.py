"""Secrets never reach task logs, XCom, rendered template fields or the metastore in clear text."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.token_provider import Sage200TokenProvider
from tests.conftest import _HOME
from tests.integration.test_dags import run_dag

pytestmark = pytest.mark.usefixtures("consented")


def test_tokens_and_client_secret_stay_out_of_logs_and_xcom(emulator, capfd, caplog, monkeypatch):
    # dag.test() runs these tasks in the pytest process, whose log masker holds every secret of the tests before
    # (Airflow recompiles its patterns per secret): late in the suite a Variable write here takes over the 0.5 s
    # claim-write limit conftest sets, and the lease then rightly never claims. Production-like bounds here.
    monkeypatch.setenv("AIRFLOW__SAGE200__CLAIM_WRITE_LIMIT_SECONDS", "5")
    monkeypatch.setenv("AIRFLOW__SAGE200__CLAIM_SETTLE_SECONDS", "5.5")
    hook = Sage200Hook()
    hook.token_store.save(hook.token_store.load() | {"expires_at": int(time.time()) - 10})
    Sage200TokenProvider.clear_cache()
    results = run_dag("t_hook_call")  # refreshes inside the task: new tokens arrive there
    results |= run_dag("t_refresh")
    issued = emulator.client.issued_tokens()
    secrets = [*issued["access_tokens"], *issued["refresh_tokens"], *issued["auth_codes"], "emulator-secret"]
    assert len(issued["refresh_tokens"]) >= 3
    out, err = capfd.readouterr()  # dag.test() runs tasks in this process and logs to its stdout/stderr
    assert "call_api" in out + err + caplog.text, "no task output was captured to scan"
    files = "".join(p.read_text(errors="replace") for p in (_HOME / "logs").rglob("*") if p.is_file())
    text = out + err + caplog.text + files + json.dumps(results, default=str) + _rendered_fields()
    leaked = [s for s in secrets if s in text]
    assert leaked == []


def _rendered_fields() -> str:
    """Every task's rendered template fields, as the UI shows them."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(RenderedTaskInstanceFields).all()
        assert rows, "no rendered fields were stored to scan"
        return json.dumps([row.rendered_fields for row in rows], default=str)


def test_token_variable_is_encrypted_in_the_metastore(emulator):
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    key = Sage200Hook().config.token_variable
    with create_session() as session:
        row = session.query(Variable).filter(Variable.key == key).one()
        assert row.is_encrypted
        assert "refresh_token" not in row._val


def test_a_refresh_stores_no_id_token_and_says_what_it_did(emulator, caplog):
    """Sage ID's id_token is masked when it arrives but not kept: the API never uses it."""
    hook = Sage200Hook()
    with caplog.at_level("INFO", logger="airflow_provider_sage200.refresh"):
        hook.refresh()
    stored = hook.token_store.load()
    said = f"Refreshed the Sage 200 token in Variable {hook.config.token_variable!r} (generation {stored['generation']}"
    assert said in caplog.text
    assert "id_token" not in stored
    assert {"access_token", "refresh_token", "expires_at", "refresh_token_expires_at"} <= stored.keys()


def test_each_secret_is_registered_with_the_log_maskers_once_per_process(monkeypatch):
    """Airflow recompiles a masker's patterns for every new secret and tells the supervisor: once is enough."""
    from airflow_provider_sage200 import masking
    from airflow_provider_sage200.version_compat import AIRFLOW_V_3_1_PLUS
    from tests.compat import redact

    registered: list[str] = []
    real = masking.mask_secret_in_task
    monkeypatch.setattr(masking, "mask_secret_in_task", lambda value: registered.append(value) or real(value))
    secret = "at_" + "k3Y" * 20
    for _ in range(3):
        masking.mask(secret)
    assert registered == [secret]
    assert redact(f"Bearer {secret}") == "Bearer ***"
    if (
        AIRFLOW_V_3_1_PLUS
    ):  # a separate core masker: outside a task it hides it too (API server, CLI log there)
        from airflow._shared.secrets_masker import redact as redact_in_core
        from airflow.sdk._shared.secrets_masker import redact as redact_in_task_sdk

        assert redact_in_task_sdk(f"Bearer {secret}") == "Bearer ***"
        assert redact_in_core(f"Bearer {secret}") == "Bearer ***"


SUBSCRIPTION_KEY = "emulator-subscription-key"


@pytest.fixture
def with_subscription_key(emulator, monkeypatch):
    """The consented connection, on a tenant that requires ``ocp-apim-subscription-key``."""
    from tests.conftest import CONN_ID, connection_json

    emulator.client.configure(require_subscription_key=True)
    variable = Sage200Hook().config.token_variable
    conn = connection_json(emulator, token_variable=variable, subscription_key=SUBSCRIPTION_KEY)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn)
    Sage200TokenProvider.clear_cache()


def test_the_subscription_key_and_client_secret_stay_out_of_reprs(with_subscription_key):
    """Defect 11: repr(config), vars(hook) and the hook's repr showed the client secret and the key."""
    hook = Sage200Hook()
    assert len(hook.send("sop_orders", query={"$top": 1})) == 1  # every cached part of the hook is built
    shown = [repr(hook.config), str(hook.config), repr(hook), str(hook), repr(vars(hook))]
    shown += [repr(vars(part)) for part in (hook.token_provider, hook.sage_id, hook.token_store)]
    assert [s for s in shown if SUBSCRIPTION_KEY in s or "emulator-secret" in s] == []
    assert "api_url=" in repr(hook.config)  # the rest is still shown


def test_the_subscription_key_is_masked_in_a_task_log(with_subscription_key):
    """Defect 11: the key was not registered with the masker (Airflow masks only names with token, secret...),
    so a real worker's task log showed it. The task returns what its log masker makes of a line holding both."""
    results = run_dag("t_log_connection")
    assert results["log_connection"][1] == "key *** secret ***"
