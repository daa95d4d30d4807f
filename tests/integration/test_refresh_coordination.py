"""The refresh coordination against the real metastore (SQLite), with many threads and many processes.

The token authority here is a ledger file that plays Sage ID's rotation rule exactly: every refresh token can
be spent once; spending one twice is recorded as a reuse. (The full system with the emulator's Sage ID is
covered in test_hook_rotation.py.)
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from airflow_provider_sage200.refresh import RefreshCoordinator, RefreshTiming, _host_lock
from airflow_provider_sage200.token_store import VariableTokenStore

WORKER = r"""
import json, sys, time, fcntl
from airflow_provider_sage200.refresh import RefreshCoordinator, RefreshTiming
from airflow_provider_sage200.token_store import VariableTokenStore

key, ledger, host_lock, rounds = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
sys.path.insert(0, sys.argv[5])
from test_refresh_coordination import spend

coordinator = RefreshCoordinator(
    VariableTokenStore(key),
    timing=RefreshTiming(lease_seconds=20, claim_write_limit=0.5, claim_settle=0.6, poll_interval=0.05, host_lock=host_lock),
)
for generation in range(1, rounds + 1):
    coordinator.ensure_fresh(lambda t, g=generation: t["generation"] < g, lambda t: spend(ledger, t))
"""


def spend(ledger: str, token: dict) -> dict:
    """Sage ID's rule: a refresh token is single use; returns the rotated token."""
    with open(ledger, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        spent = handle.read().split()
        reuse = token["refresh_token"] in spent
        handle.write(("REUSE:" if reuse else "") + token["refresh_token"] + "\n")
    time.sleep(0.05)  # the token endpoint takes a moment; widens any race
    generation = token["generation"] + 1
    return {
        "access_token": f"at-{generation}-xxxxxx",
        "refresh_token": f"rt-{generation}-xxxxxx",
        "expires_at": time.time() + 60,
        "generation": generation,
    }


def seed(key: str) -> VariableTokenStore:
    store = VariableTokenStore(key)
    store.save(
        {"access_token": "at-0-xxxxxx", "refresh_token": "rt-0-xxxxxx", "expires_at": 0, "generation": 0}
    )
    return store


@pytest.mark.usefixtures("airflow_db")
def test_threads_of_one_process_refresh_once(tmp_path):
    store = seed("sage200_token__threads")
    ledger = str(tmp_path / "ledger")
    coordinator = RefreshCoordinator(store, timing=RefreshTiming(claim_write_limit=0.5, claim_settle=0.6))
    results = []

    def worker():
        results.append(coordinator.ensure_fresh(lambda t: t["generation"] < 1, lambda t: spend(ledger, t)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Path(ledger).read_text().split() == ["rt-0-xxxxxx"]
    assert {r["refresh_token"] for r in results} == {"rt-1-xxxxxx"}
    assert store.load()["generation"] == 1


@pytest.mark.usefixtures("airflow_db")
def test_a_waiter_stops_waiting_for_the_host_lock_once_the_token_is_fresh():
    """flock is not fair: a waiter must not depend on winning it while others keep refreshing (found by the soak)."""
    key = "sage200_token__starved"
    store = seed(key)
    coordinator = RefreshCoordinator(store, timing=RefreshTiming(claim_write_limit=0.5, claim_settle=0.6))
    spent: list[dict] = []
    result: dict = {}

    def waiter() -> None:
        result.update(coordinator.ensure_fresh(lambda t: t["generation"] < 1, spent.append))

    with _host_lock(key, 30, lambda: False, 1.0) as held:  # another process holds the lock throughout
        assert held
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive()  # waiting for the lock
        store.save(
            {"access_token": "at-1-xxxxxx", "refresh_token": "rt-1-xxxxxx", "expires_at": 0, "generation": 1}
        )
        thread.join(timeout=5)
        assert not thread.is_alive()
    assert result["generation"] == 1
    assert spent == []


@pytest.mark.multiprocess
@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize(
    "host_lock", [pytest.param(True, id="host-lock"), pytest.param(False, id="lease-only")]
)
def test_processes_never_spend_a_refresh_token_twice(tmp_path, host_lock):
    """6 processes race through 5 rotations; with the file lock off, only the Fischer lease protects them."""
    key = f"sage200_token__procs_{int(host_lock)}"
    store = seed(key)
    ledger = str(tmp_path / "ledger")
    rounds = 5
    here = str(Path(__file__).parent)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, key, ledger, "1" if host_lock else "0", str(rounds), here],
            env=os.environ.copy(),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
    spent = Path(ledger).read_text().split()
    assert not [s for s in spent if s.startswith("REUSE:")]
    assert spent == [f"rt-{g}-xxxxxx" for g in range(rounds)]
    assert store.load()["generation"] == rounds
    lease = json.loads(store.load_raw(f"{key}__refresh_lease"))
    assert lease["owner"] is None


@pytest.mark.usefixtures("airflow_db")
def test_a_token_variable_read_before_is_waited_for_while_it_reads_as_missing(caplog):
    """The Task SDK reports a Variable it cannot fetch (API server restarting) as not found: once this process
    has read the token Variable, its absence is waited out (bounded), not reported as 'no token stored'."""
    from airflow.models import Variable

    key = f"sage200_token__outage_{os.urandom(3).hex()}"
    store = seed(key)
    VariableTokenStore(key).load()  # read once by this process
    value = Variable.get(key)
    Variable.delete(key)  # what a read looks like while the API server is down
    restore = threading.Timer(1.5, lambda: Variable.set(key, value))
    restore.start()
    started = time.monotonic()
    token = VariableTokenStore(key, outage_wait=20).load()
    waited = time.monotonic() - started
    restore.join()
    assert token is not None and token["refresh_token"] == "rt-0-xxxxxx"
    assert 1.4 <= waited < 10, waited
    assert "taking it for the API server being unreachable" in caplog.text

    Variable.delete(key)
    started = time.monotonic()
    assert VariableTokenStore(key, outage_wait=1).load() is None  # still missing after the wait: none stored
    assert 1 <= time.monotonic() - started < 5
    never_read = f"sage200_token__never_{os.urandom(3).hex()}"
    started = time.monotonic()
    assert store.__class__(never_read).load() is None  # never read here: missing at once, no wait
    assert time.monotonic() - started < 1
