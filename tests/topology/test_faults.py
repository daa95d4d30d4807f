"""Faults across the network, each during a short soak on the production topology (one topology shared by all).

Pass for each: the tasks the fault did not hit succeed, and Sage saw no ``invalid_grant``, no reuse and no revoked
family; the token Variable ends holding the refresh token Sage accepts (checked by :func:`soak`).
"""

from __future__ import annotations

import time

import pytest

from tests.topology.conftest import failed_tasks, soak

pytestmark = [pytest.mark.topology, pytest.mark.timeout(1800)]

FAULT_SOAK_SECONDS = 40


def wait_for_lease_holder(topology, timeout: float = 60) -> str:
    """Wait until a worker host holds the refresh lease; its network namespace."""
    by_host = {host: ns for ns, host in topology.hosts.items()}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = topology.lease_holder()
        if holder in by_host:
            return by_host[holder]
        time.sleep(0.05)
    raise AssertionError("no worker host took the refresh lease")


def test_worker_host_killed_while_holding_the_refresh_lease(topology):
    killed: dict = {}

    def kill_the_lease_holder(run_id: str) -> dict:
        time.sleep(8)  # every host is calling by now
        ns = wait_for_lease_holder(topology)
        topology.kill_host(ns)
        killed["host"] = topology.hosts[ns]
        killed["ns"] = ns
        return {"sigkilled_lease_holder": killed["host"]}

    try:
        run = soak(topology, FAULT_SOAK_SECONDS, kill_the_lease_holder)
    finally:
        if "ns" in killed:
            topology.start_worker(killed["ns"])
    hit = failed_tasks(run)
    assert {host for _, _, host in hit} <= {killed["host"]}, hit  # only the killed host's tasks failed
    assert any(host == killed["host"] for _, _, host in run["hostnames"])


def wait_until_every_task_runs(topology, run_id: str, settle: float = 8, timeout: float = 120) -> None:
    """Wait until every task of the soak run is running and has had ``settle`` seconds to make its first calls.

    A task that *starts* while the API server is down fails at its connection lookup, whatever the provider (the
    Task SDK reports a connection it could not fetch as not defined) and is Airflow's to retry; these faults hit
    tasks that are already running."""
    deadline = time.monotonic() + timeout
    path = f"/dags/e2e_soak/dagRuns/{run_id}/taskInstances"
    while time.monotonic() < deadline:
        states = [t["state"] for t in topology.api("GET", path).json()["task_instances"]]
        if len(states) >= 18 and all(state == "running" for state in states):
            time.sleep(settle)
            return
        time.sleep(0.5)
    raise AssertionError(f"the soak's tasks did not all start: {states}")


# Long enough that tasks are still running when the control plane is back (an API server takes ~20 s to start
# on a loaded 2-core machine), so the outage falls in the middle of every task's calls.
RESTART_SOAK_SECONDS = 70


def test_api_server_restarted_mid_soak(topology):
    def restart(run_id: str) -> dict:
        wait_until_every_task_runs(topology, run_id)
        started = time.monotonic()
        topology.restart_api_server(down_seconds=3)
        return {"api_server_restarted_in_seconds": round(time.monotonic() - started, 1)}

    run = soak(topology, RESTART_SOAK_SECONDS, restart)
    assert not failed_tasks(run), run["task_instances"]


def test_postgres_restarted_mid_soak(topology):
    """The scheduler (and any Airflow process) that exits when its database goes away is started again, as a
    process supervisor does in every real deployment; the tasks running meanwhile must not notice."""

    def restart(run_id: str) -> dict:
        wait_until_every_task_runs(topology, run_id)
        started = time.monotonic()
        topology.postgres.restart(down_seconds=3)
        return {"postgres_restarted_in_seconds": round(time.monotonic() - started, 1)}

    topology.supervised = {"scheduler", "dag-processor", "triggerer", "api-server"}
    topology.restarts.clear()
    try:
        run = soak(topology, RESTART_SOAK_SECONDS, restart)
    finally:
        topology.supervised = set()
    print("topology: restarted by the supervisor after PostgreSQL's restart:", dict(topology.restarts))
    assert not failed_tasks(run), run["task_instances"]


def test_link_cut_mid_refresh_then_restored(topology):
    """The lease holder's link goes down once Sage ID has answered its refresh, before the token Variable write
    lands; it comes back 5 s later (well inside the lease and the Task SDK's retries)."""
    emulator = topology.emulator.client

    def cut_mid_refresh(run_id: str) -> dict:
        time.sleep(8)
        for _ in range(200):
            ns = wait_for_lease_holder(topology)
            grants = emulator.stats()["token_grants"]["refresh_token"]
            while topology.lease_holder() == topology.hosts[ns]:
                if emulator.stats()["token_grants"]["refresh_token"] > grants:
                    topology.network.set_link(ns, up=False)
                    answered = emulator.issued_tokens()["refresh_tokens"][-1]
                    landed = (
                        topology.variable("sage200_token__sage200_default").get("refresh_token") == answered
                    )
                    time.sleep(5)
                    topology.network.set_link(ns, up=True)
                    return {"link_cut": topology.hosts[ns], "write_had_landed_at_cut": landed}
        raise AssertionError("never caught a refresh in flight")

    run = soak(topology, FAULT_SOAK_SECONDS, cut_mid_refresh)
    assert not failed_tasks(run), run["task_instances"]


def test_one_worker_host_clock_two_seconds_ahead(topology):
    ns = topology.network.namespaces[-1]
    topology.stop_worker(ns)
    topology.start_worker(ns, clock_offset=2)
    try:
        assert 1.5 < topology.clock_offset(ns) < 2.5
        run = soak(topology, FAULT_SOAK_SECONDS)
    finally:
        topology.stop_worker(ns)
        topology.start_worker(ns)
    assert not failed_tasks(run), run["task_instances"]
    assert topology.hosts[ns] in run["figures"]["tasks_per_host"]
