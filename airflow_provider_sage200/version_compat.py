"""Airflow version flags, computed locally (as the community providers do)."""

from __future__ import annotations

from packaging.version import Version


def _airflow_version() -> Version:
    from airflow import __version__

    return Version(Version(__version__).base_version)


AIRFLOW_V_3_1_PLUS = _airflow_version() >= Version("3.1.0")
AIRFLOW_V_3_2_PLUS = _airflow_version() >= Version("3.2.0")
