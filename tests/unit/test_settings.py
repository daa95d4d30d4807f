"""Defaults live once: on the dataclasses (config section) and in Sage200ConnectionConfig (connection form)."""

from __future__ import annotations

from dataclasses import fields
from types import SimpleNamespace

from airflow_provider_sage200.connection import Sage200ConnectionConfig
from airflow_provider_sage200.get_provider_info import CONN_FIELDS, get_provider_info
from airflow_provider_sage200.refresh import TIMING_OPTIONS, RefreshTiming
from airflow_provider_sage200.token_provider import REFRESH_MARGIN
from airflow_provider_sage200.transport import RETRY_OPTIONS, RetryPolicy


def _as_config_text(value) -> str:
    return str(value) if isinstance(value, bool | int) else repr(float(value))


def test_documented_config_defaults_are_the_dataclass_defaults():
    options = get_provider_info()["config"]["sage200"]["options"]
    expected = {"refresh_margin_seconds": REFRESH_MARGIN}
    for mapping, defaults in ((RETRY_OPTIONS, RetryPolicy()), (TIMING_OPTIONS, RefreshTiming())):
        expected |= {option: getattr(defaults, field) for option, field in mapping.items()}
    assert set(options) == set(expected)
    for option, value in expected.items():
        documented = options[option]["default"]
        if isinstance(value, bool):
            assert documented == str(value), option
        else:
            assert float(documented) == float(value), option


def test_every_mapped_field_exists():
    for cls, mapping in ((RetryPolicy, RETRY_OPTIONS), (RefreshTiming, TIMING_OPTIONS)):
        assert set(mapping.values()) <= {f.name for f in fields(cls)}


def test_from_config_falls_back_to_the_dataclass_defaults(monkeypatch):
    for option in (*RETRY_OPTIONS, *TIMING_OPTIONS):
        monkeypatch.delenv(f"AIRFLOW__SAGE200__{option.upper()}", raising=False)
    assert RetryPolicy.from_config() == RetryPolicy()
    assert RefreshTiming.from_config() == RefreshTiming()
    monkeypatch.setenv("AIRFLOW__SAGE200__MAX_ATTEMPTS", "3")
    monkeypatch.setenv("AIRFLOW__SAGE200__HOST_LOCK", "False")
    assert RetryPolicy.from_config().max_attempts == 3
    assert RefreshTiming.from_config().host_lock is False


class _RecordingExtra(dict):
    """A connection's extra that remembers which fields were read."""

    def __init__(self) -> None:
        super().__init__(edition="professional")
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def test_connection_form_fields_are_the_fields_the_config_reads():
    extra = _RecordingExtra()
    conn = SimpleNamespace(conn_id="c", login="client", password="secret", extra_dejson=extra)
    Sage200ConnectionConfig.from_connection(conn)
    assert extra.read == set(CONN_FIELDS)
