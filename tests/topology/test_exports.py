"""Exports on the production topology: a full and an incremental parallel export, each run by a Celery worker host
and written to the shared output location, exactly equal to the emulator's truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = [pytest.mark.topology, pytest.mark.timeout(1800)]


def exported_ids(path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line]


def stamp(record: dict) -> datetime:
    return datetime.fromisoformat(record["date_time_updated"].replace("Z", "+00:00")).astimezone(UTC)


def test_full_parallel_export_on_a_worker_host_equals_the_truth(topology):
    truth = topology.emulator.client.truth("sop_orders", fields=("id",))
    run = topology.run_dag("topology_full_export")
    assert run["state"] == "success", run["task_instances"]
    [(_, _, host)] = run["hostnames"]
    assert host in topology.hosts.values()  # a remote worker host ran it
    [output] = (topology.exports / "topology" / "topology_full_export").glob("*.jsonl")
    ids = exported_ids(output)
    assert ids == sorted(r["id"] for r in truth)  # every record once, in id order


def test_incremental_parallel_exports_on_worker_hosts_equal_the_truth(topology):
    truth = topology.emulator.client.truth("sop_orders", fields=("id", "date_time_updated"))
    last_day = max(stamp(r) for r in truth).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [last_day - timedelta(days=n) for n in (2, 1, 0)]  # a run at D exports [D - 1 day, D)
    exported: list[int] = []
    hosts: set[str] = set()
    for day in days:
        run = topology.run_dag("topology_incremental_export", logical_date=day)
        assert run["state"] == "success", run["task_instances"]
        hosts |= {host for _, _, host in run["hostnames"]}
        output = topology.exports / "topology" / "topology_incremental_export" / f"{day:%Y-%m-%d}.jsonl"
        exported += exported_ids(output)
    window = {r["id"] for r in truth if days[0] - timedelta(days=1) <= stamp(r) < days[-1]}
    assert window and len(exported) == len(set(exported))
    assert set(exported) == window
    assert hosts <= set(topology.hosts.values())
