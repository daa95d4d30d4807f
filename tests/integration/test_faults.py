"""Exports under injected faults, through dag.test() against the emulator.

The matrix: 10% 429 (with Retry-After), 5% 503, 2% dropped connections, 2% bodies cut short and 2% responses
slower than the read timeout, at once. Exports must still be exact, and no request may be tried more often than ``max_attempts``. An
outage longer than the retry budget fails cleanly (no file) and a rerun is exact; an outage within the budget
(Professional's tunnel restarting: 30 s of 503) is ridden out without anyone acting.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.test_dags import _ts, run_dag

pytestmark = pytest.mark.usefixtures("consented")

MATRIX = {
    "rate_429": 0.10,
    "retry_after": 1,
    "rate_5xx": 0.05,
    "status_5xx": 503,
    "rate_drop": 0.02,
    "rate_truncate": 0.02,
    "slow_rate": 0.02,
    "slow_ms": 1500,
}
ATTEMPT = re.compile(r"attempt (\d+) of (\d+)")


def _ids(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


@pytest.fixture
def faults(emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW__SAGE200__READ_TIMEOUT_SECONDS", "1")
    emulator.client.set_faults(**MATRIX)
    yield emulator
    emulator.client.clear_faults()


def test_full_export_is_exact_under_the_fault_matrix(faults, tmp_path, capfd, caplog):
    truth = [r["id"] for r in faults.client.truth("sop_orders", company_id=1)]
    results = run_dag("t_export_jsonl", {"output_dir": str(tmp_path)})
    assert results["export"][0] == "success", results
    assert _ids(tmp_path / "orders.jsonl") == truth
    injected = faults.client.stats()["faults_injected"]
    assert all(injected[kind] for kind in ("429", "503", "drop", "truncate", "slow")), injected
    logs = capfd.readouterr().out + caplog.text
    attempts = [(int(n), int(of)) for n, of in ATTEMPT.findall(logs)]
    assert attempts and all(n <= of == 6 for n, of in attempts), attempts


def test_incremental_export_is_exact_under_the_fault_matrix(faults, tmp_path):
    truth = faults.client.truth("sop_orders", company_id=1, fields=("id", "date_time_updated"))
    day = max(_ts(r) for r in truth).replace(hour=0, minute=0, second=0, microsecond=0)
    results = run_dag("t_incremental", {"output_dir": str(tmp_path)}, logical_date=day)
    assert results["export_interval"][0] == "success", results
    window = sorted(r["id"] for r in truth if day - timedelta(days=1) <= _ts(r) < day)
    assert _ids(tmp_path / f"{day - timedelta(days=1):%Y-%m-%d}.jsonl") == window and window  # the day read


def test_outage_longer_than_the_budget_fails_cleanly_and_a_rerun_is_exact(
    emulator, tmp_path, monkeypatch, capfd, caplog
):
    monkeypatch.setenv("AIRFLOW__SAGE200__MAX_RETRY_SECONDS", "3")
    emulator.client.set_faults(down_for=600)
    results = run_dag("t_export_jsonl", {"output_dir": str(tmp_path)})
    assert results["export"][0] == "failed"
    logs = capfd.readouterr().out + caplog.text
    assert re.search(r"failed \(HTTP 503\): .*gave up after \d+ attempts in \ds", logs)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one

    emulator.client.clear_faults()
    emulator.client.advance_clock(600)
    rerun = run_dag("t_export_jsonl", {"output_dir": str(tmp_path)}, logical_date=datetime.now().astimezone())
    assert rerun["export"][0] == "success", rerun
    assert _ids(tmp_path / "orders.jsonl") == [
        r["id"] for r in emulator.client.truth("sop_orders", company_id=1)
    ]


def test_tunnel_down_for_30_seconds_is_ridden_out_with_the_default_budget(emulator, tmp_path, monkeypatch):
    for option in ("BACKOFF_BASE_SECONDS", "MAX_ATTEMPTS"):
        monkeypatch.delenv(f"AIRFLOW__SAGE200__{option}")  # production defaults: 10 attempts, 0.5 s doubling
    emulator.client.set_faults(down_for=30)
    started = datetime.now()
    results = run_dag("t_export_jsonl", {"output_dir": str(tmp_path)})
    assert results["export"][0] == "success", results
    assert (datetime.now() - started).total_seconds() >= 30
    assert _ids(tmp_path / "orders.jsonl") == [
        r["id"] for r in emulator.client.truth("sop_orders", company_id=1)
    ]
    assert emulator.client.stats()["requests"]["503"] >= 3
