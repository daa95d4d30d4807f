"""Parallel key-range paging against the emulator: exact, ordered, bounded read-ahead, one token."""

from __future__ import annotations

import time

import msgspec
import pytest

from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.token_provider import Sage200TokenProvider

pytestmark = pytest.mark.usefixtures("consented")


def _truth(emulator) -> list[int]:
    return [r["id"] for r in emulator.client.truth("sop_orders", company_id=1)]


@pytest.mark.parametrize("max_concurrency", [2, 8])
def test_parallel_read_equals_sequential_in_id_order(emulator, max_concurrency):
    hook = Sage200Hook()
    sequential = [r["id"] for r in hook.paginate("sop_orders", {"$select": "id"}, max_concurrency=1)]
    parallel = [
        r["id"] for r in hook.paginate("sop_orders", {"$select": "id"}, max_concurrency=max_concurrency)
    ]
    assert parallel == sequential == _truth(emulator)


def test_parallel_read_of_a_sparse_filter_is_exact(emulator):
    truth = emulator.client.truth("sop_orders", company_id=1, fields=("id", "customer_id"))
    expected = [r["id"] for r in truth if r["customer_id"] in (3, 4)]
    hook = Sage200Hook()
    got = [
        r["id"]
        for r in hook.paginate(
            "sop_orders",
            {"$filter": "customer_id le 4 and customer_id ge 3", "$select": "id"},
            50,
            max_concurrency=4,
        )
    ]
    assert got == expected and expected


def test_parallel_read_is_exact_while_records_change(emulator):
    emulator.client.set_faults(mutate_every=1, mutate_count=25)
    ids = [r["id"] for r in Sage200Hook().paginate("sop_orders", {"$select": "id"}, max_concurrency=8)]
    assert ids == _truth(emulator)
    assert emulator.client.stats()["faults_injected"]["mutate"] > 0


def test_parallel_read_is_exact_under_throttling(emulator):
    emulator.client.set_faults(rate_429=0.1, retry_after=0, rate_5xx=0.05, status_5xx=503)
    ids = [r["id"] for r in Sage200Hook().paginate("sop_orders", {"$select": "id"}, max_concurrency=8)]
    assert ids == _truth(emulator)
    injected = emulator.client.stats()["faults_injected"]
    assert injected["429"] > 0 and injected["503"] > 0


def test_read_ahead_is_bounded(emulator):
    """The writer gets pages one at a time; at most 2 x max_concurrency pages are read ahead of it."""
    pages = Sage200Hook().iter_pages("sop_orders", {"$select": "id"}, page_size=100, max_concurrency=4)
    first, second = next(pages), next(pages)
    time.sleep(0.5)  # let the workers run as far ahead as they may
    served = emulator.client.stats()["requests_by_route"]["GET sop_orders"]
    pages.close()
    assert len(first) == len(second) == 100
    assert served <= 1 + 2 + 2 * 4  # the first page, highest id and count, the window; of 200 pages


def test_a_collection_of_one_page_costs_two_requests(emulator):
    """The page, and an empty one proving the end: a short page alone is not proof (a server may cap $top)."""
    before = emulator.client.stats()["requests_by_route"].get("GET sop_orders", 0)
    query = {"$filter": "customer_id eq 3", "$select": "id"}
    ids = [r["id"] for r in Sage200Hook().paginate("sop_orders", query, 5000, max_concurrency=8)]
    served = emulator.client.stats()["requests_by_route"]["GET sop_orders"] - before
    truth = emulator.client.truth("sop_orders", company_id=1, fields=("id", "customer_id"))
    assert ids == [r["id"] for r in truth if r["customer_id"] == 3] and ids
    assert served == 2


def test_expired_token_is_refreshed_once_for_all_workers(emulator):
    hook = Sage200Hook()
    token = hook.token_store.load()
    hook.token_store.save(token | {"expires_at": int(time.time()) - 10})
    Sage200TokenProvider.clear_cache()
    ids = [r["id"] for r in Sage200Hook().paginate("sop_orders", {"$select": "id"}, max_concurrency=8)]
    assert len(ids) == 20_000
    assert emulator.client.stats()["token_grants"]["refresh_token"] == 1


def test_top_cap_and_offset_paging_stay_sequential(emulator):
    hook = Sage200Hook()
    capped = [
        r["id"] for r in hook.paginate("sop_orders", {"$top": 1200, "$select": "id"}, max_concurrency=8)
    ]
    assert capped == _truth(emulator)[:1200]
    by_date = list(
        hook.paginate("sop_orders", {"$orderby": "document_date desc", "$top": 700}, 300, max_concurrency=8)
    )
    assert len(by_date) == 700
    dates = [r["document_date"] for r in by_date]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize("max_concurrency", [1, 4])
def test_raw_records_are_the_same_records_undecoded(emulator, max_concurrency):
    hook = Sage200Hook()
    query = {"$filter": "customer_id le 20"}
    decoded = list(hook.iter_pages("sop_orders", query, 200, max_concurrency=max_concurrency))
    raw = list(hook.iter_pages("sop_orders", query, 200, max_concurrency=max_concurrency, raw_records=True))
    assert all(isinstance(record, msgspec.Raw) for page in raw for record in page)
    assert [[msgspec.json.decode(r) for r in page] for page in raw] == decoded
    assert sum(map(len, decoded)) > 200  # more than one page, so paging went on from a raw record's id
