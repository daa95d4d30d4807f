"""The emulator's HTTPS option: served with a certificate from a CA the client trusts, never with verification
off."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
import trustme

from airflow_provider_sage200.emulator import EmulatorConfig, EmulatorServer


def test_https_emulator_is_trusted_through_its_ca_only(tmp_path):
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    ca_file, cert, key = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    issued.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    with EmulatorServer(EmulatorConfig(sop_orders=10), tls=(str(cert), str(key), str(ca_file))) as server:
        assert server.url.startswith("https://127.0.0.1:")
        assert server.token_url.startswith("https://")
        assert server.client.health()["ok"]
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{server.url}/_emulator/health", timeout=10)  # the system CAs do not know it


def test_a_certificate_without_its_key_is_refused():
    command = [sys.executable, "-m", "airflow_provider_sage200.emulator", "--tls-cert", "cert.pem"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--tls-cert and --tls-key go together" in result.stderr
