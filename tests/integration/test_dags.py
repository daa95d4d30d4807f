"""Operators, sensor and trigger through dag.test() against the emulator (module-level DAGs in tests/dags)."""

from __future__ import annotations

import csv
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.token_provider import Sage200TokenProvider

pytestmark = pytest.mark.usefixtures("consented")


def run_dag(dag_id: str, conf: dict | None = None, logical_date: datetime | None = None):
    """Run a DAG from tests/dags with dag.test(); return {task_id: (state, xcom return value)}."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from tests.compat import dag_test, dagbag, xcom_return_value
    from tests.conftest import TEST_DAGS

    dag = dagbag(str(TEST_DAGS / "sage200_test_dags.py")).get_dag(dag_id)
    run = dag_test(dag, conf, logical_date)
    results = {}
    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run.run_id).all()
        for ti in tis:
            value = xcom_return_value(session, dag_id, run.run_id, ti.task_id)
            results[ti.task_id] = (str(ti.state), value)
    return results


def test_task_with_expired_access_token_stores_rotated_refresh_token(emulator):
    hook = Sage200Hook()
    before = hook.token_store.load()
    hook.token_store.save(before | {"expires_at": int(time.time()) - 10})
    Sage200TokenProvider.clear_cache()  # as in a fresh worker process
    results = run_dag("t_hook_call")
    state, value = results["call_api"]
    assert state == "success", results
    assert value == {"orders": 5, "generation": 1}
    after = hook.token_store.load()
    assert after["refresh_token"] != before["refresh_token"]
    assert emulator.client.stats()["token_grants"]["refresh_token"] == 1


def _ids(path: Path, fmt: str) -> list[int]:
    if fmt == "jsonl":
        return [json.loads(line)["id"] for line in path.read_text().splitlines()]
    if fmt == "json":
        return [r["id"] for r in json.loads(path.read_text())]
    if fmt == "csv":
        with path.open() as handle:
            return [int(r["id"]) for r in csv.DictReader(handle)]
    import pyarrow.parquet as pq

    return pq.read_table(path).column("id").to_pylist()


def test_full_export_is_exact_in_every_format(emulator, tmp_path):
    truth = [r["id"] for r in emulator.client.truth("sop_orders", company_id=1)]
    assert len(truth) == 20_000
    results = run_dag(
        "t_export", {"endpoint": "sop_orders", "query": {"$expand": "customer"}, "output_dir": str(tmp_path)}
    )
    for fmt in ("jsonl", "json", "csv", "parquet"):
        state, summary = results[f"export_{fmt}"]
        assert state == "success", results
        ids = _ids(tmp_path / f"out.{fmt}", fmt)
        assert ids == truth, fmt
        assert summary["records"] == len(truth)
        assert summary["bytes"] == (tmp_path / f"out.{fmt}").stat().st_size
        assert summary["fields"] == 111  # sop_order in the catalogue
    first = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert isinstance(first["lines"], list) and "customer" in first
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_while_records_change_misses_none(emulator, tmp_path):
    truth = {r["id"] for r in emulator.client.truth("sop_orders", company_id=1)}
    emulator.client.set_faults(mutate_every=1, mutate_count=25)
    results = run_dag(
        "t_export", {"endpoint": "sop_orders", "query": {"$select": "id"}, "output_dir": str(tmp_path)}
    )
    assert results["export_jsonl"][0] == "success"
    ids = _ids(tmp_path / "out.jsonl", "jsonl")
    assert len(ids) == len(set(ids))
    assert truth <= set(ids)
    assert emulator.client.stats()["faults_injected"].get("mutate", 0) > 0


def test_incremental_runs_over_consecutive_intervals_equal_the_full_set(emulator, tmp_path):
    truth = emulator.client.truth("sop_orders", company_id=1, fields=("id", "date_time_updated"))
    stamps = sorted(datetime.fromisoformat(r["date_time_updated"].replace("Z", "+00:00")) for r in truth)
    last_day = stamps[-1].replace(hour=0, minute=0, second=0, microsecond=0)
    # A run at logical date D covers the day before: [D - 1 day, D).
    days = [last_day - timedelta(days=n) for n in (2, 1, 0)]
    exported: list[int] = []
    for day in days:
        results = run_dag("t_incremental", {"output_dir": str(tmp_path)}, logical_date=day)
        assert results["export_interval"][0] == "success", results
        exported += _ids(tmp_path / f"{day - timedelta(days=1):%Y-%m-%d}.jsonl", "jsonl")  # the day read
    window = {r["id"] for r in truth if days[0] - timedelta(days=1) <= _ts(r) < days[-1]}
    assert len(exported) == len(set(exported))
    assert set(exported) == window and window


def test_quickstart_daily_schedule_exports_the_day_before_each_midnight_run(emulator, tmp_path):
    """schedule="@daily" is a trigger timetable on 3.x, a data-interval one on 2.11: the same day is exported."""
    truth = emulator.client.truth("sop_orders", company_id=1, fields=("id", "date_time_updated"))
    midnight = max(_ts(r) for r in truth).replace(hour=0, minute=0, second=0, microsecond=0)
    # As the run the scheduler starts at that midnight: on 3.x its logical date is the midnight; on 2.11 dag.test()
    # gives a run dated at the midnight the data interval ending there, the scheduled run's interval.
    results = run_dag("t_incremental_daily", {"output_dir": str(tmp_path)}, logical_date=midnight)
    assert results["export_daily"][0] == "success", results
    # Named by the day exported (sage200_window_start), on both lines; {{ ds }} would differ between them.
    exported = _ids(tmp_path / f"{midnight - timedelta(days=1):%Y-%m-%d}.jsonl", "jsonl")
    window = {r["id"] for r in truth if midnight - timedelta(days=1) <= _ts(r) < midnight}
    assert window and sorted(exported) == sorted(window)


def test_manual_daily_run_without_logical_date_names_its_file_by_the_day_it_exports(emulator, tmp_path):
    """A manual trigger has no logical date on 3.x ({{ ds }} is undefined); the window read names the file."""
    import re

    before = datetime.now(UTC)
    results = run_dag("t_incremental_daily", {"output_dir": str(tmp_path)})
    state, summary = results["export_daily"]
    assert state == "success", results
    read_from, read_to = re.findall(r"date_time_updated (?:ge|lt) (\S+)Z", summary["filter"])
    day = datetime.fromisoformat(read_from).replace(tzinfo=UTC)
    assert datetime.fromisoformat(read_to).replace(tzinfo=UTC) - day == timedelta(days=1)
    assert before - timedelta(days=2) < day <= before  # the most recent complete day
    assert summary["path"] == str(tmp_path / f"{day:%Y-%m-%d}.jsonl")
    assert (tmp_path / f"{day:%Y-%m-%d}.jsonl").exists()


def _ts(record: dict) -> datetime:
    return datetime.fromisoformat(record["date_time_updated"].replace("Z", "+00:00")).astimezone(UTC)


def test_failure_mid_export_leaves_no_file(emulator, tmp_path):
    emulator.client.set_faults(script=[200] * 6 + [400])
    results = run_dag("t_export", {"endpoint": "sop_orders", "query": {}, "output_dir": str(tmp_path)})
    assert any(state == "failed" for state, _ in results.values())
    failed = [task for task, (state, _) in results.items() if state == "failed"]
    for task in failed:
        assert not (tmp_path / f"out.{task.removeprefix('export_')}").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_xcom_limit_points_at_output_uri(emulator):
    results = run_dag("t_export_xcom", {"endpoint": "sop_orders", "query": {}})
    assert results["to_xcom"][0] == "failed"
    results = run_dag(
        "t_export_xcom", {"endpoint": "customers", "query": {"$top": 60, "$select": "id,reference"}}
    )
    state, records = results["to_xcom"]
    assert state == "success" and len(records) == 60


def test_query_validation_fails_before_any_request(emulator, tmp_path):
    before = sum(emulator.client.stats()["requests"].values())
    results = run_dag(
        "t_export", {"endpoint": "sop_orders", "query": {"$skip": 5}, "output_dir": str(tmp_path)}
    )
    assert {state for state, _ in results.values()} == {"failed"}
    assert sum(emulator.client.stats()["requests"].values()) == before


def test_write_arrives_once(emulator):
    results = run_dag(
        "t_write", {"endpoint": "customers", "body": {"reference": "ZZ00001", "name": "Once Ltd"}}
    )
    state, created = results["write"]
    assert state == "success" and created["reference"] == "ZZ00001"
    matches = [
        r
        for r in emulator.client.truth("customers", company_id=1, fields=("id", "reference"))
        if r["reference"] == "ZZ00001"
    ]
    assert len(matches) == 1
    assert emulator.client.stats()["writes"]["POST"] == 1


def test_sensor_succeeds_in_poke_and_deferrable_modes(emulator):
    results = run_dag("t_sensor")
    assert results["healthy"][0] == "success"
    assert results["healthy_deferred"][0] == "success"


def test_sensor_failure_says_when_the_refresh_token_expires(emulator, caplog):
    results = run_dag("t_sensor_expiring")
    assert results["needs_100_days"][0] == "failed"
    results = run_dag("t_sensor_deferred_expiring")
    assert results["needs_100_days_deferred"][0] in ("failed", "up_for_retry")


def test_refresh_operator_honours_its_threshold(emulator):
    results = run_dag("t_refresh")
    assert results["if_under_1m"][1]["refreshed"] is False
    assert results["if_under_2h"][1]["refreshed"] is True
    assert "access_token" not in json.dumps(results["if_under_2h"][1]).replace("access_token_", "")
    assert emulator.client.stats()["token_grants"]["refresh_token"] == 1


def test_mapped_export_takes_each_resources_defaults_from_the_catalogue(emulator, tmp_path):
    from airflow_provider_sage200.resources import get_resource
    from tests.dags.sage200_test_dags import MAPPED_RESOURCES

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=1)
    results = run_dag("t_mapped_resources", {"output_dir": str(tmp_path)}, logical_date=end)
    assert results["export"][0] == "success", results
    for index, endpoint in enumerate(MAPPED_RESOURCES):
        resource = get_resource(endpoint)
        truth = emulator.client.truth(endpoint, fields=(resource.key or "customer_id", "date_time_updated"))
        if resource.incremental:
            truth = [r for r in truth if start <= _ts(r) < end]
        lines = (tmp_path / f"{start:%Y-%m-%d}" / f"{index}.jsonl").read_text().splitlines()
        assert len(lines) == len(truth), endpoint
        if resource.key:
            assert [json.loads(line)[resource.key] for line in lines] == sorted(
                r[resource.key] for r in truth
            )
