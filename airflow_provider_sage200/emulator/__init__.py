"""A faithful Sage 200 emulator (Sage ID + the Sage 200 API) for offline development and tests."""

from __future__ import annotations

from airflow_provider_sage200.emulator.config import EmulatorConfig
from airflow_provider_sage200.emulator.server import EmulatorClient, EmulatorServer


def make_app(config: EmulatorConfig | None = None):
    """Build the emulator's ASGI app (imports FastAPI only when called)."""
    from airflow_provider_sage200.emulator.app import make_app as _make_app

    return _make_app(config)


__all__ = ["EmulatorClient", "EmulatorConfig", "EmulatorServer", "make_app"]
