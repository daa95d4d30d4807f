"""The soak's figures, read from the emulator's counters, and its pass conditions; shared by the single-host soak
and the production-topology soak and faults."""

from __future__ import annotations

from typing import Any

TTL = 5.0
USABLE_LIFE = TTL - TTL / 2  # the refresh margin is capped at half the token's lifetime


def soak_figures(before: dict[str, Any], after: dict[str, Any], elapsed: float) -> dict[str, Any]:
    """What the emulator counted between two ``stats()`` snapshots taken ``elapsed`` seconds apart."""

    def grew(*path: str) -> int:
        old, new = before, after
        for key in path:
            old, new = old.get(key, {}), new.get(key, {})
        return (new or 0) - (old or 0)

    return {
        "run_seconds": round(elapsed, 1),
        "api_calls": grew("requests_by_route", "GET sop_orders"),
        "refreshes": grew("token_grants", "refresh_token"),
        "expected_refreshes_at_most": round(elapsed / USABLE_LIFE, 1),
        "invalid_grant": grew("invalid_grant"),
        "reuse_detected": grew("reuse_detected"),
        "families_revoked": grew("families_revoked"),
    }


def assert_no_token_trouble(figures: dict[str, Any]) -> None:
    """Zero ``invalid_grant``, zero reuse, zero revoked families."""
    trouble = {k: figures[k] for k in ("invalid_grant", "reuse_detected", "families_revoked")}
    assert trouble == {"invalid_grant": 0, "reuse_detected": 0, "families_revoked": 0}, figures


def lease_seconds(env: dict[str, str]) -> float:
    """The longest a refresh takes under a deployment's lease timings when nothing fails: the claim write's limit
    plus the settle delay (``[sage200] claim_write_limit_seconds``, ``claim_settle_seconds``)."""
    return float(env["AIRFLOW__SAGE200__CLAIM_WRITE_LIMIT_SECONDS"]) + float(
        env["AIRFLOW__SAGE200__CLAIM_SETTLE_SECONDS"]
    )


def assert_refreshes_track_token_life(figures: dict[str, Any], busy_seconds: float, lease: float) -> None:
    """About one refresh per token life while workers call, never one per task per life.

    A refresh starts once the usable life is over and takes up to ``lease`` seconds (:func:`lease_seconds`). When
    that runs past the expiry (the topology's timings, made for a loaded 2-core control host, settle for 2.4 s
    where the usable life is 2.5 s), each token lasts its usable life plus the lease's time, and the workers wait
    out the difference: the floor is one refresh per ``max(TTL, USABLE_LIFE + lease)``.
    """
    floor = busy_seconds / max(TTL, USABLE_LIFE + lease)
    assert floor <= figures["refreshes"] <= figures["expected_refreshes_at_most"] + 5, (
        round(floor, 1),
        figures,
    )
