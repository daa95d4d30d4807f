"""Defect 14, ``Retry-After``: a hostile or odd 429 never crashes, spins or hides the wait it asked for."""

from __future__ import annotations

import itertools
import time

import pytest

from airflow_provider_sage200.exceptions import Sage200RateLimitError
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.transport import RetryPolicy
from tests.hostile.server import HostileServer, Reply

POLICY = RetryPolicy(max_attempts=4, backoff_base=0.1, max_elapsed=30)


def rate_limited(retry_after: str):
    stamps: list[float] = []

    def play(request):
        stamps.append(time.monotonic())
        return Reply(429, {"message": "slow down"}, {"Retry-After": retry_after})

    return play, stamps


@pytest.mark.parametrize("value", ["²", "1.5e3", "-1", "soon"])
def test_a_retry_after_that_is_not_ascii_digits_falls_back_to_backoff(connect, value):
    """``²`` passed str.isdigit and crashed float(); any value that is not delta-seconds or a date is ignored."""
    play, _ = rate_limited(value)
    with HostileServer(play, max_requests=10) as server:
        connect(server)
        with pytest.raises(Sage200RateLimitError, match="gave up after 4 attempts"):
            Sage200Hook(retry_policy=POLICY).request("GET", "sop_orders")
    assert len(server.requests) == 4


def test_a_zero_retry_after_still_waits_the_backoff(connect):
    """``Retry-After: 0`` used to retry at once, four times in a row: the normal backoff is the floor."""
    play, stamps = rate_limited("0")
    with HostileServer(play, max_requests=10) as server:
        connect(server)
        with pytest.raises(Sage200RateLimitError):
            Sage200Hook(retry_policy=POLICY).request("GET", "sop_orders")
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(gaps) == 3
    # Equal jitter: each wait is at least half its ceiling (0.1, 0.2, 0.4 s).
    for gap, floor in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert gap >= floor * 0.9


@pytest.mark.parametrize(("value", "shown"), [("86400", "1 day"), ("7200", "2 hours"), ("600", "10 minutes")])
def test_a_wait_beyond_the_budget_fails_at_once_saying_so(connect, value, shown):
    """``Retry-After: 86400`` failed at once without saying the server asked to wait a day."""
    play, _ = rate_limited(value)
    with HostileServer(play, max_requests=10) as server:
        connect(server)
        with pytest.raises(Sage200RateLimitError, match=rf"asked to wait {shown} \({value} s\)") as raised:
            Sage200Hook(retry_policy=POLICY).request("GET", "sop_orders")
    assert len(server.requests) == 1
    assert raised.value.retry_after == float(value)
