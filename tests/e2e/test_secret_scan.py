"""After every other end-to-end test: no token or client secret in any log the real deployment wrote."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.runs_last]


def test_no_issued_token_or_client_secret_in_any_log(deployment):
    issued = deployment.emulator.client.issued_tokens()
    secrets = [*issued["access_tokens"], *issued["refresh_tokens"], *issued["auth_codes"], "emulator-secret"]
    assert len(issued["refresh_tokens"]) >= 3  # consent, the token page and the DAGs rotated the token
    logs = [
        p for p in deployment.home.rglob("*") if p.is_file() and (p.suffix == ".log" or "logs" in p.parts)
    ]
    assert len(logs) >= 10, logs  # the processes' logs and every task's log
    text = "".join(p.read_text(errors="replace") for p in logs)
    assert [s for s in secrets if s in text] == []
