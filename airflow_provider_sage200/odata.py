"""Build Sage 200 ``$filter`` expressions safely, without hand-formatting OData.

>>> and_(eq("document_status", enum("EnumDocumentStatusLive")), ge("date_time_updated", datetime(2026, 1, 2, tzinfo=UTC)))
"(document_status eq 'EnumDocumentStatusLive') and (date_time_updated ge 2026-01-02T00:00:00Z)"
>>> eq("name", "O'Brien & Sons")
"name eq 'O''Brien & Sons'"

Strings are single-quoted with ``'`` doubled; datetimes must be timezone-aware and are written in UTC with
the ``Z`` suffix Sage requires; dates are unquoted; enum values are quoted names or numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from airflow_provider_sage200.exceptions import Sage200ConfigError

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")

__all__ = [
    "and_",
    "contains",
    "endswith",
    "enum",
    "eq",
    "ge",
    "gt",
    "le",
    "literal",
    "lt",
    "ne",
    "or_",
    "startswith",
]


@dataclass(frozen=True)
class enum:
    """An enum value, by name (``'EnumDocumentStatusLive'``) or number (``'2'``); Sage wants it quoted."""

    value: str | int


def field_name(name: str) -> str:
    if not isinstance(name, str) or not _FIELD.match(name):
        raise Sage200ConfigError(
            f"{name!r} is not a Sage 200 field name (letters, digits, '_', dotted paths)."
        )
    return name


def format_datetime(value: datetime) -> str:
    """UTC with the ``Z`` suffix; milliseconds when present, microseconds when finer (never rounded away)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise Sage200ConfigError(
            f"datetime {value.isoformat()} has no time zone; Sage 200 filters need UTC. Pass an aware datetime, "
            "e.g. datetime(2026, 1, 2, tzinfo=timezone.utc) or pendulum/Airflow's data_interval_start."
        )
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond % 1000:
        # Cutting to milliseconds would change the meaning: ge/lt/eq would take in records the caller excluded.
        text += f".{value.microsecond:06d}"
    elif value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


def literal(value: Any) -> str:
    """Render a Python value as an OData literal."""
    if isinstance(value, enum):
        return "'" + str(value.value).replace("'", "''") + "'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        text = format(Decimal(str(value)), "f")
        return text
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise Sage200ConfigError(f"Cannot use a {type(value).__name__} in a Sage 200 filter: {value!r}.")


def _compare(op: str, name: str, value: Any) -> str:
    return f"{field_name(name)} {op} {literal(value)}"


def eq(name: str, value: Any) -> str:
    return _compare("eq", name, value)


def ne(name: str, value: Any) -> str:
    return _compare("ne", name, value)


def gt(name: str, value: Any) -> str:
    return _compare("gt", name, value)


def ge(name: str, value: Any) -> str:
    return _compare("ge", name, value)


def lt(name: str, value: Any) -> str:
    return _compare("lt", name, value)


def le(name: str, value: Any) -> str:
    return _compare("le", name, value)


def _function(function: str, name: str, text: str) -> str:
    if not isinstance(text, str):
        raise Sage200ConfigError(f"{function}() needs a string, got {text!r}.")
    return f"{function}({field_name(name)},{literal(text)})"


def contains(name: str, text: str) -> str:
    return _function("contains", name, text)


def startswith(name: str, text: str) -> str:
    return _function("startswith", name, text)


def endswith(name: str, text: str) -> str:
    return _function("endswith", name, text)


def _join(word: str, expressions: tuple[str | None, ...]) -> str:
    parts = [e for e in expressions if e]
    if not parts:
        raise Sage200ConfigError(f"{word}_() needs at least one expression.")
    if len(parts) == 1:
        return parts[0]
    return f" {word} ".join(f"({p})" for p in parts)


def and_(*expressions: str | None) -> str:
    """All of ``expressions`` (each parenthesised; ``None`` entries are skipped)."""
    return _join("and", expressions)


def or_(*expressions: str | None) -> str:
    """Any of ``expressions`` (each parenthesised; ``None`` entries are skipped)."""
    return _join("or", expressions)


def interval_filter(name: str, start: datetime, end: datetime) -> str:
    """``name ge <start>Z and name lt <end>Z``: a half-open interval, in UTC."""
    return and_(ge(name, start), lt(name, end))
