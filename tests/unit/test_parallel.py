"""Range planning and the adaptive concurrency limit behind parallel key paging (pure, no I/O)."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.parallel import (
    AdaptiveConcurrency,
    KeyRange,
    plan_ranges,
    validate_max_concurrency,
)


def _members(key_range: KeyRange, universe: range) -> set[int]:
    return {i for i in universe if i > key_range.after and (key_range.end is None or i < key_range.end)}


@pytest.mark.parametrize(
    ("low", "high", "count", "page_size"),
    [
        (1, 20_000, 20_000, 500),
        (1, 1, 1, 500),
        (7, 1_000_003, 40_000, 500),
        (1, 999, None, 100),
        (5, 5000, 3, 10),
    ],
)
def test_ranges_cover_every_id_exactly_once(low, high, count, page_size):
    ranges = plan_ranges(low, high, count, page_size)
    universe = range(low - 5, high + 50)
    seen: list[int] = []
    for key_range in ranges:
        seen.extend(_members(key_range, universe))
    assert sorted(seen) == [i for i in universe if i >= low]
    assert ranges[-1].end is None
    assert all(a.end == b.after + 1 for a, b in itertools.pairwise(ranges))


def test_dense_ids_get_one_page_per_range():
    ranges = plan_ranges(1, 20_000, 20_000, 500)
    assert len(ranges) == 40
    assert ranges[0] == KeyRange(0, 501)
    assert ranges[0].exhausted_by([{"id": i} for i in range(1, 501)], 500)


def test_sparse_ids_get_wider_ranges_sized_below_a_page():
    ranges = plan_ranges(1, 1_000_000, 10_000, 500)
    width = ranges[0].end - ranges[0].after - 1
    assert width == 40_000  # 0.8 pages' worth of ids at a density of 1 in 100


def test_a_full_page_that_does_not_reach_the_range_end_is_not_the_end():
    key_range = KeyRange(0, 1001)
    assert not key_range.exhausted_by([{"id": i} for i in range(1, 1000, 2)], 500)
    assert key_range.exhausted_by([{"id": 1}], 500)
    assert key_range.filter() == "id gt 0 and id lt 1001"
    assert KeyRange(9, None).filter() == "id gt 9"


def test_ranges_on_a_views_own_key_filter_and_end_by_that_key():
    key = "sop_allocation_line_id"
    ranges = plan_ranges(1, 1000, 1000, 500, key)
    assert ranges == [KeyRange(0, 501, key), KeyRange(500, None, key)]
    assert ranges[0].filter() == f"{key} gt 0 and {key} lt 501" and ranges[1].filter() == f"{key} gt 500"
    page = [{key: i, "id": 0} for i in range(1, 501)]
    assert ranges[0].exhausted_by(page, 500)
    assert ranges[1].after_page(page) == KeyRange(500, None, key)


@pytest.mark.parametrize("value", [0, -1, 17, 2.5, "4", None])
def test_max_concurrency_out_of_range_is_refused(value):
    with pytest.raises(Sage200ConfigError, match=r"max_concurrency is .* from 1 to 16"):
        validate_max_concurrency(value)


def test_limit_halves_on_throttling_and_grows_back_with_successes():
    limit = AdaptiveConcurrency(8)
    limit.throttled()
    assert limit.limit == 4
    limit.throttled()
    limit.throttled()
    limit.throttled()
    assert limit.limit == 1
    for _ in range(4):
        limit.succeeded()
    assert limit.limit == 2
    for _ in range(1000):
        limit.succeeded()
    assert limit.limit == 8


def test_no_more_requests_in_flight_than_the_limit():
    limit = AdaptiveConcurrency(3)
    limit.throttled()  # limit 1
    peak = 0
    lock = threading.Lock()
    active = 0

    def work() -> None:
        nonlocal active, peak
        with limit.slot():
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.01)
            with lock:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 1
