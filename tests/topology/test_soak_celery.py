"""The soak on the production topology: 16 hammer tasks, a parallel export and the refresh operator spread over
three Celery worker hosts that share one connection whose access token lives 5 seconds (zero reuse grace, reuse
detection on); the cross-host lease, across a real network, is the only guard between hosts.

``$SAGE200_CELERY_SOAK_SECONDS`` of calls: 120 in ``make test``, 600 in ``make soak-celery``.
"""

from __future__ import annotations

import os

import pytest

from tests.e2e.soak import assert_refreshes_track_token_life
from tests.topology.conftest import soak

pytestmark = pytest.mark.topology

SOAK_SECONDS = float(os.environ.get("SAGE200_CELERY_SOAK_SECONDS", "120"))


@pytest.mark.timeout(SOAK_SECONDS + 1800)  # the first test also sets the topology up
def test_sixteen_tasks_on_three_worker_hosts_share_a_five_second_token(topology):
    run = soak(topology, SOAK_SECONDS)
    figures = run["figures"]
    assert run["state"] == "success", run["task_instances"]
    assert all(state == "success" for _, _, state in run["task_instances"]), run["task_instances"]
    assert len(figures["hammer_tasks_per_host"]) == 3, figures  # every worker host ran hammer tasks
    assert set(figures["hammer_tasks_per_host"]) == set(topology.hosts.values())
    assert figures["api_calls"] > 16 * SOAK_SECONDS
    assert_refreshes_track_token_life(figures, SOAK_SECONDS)
