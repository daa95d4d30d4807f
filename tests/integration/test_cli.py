"""The `sage200` console script and the `airflow sage200` group, as separate processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SAGE200 = [sys.executable, "-m", "airflow_provider_sage200.cli.main"]


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
    refresh = run(sys.executable, "-m", "airflow", "sage200", "token", "refresh")
    assert refresh.returncode == 0, refresh.stderr
    assert emulator.client.stats()["token_grants"]["refresh_token"] == 1
    secrets = emulator.client.issued_tokens()
    output = check.stdout + sites.stdout + refresh.stdout + refresh.stderr
    assert not [s for s in secrets["access_tokens"] + secrets["refresh_tokens"] if s in output]
