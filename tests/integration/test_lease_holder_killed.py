"""A worker killed (SIGKILL) while it holds the refresh lease blocks the others no longer than the lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from airflow_provider_sage200.hooks.sage200 import Sage200Hook

LEASE_SECONDS = 8

HOLDER = r"""
import time
from airflow_provider_sage200.hooks.sage200 import Sage200Hook

def hang_at_sage_id(token):
    print("HOLDING", flush=True)
    time.sleep(600)

Sage200Hook().coordinator.ensure_fresh(lambda token: True, hang_at_sage_id)
"""

CALLER = r"""
import time
from airflow_provider_sage200.hooks.sage200 import Sage200Hook

started = time.monotonic()
assert len(Sage200Hook().send("sop_orders", query={"$top": 1})) == 1
print(f"WAITED {time.monotonic() - started:.2f}")
"""


@pytest.mark.multiprocess
@pytest.mark.parametrize("host_lock", ["True", "False"], ids=["host-lock", "lease-only"])
def test_killed_lease_holder_blocks_others_at_most_the_lease(consented, emulator, host_lock):
    hook = Sage200Hook()
    hook.token_store.save(hook.token_store.load() | {"expires_at": int(time.time()) - 10})
    env = os.environ | {
        "AIRFLOW__SAGE200__REFRESH_LEASE_SECONDS": str(LEASE_SECONDS),
        "AIRFLOW__SAGE200__HOST_LOCK": host_lock,
    }
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], env=env, stdout=subprocess.PIPE, text=True)
    lines = (line.strip() for line in iter(holder.stdout.readline, ""))
    assert "HOLDING" in lines, "the holder never claimed the lease"
    claimed_at = time.monotonic()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)

    caller = subprocess.run(
        [sys.executable, "-c", CALLER], env=env, capture_output=True, text=True, timeout=LEASE_SECONDS + 60
    )
    assert caller.returncode == 0, caller.stderr[-3000:]
    unblocked_after = time.monotonic() - claimed_at
    waited = float(caller.stdout.split("WAITED")[-1])
    # The caller waited for the dead holder's lease to run out, and no longer (plus process start-up).
    assert waited < LEASE_SECONDS + 5, waited
    assert LEASE_SECONDS - 3 < unblocked_after < LEASE_SECONDS + 15, unblocked_after
    stats = emulator.client.stats()
    assert stats["token_grants"]["refresh_token"] == 1
    assert stats["invalid_grant"] == 0 and stats["reuse_detected"] == 0
