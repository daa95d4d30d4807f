"""The `sage200` console script and the `airflow sage200` group, as separate processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_provider_sage200.version_compat import PROVIDER_CLI_SUPPORTED

SAGE200 = [sys.executable, "-m", "airflow_provider_sage200.cli.main"]
# `airflow sage200 ...` where Airflow loads provider CLI groups (3.2+); the same commands as `sage200 ...` before.
AIRFLOW_SAGE200 = [sys.executable, "-m", "airflow", "sage200"] if PROVIDER_CLI_SUPPORTED else SAGE200


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


def test_token_check_fails_without_a_token(sage200_conn):
    result = run(*SAGE200, "token", "check")
    assert result.returncode == 1
    assert "No Sage 200 token stored" in result.stdout and "sage200 auth login" in result.stdout


@pytest.mark.usefixtures("consented")
def test_check_sites_and_refresh(emulator):
    check = run(*SAGE200, "token", "check", "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["has_token"] is True
    sites = run(*SAGE200, "sites", "--json")
    assert sites.returncode == 0 and len(json.loads(sites.stdout)) == 3
    refresh = run(*AIRFLOW_SAGE200, "token", "refresh")
    assert refresh.returncode == 0, refresh.stderr
    assert emulator.client.stats()["token_grants"]["refresh_token"] == 1
    secrets = emulator.client.issued_tokens()
    output = check.stdout + sites.stdout + refresh.stdout + refresh.stderr
    assert not [s for s in secrets["access_tokens"] + secrets["refresh_tokens"] if s in output]


def test_sites_use_puts_the_pair_into_the_metastore_connection(consented, emulator):
    import os

    from tests.conftest import connection_json

    refused = run(*SAGE200, "sites", "--use", "3")  # sage200_default comes from an environment variable
    assert refused.returncode == 1
    assert "not in the Airflow metastore" in refused.stderr and "company_id=3" in refused.stderr

    variable = json.loads(os.environ["AIRFLOW_CONN_SAGE200_DEFAULT"])["extra"]["token_variable"]
    conn_id = f"sage200_cli_{os.urandom(3).hex()}"
    stored = connection_json(emulator, site_id=None, company_id=None, token_variable=variable)
    added = run(sys.executable, "-m", "airflow", "connections", "add", conn_id, "--conn-json", stored)
    assert added.returncode == 0, added.stderr
    unknown = run(*SAGE200, "sites", "--conn-id", conn_id, "--use", "99")
    assert unknown.returncode == 1 and "cannot reach company 99" in unknown.stderr

    used = run(*SAGE200, "sites", "--conn-id", conn_id, "--use", "3")
    assert used.returncode == 0, used.stderr
    site = next(s for s in emulator.client.sites() if s["company_id"] == 3)
    assert f"site_id (empty) -> '{site['site_id']}'" in used.stdout
    assert "company_id (empty) -> 3" in used.stdout and site["company_name"] in used.stdout
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        extra = session.query(Connection).filter_by(conn_id=conn_id).one().extra_dejson
    assert (extra["site_id"], extra["company_id"]) == (site["site_id"], 3)
    again = run(*AIRFLOW_SAGE200, "sites", "--conn-id", conn_id, "--use", "3")
    assert again.returncode == 0 and "already uses" in again.stdout, again.stderr
