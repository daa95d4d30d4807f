"""The core promise: many processes sharing one connection never spend a refresh token twice.

8 OS processes call the emulator's API through Sage200Hook for ~12 s with a 3-second access-token TTL, zero reuse
grace and reuse detection on. The emulator's own statistics are the proof: zero invalid_grant, zero revoked
families, and roughly one refresh per token lifetime rather than one per process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

WORKER = r"""
import sys, time
from airflow_provider_sage200.hooks.sage200 import Sage200Hook

hook = Sage200Hook()
calls, deadline = 0, time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    assert len(hook.send("sop_orders", query={"$top": 1, "$select": "id"})) == 1
    calls += 1
print(calls)
"""


@pytest.mark.multiprocess
@pytest.mark.parametrize(
    ("host_lock", "refusal"),
    [
        pytest.param("True", None, id="host-lock"),
        pytest.param("False", None, id="lease-only"),
        # Sage ID refusing every refresh while the access token has more than 1 s left: "not now", never a failure.
        pytest.param("True", 1.0, id="early-refresh-refused"),
    ],
)
def test_eight_processes_share_one_rotating_token(consented, emulator, host_lock, refusal):
    emulator.client.configure(access_token_ttl=3, reuse_grace=0, reuse_detection=True)
    from airflow_provider_sage200.hooks.sage200 import Sage200Hook

    Sage200Hook().refresh()  # start from a 3-second token
    emulator.client.configure(early_refresh_refusal_seconds=refusal)
    base = emulator.client.stats()["token_grants"]["refresh_token"]
    env = os.environ | {"AIRFLOW__SAGE200__HOST_LOCK": host_lock}
    duration = 12.0
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(duration)], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    elapsed = time.monotonic() - started
    assert all(p.returncode == 0 for p in procs), outputs
    calls = sum(int(o.strip().splitlines()[-1]) for o in outputs)
    stats = emulator.client.stats()
    refreshes = stats["token_grants"]["refresh_token"] - base
    assert calls >= 200, calls
    assert stats["invalid_grant"] == 0
    assert stats["families_revoked"] == 0
    assert stats["reuse_detected"] == 0
    # Every 1.5 s (TTL 3 s minus a margin of half the lifetime) at most, plus slack for process start-up.
    assert 1 <= refreshes <= elapsed / 1.5 + 4, (refreshes, elapsed)
    print(f"{calls} calls, {refreshes} refreshes in {elapsed:.1f}s")
