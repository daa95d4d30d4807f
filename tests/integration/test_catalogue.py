"""Every collection of the catalogue, exported from the emulator through the hook, and one deep test per kind."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from airflow_provider_sage200.exceptions import Sage200ClientError, Sage200ConfigError
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.resources import Resource, collections, get_resource

HAND_MODELLED = {
    "sites",
    "sop_orders",
    "customers",
    "products",
    "warehouses",
    "customers/{customerId}/sop_orders",
}


def concrete(path: str) -> str:
    """A catalogue path with every parameter set to 1 (parents 1..catalogue_records exist)."""
    return re.sub(r"\{\w+\}", "1", path)


def kind(resource: Resource) -> str:
    if resource.parent is not None:
        return "nested"
    if resource.key is None:
        return "no key"
    if resource.key != "id":
        return "own key"
    return "id + date_time_updated" if resource.incremental else "id"


def expected(emulator, resource: Resource) -> list[dict]:
    records = emulator.client.truth(resource.path, fields=tuple(resource.fields))
    if resource.parent_link is not None:
        records = [r for r in records if r[resource.parent_link] == 1]
    return records


def test_every_catalogue_collection_exports_exactly(consented, emulator):
    hook = Sage200Hook()
    results: Counter[str] = Counter()
    failures = []
    for resource in collections():
        if resource.path in HAND_MODELLED:
            continue  # served by their hand-made models; tested in test_hook and test_parallel_export
        endpoint = concrete(resource.path)
        got = list(hook.paginate(endpoint, page_size=10))
        want = expected(emulator, resource)
        if resource.key:
            ok = got == sorted(want, key=lambda r: r[resource.key])
        else:
            order = resource.offset_order()
            ok = sorted(map(repr, got)) == sorted(map(repr, want)) and [r[order] for r in got] == sorted(
                r[order] for r in want
            )
        results[f"{kind(resource)} {'ok' if ok and want else 'FAILED'}"] += 1
        if not ok or not want:
            failures.append((endpoint, len(got), len(want)))
    print(dict(results))
    assert not failures, failures
    assert sum(results.values()) >= 315


def test_select_and_filter_fields_are_checked_before_sending(consented, emulator):
    hook = Sage200Hook()
    before = emulator.client.stats()["requests"]
    with pytest.raises(
        Sage200ConfigError,
        match=r"\$select: sop_allocation_line_views has no field 'sop_alocation_line_id'.*Did you mean 'sop_allocation_line_id'",
    ):
        list(hook.paginate("sop_allocation_line_views", {"$select": "sop_alocation_line_id"}))
    with pytest.raises(Sage200ConfigError, match=r"\$filter: .*'date_time_update'.*'date_time_updated'"):
        list(hook.paginate("suppliers", {"$filter": "date_time_update ge 2024-01-01T00:00:00Z"}))
    assert emulator.client.stats()["requests"] == before


@pytest.mark.parametrize("max_concurrency", [1, 4])
def test_own_key_view_is_read_by_key_paging_on_its_key(consented, emulator, max_concurrency):
    resource = get_resource("sop_allocation_line_views")
    key = resource.key
    assert key == "sop_allocation_line_id" and resource.integer_key
    emulator.client.configure(catalogue_records=60)
    hook = Sage200Hook()
    asked: list[dict[str, list[str]]] = []
    hook.get_conn().hooks["response"].append(lambda r, **_: asked.append(parse_qs(urlsplit(r.url).query)))
    got = [
        r[key]
        for r in hook.paginate(
            resource.path, {"$select": "warehouse_id"}, page_size=5, max_concurrency=max_concurrency
        )
    ]
    assert got == list(range(1, 61))  # every record once, in key order
    pages = [q for q in asked if q.get("$top") == ["5"]]
    assert len(pages) >= 12 and not any("$skip" in q for q in asked)
    assert all(q["$orderby"] == [key] and q["$select"] == [f"warehouse_id,{key}"] for q in pages)
    assert all(f"{key} gt " in q["$filter"][0] for q in pages[1:])
    if max_concurrency > 1:  # ranges planned from the highest key, read with an upper bound
        assert any(q.get("$orderby") == [f"{key} desc"] for q in asked)
        assert any(f"{key} lt " in q.get("$filter", [""])[0] for q in pages)


def test_no_key_view_is_offset_paged_in_a_stable_order(consented, emulator):
    resource = get_resource("sales_aged_debtor_summary_views")
    assert resource.key is None
    got = list(Sage200Hook().paginate(resource.path, page_size=4))
    want = expected(emulator, resource)
    assert len(got) == len(want) == 25
    assert sorted(map(repr, got)) == sorted(map(repr, want))


def test_nested_collection_reads_only_the_parents_records(consented, emulator):
    resource = get_resource("customers/7/customer_contacts")
    assert resource.parent == "customers" and resource.parent_link == "customer_id"
    got = list(Sage200Hook().paginate("customers/7/customer_contacts", page_size=2))
    assert got and all(r["customer_id"] == 7 for r in got)
    with pytest.raises(Sage200ClientError, match=r"HTTP 404.*No customers record with id 999999"):
        list(Sage200Hook().paginate("customers/999999/customer_contacts"))


def test_standard_edition_lacks_professional_only_resources_and_fields(consented, emulator):
    import requests

    token = Sage200Hook().get_access_token()
    site = emulator.client.sites()[0]
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Site": site["site_id"],
        "X-Company": str(site["company_id"]),
    }
    lines = get_resource("nominal_codes")
    assert lines.professional_fields

    def get(edition: str, path: str) -> requests.Response:
        return requests.get(emulator.api_url(edition) + path, headers=headers, timeout=30)

    professional, standard = get("professional", "nominal_codes/1"), get("standard", "nominal_codes/1")
    assert set(lines.professional_fields) <= set(professional.json())
    assert not set(lines.professional_fields) & set(standard.json())
    assert set(standard.json()) == set(lines.fields) - set(lines.professional_fields)
    assert get_resource("finance_charges").professional_only
    assert get("professional", "finance_charges").status_code == 200
    assert get("standard", "finance_charges").status_code == 404


def test_posting_resources_answer_with_a_urn(consented, emulator):
    invoices = get_resource("sales_invoices")
    assert invoices.methods == ("POST",) and invoices.post_returns_urn
    answer = Sage200Hook().send("sales_invoices", "POST", json={"customer_id": 1, "reference": "INV-1"})
    assert isinstance(answer["urn"], int) and "id" not in answer


def _incremental_ids(emulator, start: float, end: float, **options) -> list[int]:
    from airflow_provider_sage200.operators.sage200 import Sage200GetOperator

    operator = Sage200GetOperator(
        task_id="incremental",
        endpoint="sop_orders",
        query={"$select": "id"},
        incremental_field=True,
        **options,
    )
    context = {
        "data_interval_start": datetime.fromtimestamp(start, UTC),
        "data_interval_end": datetime.fromtimestamp(end, UTC),
    }
    return [r["id"] for r in operator.execute(context)]


def test_lookback_rereads_late_records_exactly_while_records_change(consented, emulator):
    early = emulator.client.mutate("sop_orders", ids=[11, 12, 13])
    emulator.client.advance_clock(600)
    late = emulator.client.mutate("sop_orders", ids=[21, 22])
    end = emulator.client.advance_clock(1)
    # Every page read now edits 25 records: their new date_time_updated is past `end`, so they belong to the
    # next interval, and the export must be exactly the records updated inside this one.
    emulator.client.set_faults(mutate_every=1, mutate_count=25)
    assert _incremental_ids(emulator, end - 301, end) == late
    assert _incremental_ids(emulator, end - 301, end, lookback=timedelta(seconds=400)) == early + late
    assert emulator.client.stats()["faults_injected"]["mutate"] > 0


def test_lookback_needs_an_incremental_field():
    from airflow_provider_sage200.operators.sage200 import Sage200GetOperator

    with pytest.raises(Sage200ConfigError, match="lookback only applies to incremental exports"):
        Sage200GetOperator(task_id="x", endpoint="sop_orders", lookback=timedelta(hours=1))


def _export_with_deletes(endpoint: str, path) -> dict:
    from airflow_provider_sage200.operators.sage200 import Sage200GetOperator

    operator = Sage200GetOperator(
        task_id="deletes", endpoint=endpoint, output_uri=str(path), detect_deletes=True, page_size=500
    )
    return operator.execute({})


def test_deletes_are_detected_exactly_while_records_change(consented, emulator, tmp_path):
    first = _export_with_deletes("sop_orders", tmp_path / "day1.jsonl")
    assert first["deleted"] == 0 and (tmp_path / "sop_orders.keys.json").exists()
    hook = Sage200Hook()
    for record_id in (5, 777, 19_999):
        hook.send(f"sop_orders/{record_id}", "DELETE")
    emulator.client.set_faults(mutate_every=1, mutate_count=25)
    second = _export_with_deletes("sop_orders", tmp_path / "day2.jsonl")
    assert second["deleted"] == 3 and second["deleted_path"] == str(tmp_path / "day2.jsonl.deleted.jsonl")
    lines = (tmp_path / "day2.jsonl.deleted.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"id": 5}, {"id": 777}, {"id": 19_999}]
    assert json.loads((tmp_path / "sop_orders.keys.json").read_text())[0]["keys"][:5] == [1, 2, 3, 4, 6]
    assert emulator.client.stats()["faults_injected"]["mutate"] > 0
    assert not list(tmp_path.glob(".*.tmp"))


def test_deletes_on_a_catalogue_resource_and_refusal_without_a_key(consented, emulator, tmp_path):
    assert "DELETE" in get_resource("suppliers").item_methods
    _export_with_deletes("suppliers", tmp_path / "a.jsonl")
    Sage200Hook().send("suppliers/4", "DELETE")
    found = _export_with_deletes("suppliers", tmp_path / "b.jsonl")
    assert found["deleted"] == 1
    assert (tmp_path / "b.jsonl.deleted.jsonl").read_text().splitlines() == ['{"id":4}']
    with pytest.raises(Sage200ConfigError, match="detect_deletes needs a unique key"):
        _export_with_deletes("sales_aged_debtor_summary_views", tmp_path / "c.jsonl")
    assert not (tmp_path / "c.jsonl").exists()
