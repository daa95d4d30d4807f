from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.odata import and_, contains, enum, eq, ge, literal, lt, or_


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("O'Brien", "'O''Brien'", id="quote-escaped"),
        pytest.param(42, "42", id="int"),
        pytest.param(1.5, "1.5", id="float"),
        pytest.param(True, "true", id="bool"),
        pytest.param(None, "null", id="null"),
        pytest.param(date(2026, 1, 2), "2026-01-02", id="date-unquoted"),
        pytest.param(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z", id="datetime-z"),
        pytest.param(
            datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=timezone(timedelta(hours=1))),
            "2026-01-02T02:04:05.123Z",
            id="converted-to-utc",
        ),
        pytest.param(enum("EnumDocumentStatusLive"), "'EnumDocumentStatusLive'", id="enum-name"),
        pytest.param(enum(2), "'2'", id="enum-int"),
    ],
)
def test_literals(value, expected):
    assert literal(value) == expected


def test_naive_datetime_is_refused():
    with pytest.raises(Sage200ConfigError, match="no time zone"):
        ge("date_time_updated", datetime(2026, 1, 2))


def test_composition():
    expression = and_(
        or_(eq("document_status", enum("EnumDocumentStatusLive")), contains("customer_document_no", "PO")),
        lt("date_time_updated", datetime(2026, 1, 2, tzinfo=UTC)),
    )
    assert expression == (
        "((document_status eq 'EnumDocumentStatusLive') or (contains(customer_document_no,'PO'))) "
        "and (date_time_updated lt 2026-01-02T00:00:00Z)"
    )


def test_field_names_are_checked():
    with pytest.raises(Sage200ConfigError, match="not a Sage 200 field name"):
        eq("name eq 'x' or 1", 1)
