"""Refresh under real concurrency: 16 mapped tasks on LocalExecutor workers share one connection whose access token
lives 5 seconds (zero reuse grace, reuse detection on), for ``$SAGE200_SOAK_SECONDS`` of calls (75 s in
``make test``, 600 s in ``make soak``), alongside an export and the refresh operator.

Longer soaks run in waves of fresh task processes, at most ``$SAGE200_SOAK_WAVE_SECONDS`` (200) each. Airflow
registers every token a task reads with its log masker, and the masker recompiles all its patterns for each new one,
in the task process and in its supervisor: with 5-second tokens a process sees ~15 rotations a minute, and after
about 9 minutes masking a new token costs the 32 processes so much CPU that tokens reach waiters nearly expired
(measured: docs/reliability.md). A real access token lives about an hour, so a 200 s wave already shows one process
more rotations than a two-day task would see.

Pass: every task of every wave succeeds; the emulator saw no ``invalid_grant``, no reuse and no revoked family; and
the refreshes number about one per usable token life (TTL minus the margin, which is capped at half the TTL), not one
per task.
"""

from __future__ import annotations

import json
import math
import os
import time

import pytest

from tests.e2e.soak import (
    TTL,
    assert_no_token_trouble,
    assert_refreshes_track_token_life,
    lease_seconds,
    soak_figures,
)

pytestmark = pytest.mark.e2e

SOAK_SECONDS = float(os.environ.get("SAGE200_SOAK_SECONDS", "75"))
WAVE_SECONDS = float(os.environ.get("SAGE200_SOAK_WAVE_SECONDS", "200"))
WAVES = math.ceil(SOAK_SECONDS / WAVE_SECONDS)


# The suite's 600 s timeout would cut `make soak` (600 s of calls) short: allow the run plus start-up and wind-down.
@pytest.mark.timeout(SOAK_SECONDS + 120 * WAVES + 360)
def test_sixteen_workers_share_a_five_second_token(deployment):
    emulator = deployment.emulator.client
    emulator.configure(access_token_ttl=TTL, reuse_grace=0, reuse_detection=True)
    runs: list[dict] = []
    try:
        deployment.sage200("token", "refresh")  # start from a 5-second token
        before = emulator.stats()
        started = time.monotonic()
        seconds = SOAK_SECONDS / WAVES
        for _ in range(WAVES):
            runs.append(deployment.run_dag("e2e_soak", {"seconds": seconds}, timeout=seconds + 360))
            if runs[-1]["state"] != "success":
                break
        elapsed = time.monotonic() - started
        after = emulator.stats()
    finally:
        emulator.configure(access_token_ttl=3600)
        deployment.sage200("token", "refresh")

    for run in runs:
        states = run["task_instances"]
        assert run["state"] == "success", states
        assert len([s for s in states if s[0] == "hammer"]) == 16
        assert all(state == "success" for _, _, state in states), states
    assert len(runs) == WAVES

    figures = {
        "waves": WAVES,
        "tasks": sum(len(run["task_instances"]) for run in runs),
        "soak_seconds": SOAK_SECONDS,
        **soak_figures(before, after, elapsed),
    }
    print("soak:", json.dumps(figures))
    assert_no_token_trouble(figures)
    assert figures["api_calls"] > 16 * SOAK_SECONDS  # every worker kept calling
    assert_refreshes_track_token_life(figures, SOAK_SECONDS, lease_seconds(deployment.env))
