"""What importing the operators adds to importing ``airflow.sdk`` (DAG files do both at every parse)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

HEAVY = ("pyarrow", "fastapi", "uvicorn", "airflow_provider_sage200.emulator", "requests_oauthlib")
MODULE = "airflow_provider_sage200.operators.sage200"


def _cumulative_us(stderr: str, module: str) -> int:
    """The cumulative microseconds on ``module``'s top-level line of ``-X importtime`` output."""
    for line in stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[2].rstrip() == f" {module}":  # top level: one space, no indentation
            return int(parts[1])
    raise ValueError(f"{module} not in -X importtime output")


def import_cost(runs: int = 7) -> dict[str, object]:
    """Medians over ``runs`` processes of ``import airflow.sdk, <operators>``: each module's cumulative time.

    ``airflow.sdk`` is imported first, so the operators module's cumulative time is exactly what it adds.
    """
    sdk, added = [], []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import airflow.sdk; import {MODULE}"],
            capture_output=True,
            text=True,
            check=True,
        )
        sdk.append(_cumulative_us(done.stderr, "airflow.sdk"))
        added.append(_cumulative_us(done.stderr, MODULE))
    check = (
        "import sys, json, airflow.sdk\n"
        f"before = set(sys.modules)\nimport {MODULE}\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules and m not in before]))"
    )
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True).stdout
    )
    return {
        "added_ms_median": statistics.median(added) / 1000,
        "airflow_sdk_ms_median": statistics.median(sdk) / 1000,
        "runs": runs,
        "heavy_modules_loaded": loaded,
        "checked": list(HEAVY),
    }
