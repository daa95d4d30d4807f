"""OpenLineage events and Asset events of real dag.test() runs against the emulator.

The OpenLineage provider reads its transport once per process, so each run is a fresh process
(:mod:`tests.dag_runner`) with the provider's file transport; the events are read back from the file.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import TEST_DAGS
from tests.dag_runner import run_dag_in_process
from tests.integration.test_dags import run_dag

# Two or three fresh Airflow processes per test: more than the suite's 600 s on a loaded machine.
pytestmark = [pytest.mark.usefixtures("consented"), pytest.mark.timeout(1800)]
EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


def last_data_day(emulator) -> tuple[datetime, list[dict]]:
    """The last day holding orders, and the orders of the day before it (the run's data interval)."""
    truth = emulator.client.truth("sop_orders", company_id=1, fields=("id", "date_time_updated"))
    stamps = [datetime.fromisoformat(r["date_time_updated"].replace("Z", "+00:00")) for r in truth]
    day = max(stamps).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    window = [r for r, t in zip(truth, stamps, strict=True) if day - timedelta(days=1) <= t < day]
    return day, window


def asset_events(uri: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
        )
        return [dict(row.extra) for row in rows]


def sage_requests(emulator) -> int:
    return sum(emulator.client.stats()["requests"].values())


def lineage_env(events: Path) -> dict[str, str]:
    transport = {"type": "file", "log_file_path": str(events), "append": True}
    return {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "sage200-tests",
    }


def test_export_emits_openlineage_datasets_facets_and_an_asset_event(emulator, tmp_path):
    day, window = last_data_day(emulator)
    assert window
    before = sage_requests(emulator)
    plain = run_dag("t_lineage", {"output_dir": str(tmp_path / "plain"), "reference": "OL00001"}, day)
    requests_without_lineage = sage_requests(emulator) - before

    events_file = tmp_path / "openlineage.jsonl"
    before = sage_requests(emulator)
    results = run_dag_in_process(
        TEST_DAGS,
        "t_lineage",
        {"output_dir": str(tmp_path), "reference": "OL00002"},
        day,
        env=lineage_env(events_file),
    )
    # Lineage is built from what the task knows: not one request more to Sage.
    assert sage_requests(emulator) - before == requests_without_lineage
    assert plain["export"][0] == results["export"][0] == "success", results
    summary = results["export"][1]
    assert summary["records"] == len(window)

    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    by_job = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], {})[event["eventType"]] = event
    export, write = by_job["t_lineage.export"], by_job["t_lineage.write"]
    assert {"START", "COMPLETE"} <= set(export) and {"START", "COMPLETE"} <= set(write)

    site = emulator.client.sites()[0]
    namespace = f"sage200://{urlsplit(emulator.api_url()).netloc}/{site['site_id']}/{site['company_id']}"
    complete = export["COMPLETE"]
    [source] = complete["inputs"]
    assert (source["namespace"], source["name"]) == (namespace, "sop_orders")
    if importlib.util.find_spec("airflow_provider_sage200.resources") is None:
        assert "schema" not in source["facets"]  # no catalogue in this build: no facet rather than a guess
    else:
        fields = {f["name"]: f["type"] for f in source["facets"]["schema"]["fields"]}
        expected = {"id": "integer", "document_no": "string", "date_time_updated": "timestamp"}
        assert expected.items() <= fields.items()

    [target] = complete["outputs"]
    written = tmp_path / f"{day:%Y-%m-%d}.jsonl"  # named by ds, the logical date
    assert (target["namespace"], target["name"]) == ("file", str(written))
    assert summary["path"] == str(written) and written.exists()
    statistics = target["outputFacets"]["outputStatistics"]
    assert (statistics["rowCount"], statistics["size"]) == (len(window), summary["bytes"])

    run = complete["run"]["facets"]["sage200_export"]
    assert run["records"] == len(window) and run["pages"] == summary["pages"]
    assert run["pagingMode"] == "key_ranges"
    assert run["dataIntervalStart"] == (day - timedelta(days=1)).isoformat()
    assert run["dataIntervalEnd"] == day.isoformat()
    assert run["_schemaURL"].endswith("#sage200_export")
    # START already names both datasets (the output from the rendered output_uri).
    start = export["START"]
    assert [d["name"] for d in start["inputs"]] == ["sop_orders"]
    assert [d["name"] for d in start["outputs"]] == [str(written)]

    [written_to] = write["COMPLETE"]["outputs"]
    assert (written_to["namespace"], written_to["name"]) == (namespace, "customers")
    assert write["COMPLETE"]["inputs"] == []

    # The Asset event of the same run carries what arrived.
    extra = asset_events("file:///t_lineage/sop_orders")[-1]
    assert extra == {
        "endpoint": "sop_orders",
        "path": str(written),
        "format": "jsonl",
        "records": len(window),
        "pages": summary["pages"],
        "bytes": written.stat().st_size,
        "data_interval_start": (day - timedelta(days=1)).isoformat(),
        "data_interval_end": day.isoformat(),
        "filter": summary["filter"],
    }


def test_example_export_then_load_reads_what_the_asset_event_says(emulator, tmp_path):
    day, window = last_data_day(emulator)
    warehouse = tmp_path / "warehouse.sqlite"
    env = {"AIRFLOW_VAR_SAGE200_WAREHOUSE_PATH": str(warehouse)}
    exported = run_dag_in_process(
        EXAMPLES, "sage200_export_sales_orders", {"base_uri": str(tmp_path)}, day, env=env
    )
    assert exported["export_sop_orders"][0] == "success", exported
    summary = exported["export_sop_orders"][1]
    extra = asset_events("file:///sage200/sop_orders")[-1]
    assert (extra["path"], extra["records"], extra["bytes"]) == (
        summary["path"],
        len(window),
        summary["bytes"],
    )

    loaded = run_dag_in_process(EXAMPLES, "sage200_load_sales_orders", env=env)
    state, result = loaded["load_sales_orders"]
    assert state == "success", loaded
    assert result["loaded"] == [
        {
            "path": summary["path"],
            "records": len(window),
            "data_interval_start": (day - timedelta(days=1)).isoformat(),
            "data_interval_end": day.isoformat(),
        }
    ]
    import sqlite3

    with sqlite3.connect(warehouse) as db:
        ids = {row[0] for row in db.execute("SELECT id FROM sop_orders")}
    assert ids == {r["id"] for r in window} and result["warehouse_rows"] == len(window)
