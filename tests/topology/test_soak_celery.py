"""The soak on the production topology: 16 hammer tasks, a parallel export and the refresh operator spread over
three Celery worker hosts that share one connection whose access token lives 5 seconds (zero reuse grace, reuse
detection on); the cross-host lease, across a real network, is the only guard between hosts.

``$SAGE200_CELERY_SOAK_SECONDS`` of calls: 120 in ``make test``, 600 in ``make soak-celery``. As in the
single-host soak (tests/e2e/test_soak.py), longer soaks run in waves of fresh task processes of at most
``$SAGE200_SOAK_WAVE_SECONDS`` (200) each: Airflow's log masker charges a task process more for every token
rotation it has seen, and a 5-second token rotates a real hour's worth in seconds (docs/reliability.md).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter

import pytest

from tests.e2e.soak import assert_refreshes_track_token_life, lease_seconds
from tests.topology.conftest import soak

pytestmark = pytest.mark.topology

SOAK_SECONDS = float(os.environ.get("SAGE200_CELERY_SOAK_SECONDS", "120"))
WAVE_SECONDS = float(os.environ.get("SAGE200_SOAK_WAVE_SECONDS", "200"))
WAVES = math.ceil(SOAK_SECONDS / WAVE_SECONDS)
SUMMED = ("tasks", "run_seconds", "api_calls", "refreshes", "expected_refreshes_at_most")


@pytest.mark.timeout(SOAK_SECONDS + 420 * WAVES + 1800)  # the first test also sets the topology up
def test_sixteen_tasks_on_three_worker_hosts_share_a_five_second_token(topology):
    runs = []
    for _ in range(WAVES):  # each wave checks zero token trouble and the stored refresh token itself
        runs.append(soak(topology, SOAK_SECONDS / WAVES))
        assert all(state == "success" for _, _, state in runs[-1]["task_instances"]), runs[-1][
            "task_instances"
        ]
    waves = [run["figures"] for run in runs]
    figures = {key: round(sum(wave[key] for wave in waves), 1) for key in SUMMED}
    figures["hammer_tasks_per_host"] = dict(
        sum((Counter(w["hammer_tasks_per_host"]) for w in waves), Counter())
    )
    print("topology soak, all waves:", json.dumps({"waves": WAVES, **figures}))
    assert all(run["state"] == "success" for run in runs)
    assert len(figures["hammer_tasks_per_host"]) == 3, figures  # every worker host ran hammer tasks
    assert set(figures["hammer_tasks_per_host"]) == set(topology.hosts.values())
    assert figures["api_calls"] > 16 * SOAK_SECONDS
    assert_refreshes_track_token_life(figures, SOAK_SECONDS, lease_seconds(topology.env))
