"""Register secrets with every Airflow log masker in this process.

Task code logs through the Task SDK's masker; the API server (the token page) and the scheduler log through
Airflow core's, a separate instance since 3.1. A secret registered with only one of them can still appear in the
other's output, e.g. an authorization code in the API server's access log.
"""

from __future__ import annotations

from airflow.sdk.log import mask_secret as _mask_in_task_sdk


def mask(value: str) -> None:
    """Hide ``value`` from logs written through the Task SDK and, where loaded, Airflow core."""
    if not value:
        return
    _mask_in_task_sdk(value)
    try:
        from airflow._shared.secrets_masker import mask_secret as _mask_in_core
    except ImportError:  # a worker-only install without Airflow core
        return
    _mask_in_core(value)
