"""Parsing a DAG that uses the provider must not import the heavy modules (the hook, oauthlib, pyarrow)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "airflow_provider_sage200.hooks.sage200",
    "airflow_provider_sage200.oauth",
    "requests_oauthlib",
    "oauthlib",
    "pyarrow",
)

PARSE = """
import json, sys
from airflow_provider_sage200.operators.sage200 import Sage200GetOperator, Sage200Operator, Sage200RefreshTokenOperator
from airflow_provider_sage200.sensors.sage200 import Sage200TokenSensor
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"airflow_provider_sage200", "requests_oauthlib",
      "oauthlib", "msgspec", "pyarrow"})))
"""


def test_operator_and_sensor_imports_stay_light():
    result = subprocess.run(
        [sys.executable, "-c", PARSE], capture_output=True, text=True, timeout=300, check=True
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
