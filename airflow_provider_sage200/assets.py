"""What an export tells the Assets it updates: the ``extra`` of each outlet's Asset event.

A downstream DAG scheduled on the Asset reads it from ``triggering_asset_events``: which file arrived, how many
records and bytes it holds, and which data interval it covers, without listing the bucket or opening the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The keys of every export event's ``extra``.
EVENT_KEYS = (
    "endpoint",
    "path",
    "format",
    "records",
    "pages",
    "bytes",
    "data_interval_start",
    "data_interval_end",
    "filter",
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def export_event_extra(
    endpoint: str, summary: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``extra`` for an export's Asset events: the export summary plus the run's data interval (ISO 8601).

    Without ``output_uri`` (records returned to XCom) ``path``, ``format`` and ``bytes`` are ``None``.
    """
    extra = {key: summary.get(key) for key in EVENT_KEYS}
    extra["endpoint"] = endpoint
    extra["data_interval_start"] = _iso(context.get("data_interval_start"))
    extra["data_interval_end"] = _iso(context.get("data_interval_end"))
    return extra


def annotate_outlet_events(
    context: Mapping[str, Any], outlets: Iterable[Any], extra: Mapping[str, Any]
) -> int:
    """Put ``extra`` on the event Airflow emits for each Asset in ``outlets``; returns how many were annotated.

    An Asset (``Dataset`` on Airflow 2) has a ``uri``; an alias has none and needs the concrete Asset named by
    the caller, so it is left alone. No Airflow class is imported: this works on every line that has
    ``outlet_events``, and does nothing where the context has none.
    """
    events = context.get("outlet_events")
    if events is None:
        return 0
    annotated = 0
    for outlet in outlets:
        if getattr(outlet, "uri", None) is None:
            continue
        events[outlet].extra.update(extra)
        annotated += 1
    return annotated
