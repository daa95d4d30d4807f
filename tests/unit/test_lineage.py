"""Asset event extras, OpenLineage dataset naming and the paging mode, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from airflow_provider_sage200.assets import annotate_outlet_events, export_event_extra
from airflow_provider_sage200.query import paging_mode
from airflow_provider_sage200.version_compat import AIRFLOW_V_3_0_PLUS

START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
SUMMARY = {
    "path": "/data/2026-03-01.jsonl",
    "format": "jsonl",
    "records": 7,
    "pages": 1,
    "bytes": 900,
    "filter": "x",
}


def test_event_extra_holds_the_summary_and_the_interval():
    extra = export_event_extra(
        "sop_orders", SUMMARY, {"data_interval_start": START, "data_interval_end": END}
    )
    assert extra == SUMMARY | {
        "endpoint": "sop_orders",
        "data_interval_start": "2026-03-01T00:00:00+00:00",
        "data_interval_end": "2026-03-02T00:00:00+00:00",
    }
    without = export_event_extra("sop_orders", {"records": 3, "pages": 1}, {})
    assert (without["path"], without["bytes"], without["data_interval_start"], without["records"]) == (
        None,
        None,
        None,
        3,
    )


def test_only_assets_get_the_extra_not_aliases():
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import Asset, AssetAlias
        from airflow.sdk.execution_time.context import OutletEventAccessors

        asset, alias = Asset(name="orders", uri="file:///orders"), AssetAlias(name="orders_alias")
    else:  # Airflow 2.11 calls them datasets
        from airflow.datasets import Dataset, DatasetAlias
        from airflow.utils.context import OutletEventAccessors

        asset, alias = Dataset("file:///orders"), DatasetAlias(name="orders_alias")
    events = OutletEventAccessors()
    assert annotate_outlet_events({"outlet_events": events}, [asset, alias], {"records": 7}) == 1
    assert events[asset].extra == {"records": 7}
    assert events[alias].extra == {}
    assert annotate_outlet_events({}, [asset], {"records": 7}) == 0


@pytest.mark.parametrize(
    ("endpoint", "query", "concurrency", "mode"),
    [
        ("sop_orders/12", {}, 4, "record"),
        ("sop_orders", {"$orderby": "document_date"}, 4, "offset"),
        ("sop_orders", {"$skip": "10", "$orderby": "id"}, 4, "offset"),
        ("sop_orders", {}, 4, "key_ranges"),
        ("sop_orders", {"$top": "100"}, 4, "key"),
        ("customers/7/sop_orders", {}, 1, "key"),
    ],
)
def test_paging_mode(endpoint, query, concurrency, mode):
    assert paging_mode(endpoint, query, concurrency) == mode


def test_dataset_names_follow_the_naming_spec():
    pytest.importorskip("airflow.providers.openlineage")
    from airflow_provider_sage200.openlineage import collection, file_dataset, namespace

    config = SimpleNamespace(
        api_url="https://api.columbus.sage.com/uk/sage200/accounts/v1/", site_id="s1", company_id=2
    )
    assert namespace(config) == "sage200://api.columbus.sage.com/s1/2"
    assert collection("sop_orders/12") == "sop_orders"
    assert collection("customers/7/sop_orders") == "customers/7/sop_orders"
    local = file_dataset("/data/x.jsonl", records=7, size=900)
    assert (local.namespace, local.name) == ("file", "/data/x.jsonl")
    assert local.outputFacets["outputStatistics"].rowCount == 7
    assert (file_dataset("file:///data/x.jsonl").namespace, file_dataset("file:///data/x.jsonl").name) == (
        "file",
        "/data/x.jsonl",
    )
    s3 = file_dataset("s3://bucket/sage/x.parquet")
    assert (s3.namespace, s3.name) == ("s3://bucket", "sage/x.parquet")
