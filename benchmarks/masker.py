"""What Airflow's log masker charges a long-lived task process for each token rotation.

Each rotation a task process sees registers three new secrets with the Task SDK's masker (the token Variable's whole
JSON value, masked by Airflow because the key names a token, then the access and the refresh token, masked by the
provider), and the masker recompiles one regular expression of every pattern it holds for each. The supervisor of
the task does the same on its side. This measures that cost after ``n`` rotations, as a ratio to the first rotation
measured in the same run (medians of ``--repeat`` fresh maskers).

    .venv/bin/python -m benchmarks.masker [--rotations 200] [--step 25] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import time
from typing import Any

from airflow_provider_sage200.token import token_from_grant


def rotation(previous: dict[str, Any]) -> dict[str, Any]:
    """The next stored token, built from a Sage ID-shaped answer exactly as a refresh builds it."""
    answer = {
        "access_token": "at_" + secrets.token_urlsafe(48),
        "refresh_token": "rt_" + secrets.token_urlsafe(48),
        "id_token": "idt_" + secrets.token_urlsafe(24),
        "scope": "openid profile email offline_access",
        "expires_in": 5,
        "token_type": "Bearer",
    }
    return token_from_grant(answer, now=time.time(), previous=previous)


def secrets_of(token: dict[str, Any]) -> tuple[str, str, str]:
    """What one rotation registers: the Variable's value as stored (Airflow masks it), then the two tokens."""
    return json.dumps(token, sort_keys=True), token["access_token"], token["refresh_token"]


def costs(rotations: int, step: int) -> dict[int, float]:
    """Seconds to register one rotation's secrets, after 0, step, 2*step, ... earlier rotations."""
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

    masker = SecretsMasker()
    measured = {}
    token = token_from_grant(
        {"access_token": "at_0", "refresh_token": "rt_0"}, now=time.time(), refresh_token_lifetime_days=90
    )
    for n in range(rotations + 1):
        token = rotation(token)
        started = time.perf_counter()
        for value in secrets_of(token):
            masker.add_mask(value)
        if n % step == 0:
            measured[n] = time.perf_counter() - started
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=200)
    parser.add_argument("--step", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs = [costs(args.rotations, args.step) for _ in range(args.repeat)]
    baseline = statistics.median(run[0] for run in runs)
    print("rotations seen | ms per rotation (median) | x the first rotation")
    for n in runs[0]:
        median = statistics.median(run[n] for run in runs)
        print(f"{n:>14} | {median * 1000:>24.1f} | {median / baseline:>8.0f}x")


if __name__ == "__main__":
    main()
