"""Shared fixtures: a throwaway Airflow home with a SQLite metadata DB, the emulator, a consented connection.

Environment variables are set at import time, before anything imports Airflow, so every test (and every
subprocess a test starts) sees the same AIRFLOW_HOME, DAGs folder and Fernet key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

TEST_DAGS = Path(__file__).resolve().parent / "dags"
_HOME = Path(tempfile.mkdtemp(prefix="sage200-airflow-home-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(TEST_DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        # Refresh coordination timings scaled down for tests (production defaults are seconds).
        "AIRFLOW__SAGE200__CLAIM_WRITE_LIMIT_SECONDS": "0.5",
        "AIRFLOW__SAGE200__CLAIM_SETTLE_SECONDS": "0.6",
        "AIRFLOW__SAGE200__LEASE_POLL_SECONDS": "0.1",
        "AIRFLOW__SAGE200__REFRESH_LEASE_SECONDS": "30",
        "AIRFLOW__SAGE200__BACKOFF_BASE_SECONDS": "0.05",
        "AIRFLOW__SAGE200__MAX_ATTEMPTS": "6",
    }
)
for _name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_") or n.startswith("AIRFLOW_VAR_")]:
    del os.environ[_name]

CONN_ID = "sage200_default"
REDIRECT_URI = "http://127.0.0.1:8765/callback"


# Where Airflow keeps its log maskers on each line (3.1+ has core's and the Task SDK's; 2.11 and 3.0 one).
_MASKER_MODULES = (
    "airflow.sdk._shared.secrets_masker.secrets_masker",
    "airflow._shared.secrets_masker.secrets_masker",
    "airflow.sdk.execution_time.secrets_masker",
    "airflow.utils.log.secrets_masker",
)


@pytest.fixture(autouse=True)
def _fresh_log_maskers():
    """Give each test the pytest process's log maskers as they were before it.

    dag.test() runs tasks in this process, and Airflow recompiles a masker's whole pattern list for every secret
    it is given: without this, each test's rotated tokens stay registered, and late in the suite a Variable write
    of a test with 3-second tokens takes longer than the claim-write limit, so its refreshes (rightly) never
    claim. A task process in production starts with a fresh masker.
    """
    maskers = []
    for name in _MASKER_MODULES:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "_secrets_masker"):
            masker = module._secrets_masker()
            maskers.append((masker, set(masker.patterns), getattr(masker, "replacer", None)))
    masking = sys.modules.get("airflow_provider_sage200.masking")
    registered = set(masking._registered) if masking is not None else None
    yield
    for masker, patterns, replacer in maskers:
        masker.patterns = patterns
        masker.replacer = replacer
    if registered is not None:
        masking._registered.intersection_update(registered)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB in the throwaway AIRFLOW_HOME."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return _HOME


@pytest.fixture(scope="session")
def emulator_server():
    from airflow_provider_sage200.emulator import EmulatorConfig, EmulatorServer

    server = EmulatorServer(EmulatorConfig(sop_orders=20_000, customers=100, products=50), port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def emulator(emulator_server):
    """The running emulator, reset to its startup state before each test."""
    emulator_server.client.reset()
    yield emulator_server
    emulator_server.client.reset()


def connection_json(emulator, *, edition: str = "professional", **extra) -> str:
    site = emulator.client.sites()[0]
    fields = {
        "edition": edition,
        "site_id": site["site_id"],
        "company_id": site["company_id"],
        "api_url": emulator.api_url(edition),
        "auth_url": emulator.auth_url,
        "token_url": emulator.token_url,
        "redirect_uri": REDIRECT_URI,
    } | extra
    return json.dumps(
        {"conn_type": "sage200", "login": "emulator-client", "password": "emulator-secret", "extra": fields}
    )


@pytest.fixture
def sage200_conn(emulator, monkeypatch, airflow_db):
    """Connection ``sage200_default`` pointing at the emulator (given as AIRFLOW_CONN_*, like a secrets backend).

    Each test gets its own token Variable, so tests never see each other's tokens.
    """
    variable = f"sage200_token__{os.urandom(4).hex()}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(emulator, token_variable=variable))
    from airflow_provider_sage200.token_provider import Sage200TokenProvider

    Sage200TokenProvider.clear_cache()
    return CONN_ID


def consent(emulator, conn_id: str = CONN_ID):
    """Do what a person does once: open the consent URL (the emulator auto-consents) and store the token."""
    from airflow_provider_sage200.hooks.sage200 import Sage200Hook

    hook = Sage200Hook(conn_id)
    answer = requests.get(hook.authorization_url("state-123"), allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text
    location = answer.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["state-123"]
    return hook.exchange_code(query["code"][0])


@pytest.fixture
def consented(sage200_conn, emulator):
    """A connection with a stored token from a fresh consent."""
    consent(emulator)
    return sage200_conn
