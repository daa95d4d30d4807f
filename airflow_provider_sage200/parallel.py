"""Parallel key-range paging: read disjoint key ranges concurrently and yield the pages in key order.

The key is the resource's integer key: ``id``, or a view's own key such as ``sop_allocation_line_id``
(:func:`~airflow_provider_sage200.query.paging_key`). The plan: the first page is read on its own, by key, as
sequential paging would (so bad input costs one request, and a collection of one page costs nothing more); if it
is full, two cheap requests sent together find the highest key matching the caller's ``$filter`` and how many
records match; the rest of the key space is cut into ranges expected to hold about one page each; a bounded pool
reads the ranges by key (``<key> gt <last> and <key> lt <end>``). Every record has one key that never changes, so
it lies in exactly one range: none is skipped or read twice, even while records are updated. The last range
has no upper end, so records created during the export are picked up as sequential key paging would.

Pages are yielded strictly in key order. Results that arrive ahead of their turn wait in a window of at
most ``2 * max_concurrency`` pages, which bounds memory whatever the size of the export.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_sage200.exceptions import Sage200ClientError, Sage200ConfigError
from airflow_provider_sage200.query import (
    Page,
    PageCheck,
    and_filters,
    iter_pages,
    last_id,
    record_count,
    with_key,
)

if TYPE_CHECKING:
    import requests

MAX_CONCURRENCY = 16
DEFAULT_MAX_CONCURRENCY = 4
# The most ranges a plan holds, whatever highest id or count the server claims: wider ranges beyond it (each
# read by key until it is exhausted) keep memory and the number of empty-range requests bounded.
MAX_RANGES = 10_000
# Without a count the highest id alone says nothing of how many records there are (ids may be sparse).
MAX_RANGES_WITHOUT_COUNT = 64

Fetch = Callable[[dict[str, str]], Page]


@dataclass(frozen=True)
class KeyRange:
    """Keys in ``(after, end)``; ``end`` is ``None`` for the last, open-ended range."""

    after: int
    end: int | None
    key: str = "id"

    def filter(self) -> str:
        lower = f"{self.key} gt {self.after}"
        return lower if self.end is None else f"{lower} and {self.key} lt {self.end}"

    def exhausted_by(self, page: Page, page_size: int) -> bool:
        """True when no record of this range can follow ``page``."""
        if len(page) < page_size:
            return True
        return self.end is not None and last_id(page, self.key) >= self.end - 1

    def after_page(self, page: Page) -> KeyRange:
        """The rest of this range, past ``page``'s last record."""
        return KeyRange(last_id(page, self.key), self.end, self.key)


def plan_ranges(low: int, high: int, count: int | None, page_size: int, key: str = "id") -> list[KeyRange]:
    """Cut ``[low, high]`` into ranges expected to hold about one page each.

    Dense ids (``count`` equal to the span) get ranges of exactly ``page_size`` ids, so each range costs one
    request. Sparse ids get ranges sized for 80% of a page, so few of them overflow into a second request.
    Without a count the ids are assumed dense. At most :data:`MAX_RANGES` ranges are planned
    (:data:`MAX_RANGES_WITHOUT_COUNT` without a count), so neither memory nor the number of requests for empty
    ranges follows from what the server claims.
    """
    span = high - low + 1
    if count is None or count <= 0 or count >= span:
        width = page_size
    else:
        width = max(1, int(page_size * 0.8 * span / count))
    width = max(width, -(-span // (MAX_RANGES if count else MAX_RANGES_WITHOUT_COUNT)))
    starts = range(low, high + 1, width)
    ranges = [KeyRange(start - 1, start + width, key) for start in starts]
    ranges[-1] = KeyRange(ranges[-1].after, None, key)
    return ranges


class AdaptiveConcurrency:
    """How many requests may be in flight: halves on throttling, grows back by one per window of successes.

    ``slot()`` blocks while the current limit is reached. :meth:`throttled` is called on 429, 503 and read
    timeouts (the server asking for less); :meth:`succeeded` on each good response.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = maximum
        self.in_flight = 0
        self.successes = 0
        self.throttle_events = 0
        self._cond = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._cond:
            while self.in_flight >= self.limit:
                self._cond.wait()
            self.in_flight += 1
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= 1
                self._cond.notify_all()

    def call(self, send: Callable[[], requests.Response]) -> requests.Response:
        """Run one request in a slot and learn from its outcome."""
        from requests.exceptions import ReadTimeout

        with self.slot():
            try:
                response = send()
            except ReadTimeout:
                self.throttled()
                raise
        if response.status_code in (429, 503):
            self.throttled()
        elif response.ok:
            self.succeeded()
        return response

    def throttled(self) -> None:
        with self._cond:
            self.throttle_events += 1
            self.limit = max(1, self.limit // 2)
            self.successes = 0

    def succeeded(self) -> None:
        with self._cond:
            self.successes += 1
            if self.limit < self.maximum and self.successes >= self.limit * 4:
                self.limit += 1
                self.successes = 0
                self._cond.notify_all()


def validate_max_concurrency(max_concurrency: int) -> int:
    if not isinstance(max_concurrency, int) or not 1 <= max_concurrency <= MAX_CONCURRENCY:
        raise Sage200ConfigError(
            f"max_concurrency is {max_concurrency!r}; it must be a whole number from 1 to {MAX_CONCURRENCY} "
            "(1 reads pages one after another; keep it modest for Professional, which runs on the customer's "
            "own server)."
        )
    return max_concurrency


def find_upper_bound(
    fetch: Fetch,
    count: Callable[[dict[str, str]], int],
    user_filter: str | None,
    pool: Executor,
    key: str = "id",
) -> tuple[int | None, int | None]:
    """Highest key and number of records matching ``user_filter`` (``None`` for what cannot be told).

    The two requests go out together on ``pool``: planning costs one round trip, not two.
    """
    base = {"$filter": user_filter} if user_filter else {}

    def total() -> int | None:
        try:
            return count({**base, "$count": "true"})
        except Sage200ClientError:
            return None  # $count refused: plan without it

    last = pool.submit(fetch, {**base, "$orderby": f"{key} desc", "$top": "1", "$select": key})
    matching = pool.submit(total)
    page = last.result()
    return (last_id(page, key) if page else None), matching.result()


def iter_pages_parallel(
    fetch: Fetch,
    count: Callable[[dict[str, str]], int],
    query: Mapping[str, str],
    page_size: int,
    max_concurrency: int,
    *,
    endpoint: str = "collection",
    key: str = "id",
) -> Iterator[Page]:
    """Yield the pages of a key-paged collection in ``key`` order, reading up to ``max_concurrency`` at once.

    ``query`` must be key-pageable (no ``$skip``, no ``$top``, ``$orderby`` absent or ``key``); ``fetch`` reads
    one page, ``count`` answers a ``$count=true`` request (checked with
    :func:`~airflow_provider_sage200.query.record_count`). Both must be safe to call from several threads.

    A short page ends a range only because the first, full page proved the server honours ``$top``; a first
    page shorter than asked (a server capping ``$top``) makes the rest of the read sequential, until an empty page.
    Every page is checked as :class:`~airflow_provider_sage200.query.PageCheck` says, against its range.
    """
    query = with_key({k: v for k, v in query.items() if k not in ("$orderby", "$count")}, key)
    pool = ThreadPoolExecutor(max_workers=max(max_concurrency, 3), thread_name_prefix="sage200-page")
    try:
        yield from _read_ranges(fetch, count, query, page_size, max_concurrency, pool, endpoint, key)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _read_ranges(
    fetch: Fetch,
    count: Callable[[dict[str, str]], int],
    query: dict[str, str],
    page_size: int,
    max_concurrency: int,
    pool: Executor,
    endpoint: str,
    key: str,
) -> Iterator[Page]:
    check = PageCheck(endpoint, key=key)
    user_filter = query.get("$filter")

    def read(key_range: KeyRange | None) -> Page:
        params = dict(query, **{"$orderby": key, "$top": str(page_size)})
        if key_range is not None:
            params["$filter"] = and_filters(user_filter, key_range.filter())
        page = fetch(params)
        if key_range is None:
            check.key_page(page, page_size, None)
        else:
            check.key_page(page, page_size, key_range.after, key_range.end)
        return page

    first = read(None)
    if not first:
        return
    yield first
    after = last_id(first, key)
    if len(first) < page_size:
        # Short, and nothing proves the server honours $top: read on, one page after another.
        yield from iter_pages(fetch, query, page_size, endpoint=endpoint, after=after, key=key)
        return
    high, matching = find_upper_bound(
        fetch, lambda params: record_count(count(params), endpoint), user_filter, pool, key
    )
    if high is None or high <= after:
        # Nothing beyond the first page when planned; one open-ended read still picks up new records.
        ranges = [KeyRange(after, None, key)]
    else:
        remaining = None if matching is None else matching - len(first)
        ranges = plan_ranges(after + 1, high, remaining, page_size, key)

    window = 2 * max_concurrency
    futures: dict[int, Future[Page]] = {}
    submitted = 0
    try:
        for index, key_range in enumerate(ranges):
            while submitted < len(ranges) and submitted - index < window:
                futures[submitted] = pool.submit(read, ranges[submitted])
                submitted += 1
            page = futures.pop(index).result()
            while True:
                if page:
                    yield page
                if key_range.exhausted_by(page, page_size):
                    break
                # Denser than planned: read the rest of this range now (ahead of queued ranges) to keep key
                # order; the hook's concurrency limit still bounds the requests in flight.
                key_range = key_range.after_page(page)
                page = read(key_range)
    finally:
        for future in futures.values():
            future.cancel()
