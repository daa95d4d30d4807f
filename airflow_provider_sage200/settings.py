"""The ``[sage200]`` section of Airflow's configuration, read into the dataclasses whose defaults it falls back to.

The defaults live once, on the dataclasses (:class:`~airflow_provider_sage200.transport.RetryPolicy`,
:class:`~airflow_provider_sage200.refresh.RefreshTiming`); ``get_provider_info()`` documents the same values, and a
unit test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

SECTION = "sage200"


def option(name: str, default: Any) -> Any:
    """One ``[sage200]`` option, read with the type of its ``default`` (bool, int or float)."""
    from airflow_provider_sage200.version_compat import conf

    if isinstance(default, bool):
        return conf.getboolean(SECTION, name, fallback=default)
    if isinstance(default, int):
        return conf.getint(SECTION, name, fallback=default)
    return conf.getfloat(SECTION, name, fallback=default)


def from_config(cls: type[T], options: Mapping[str, str]) -> T:
    """``cls()`` with each field named in ``options`` (``{option: field}``) read from ``[sage200]``."""
    defaults = cls()
    return cls(**{field: option(name, getattr(defaults, field)) for name, field in options.items()})
