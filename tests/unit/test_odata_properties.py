"""Property tests: whatever the ``$filter`` builder produces parses, and means what was asked.

Hypothesis draws a filter as a tree (comparisons on every field type, text functions, ``null``, and/or/not
nesting), renders it twice: through :mod:`airflow_provider_sage200.odata` into OData text, and into a plain
Python predicate with the intended meaning. The text must parse in the emulator's OData parser, and the compiled
filter must agree with the Python predicate on random records.

Intended meaning, as Sage 200 (OData over SQL Server) has it: text comparisons ignore case; a comparison with a
missing (null) value is false, except ``ne``, which is true; ``eq null`` / ``ne null`` test for a missing value.
The builder has no ``not_``: a negation is written ``not (<builder output>)`` around it.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_sage200 import odata
from airflow_provider_sage200.emulator.odata import (
    BOOL,
    DATE,
    DATETIME,
    ENUM,
    FLOAT,
    INT,
    STR,
    compile_filter,
    parse_filter,
)

SCHEMA = {
    "id": INT,
    "total_gross_value": FLOAT,
    "customer_document_no": STR,
    "analysis_code_1": STR,
    "on_hold": BOOL,
    "document_date": DATE,
    "date_time_updated": DATETIME,
    "document_status": ENUM,
}
STATUSES = ["EnumDocumentStatusLive", "EnumDocumentStatusOnHold", "EnumDocumentStatusCancelled"]
ENUMS = {"document_status": STATUSES}
OPS = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge, "lt": operator.lt}
OPS["le"] = operator.le
BUILDERS = {"eq": odata.eq, "ne": odata.ne, "gt": odata.gt, "ge": odata.ge, "lt": odata.lt, "le": odata.le}
FUNCTIONS = {"contains": odata.contains, "startswith": odata.startswith, "endswith": odata.endswith}

ZONES = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=1)),
        timezone(timedelta(hours=-5, minutes=-30)),
        timezone(timedelta(hours=14)),
    ]
)
TEXT = st.text(max_size=8)  # any unicode, quotes included
TEXT_WITH_QUOTES = st.one_of(
    TEXT, st.sampled_from(["O'Brien", "''", "'", "a''b", "it's 'quoted'", "Ünïcødé ' ß"])
)
INTS = st.integers(min_value=-(2**53), max_value=2**53)
FLOATS = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
# Records carry millisecond timestamps (as Sage returns them); filters may ask for any microsecond.
RECORD_TIMES = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC)
)
FILTER_TIMES = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2099, 12, 31), timezones=ZONES)


@dataclass(frozen=True)
class Node:
    text: str  # what the builder produced
    holds: Any  # record -> bool, the intended meaning


def _cmp(field: str, op: str, value: Any, normalise=lambda v: v) -> Node:
    def holds(record: dict[str, Any]) -> bool:
        actual = record.get(field)
        if value is None:
            return (actual is None) == (op == "eq")
        if actual is None:
            return op == "ne"
        return OPS[op](normalise(actual), normalise(value))

    return Node(BUILDERS[op](field, value), holds)


def _text_function(name: str, field: str, needle: str) -> Node:
    test = {"contains": str.__contains__, "startswith": str.startswith, "endswith": str.endswith}[name]

    def holds(record: dict[str, Any]) -> bool:
        actual = record.get(field)
        return actual is not None and test(actual.lower(), needle.lower())

    return Node(FUNCTIONS[name](field, needle), holds)


def _record_time(value: Any) -> Any:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value


def _record_date(value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, odata.enum) else value


ALL_OPS = st.sampled_from(sorted(OPS))
EQUALITY = st.sampled_from(["eq", "ne"])


@st.composite
def enum_comparison(draw: st.DrawFn) -> Node:
    index = draw(st.integers(0, len(STATUSES) - 1))
    value = odata.enum(index) if draw(st.booleans()) else odata.enum(STATUSES[index])
    op = draw(EQUALITY)

    def holds(record: dict[str, Any]) -> bool:
        actual = record.get("document_status")
        return (actual == STATUSES[index]) == (op == "eq")

    return Node(BUILDERS[op]("document_status", value), holds)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


LEAVES = st.one_of(
    st.builds(lambda op, v: _cmp("id", op, v), ALL_OPS, INTS),
    st.builds(lambda op, v: _cmp("total_gross_value", op, v), ALL_OPS, FLOATS),
    st.builds(lambda op, v: _cmp("total_gross_value", op, v), ALL_OPS, INTS),
    st.builds(
        lambda f, op, v: _cmp(f, op, v, _lower),
        st.sampled_from(["customer_document_no", "analysis_code_1"]),
        EQUALITY,
        TEXT_WITH_QUOTES,
    ),
    st.builds(
        _text_function, st.sampled_from(sorted(FUNCTIONS)), st.just("customer_document_no"), TEXT_WITH_QUOTES
    ),
    st.builds(lambda op, v: _cmp("on_hold", op, v), EQUALITY, st.booleans()),
    st.builds(lambda op, v: _cmp("document_date", op, v, _record_date), ALL_OPS, DATES),
    st.builds(lambda op, v: _cmp("date_time_updated", op, v, _record_time), ALL_OPS, FILTER_TIMES),
    enum_comparison(),
    st.builds(lambda f, op: _cmp(f, op, None), st.sampled_from(sorted(SCHEMA)), EQUALITY),
)


def _and(parts: list[Node]) -> Node:
    return Node(odata.and_(*(p.text for p in parts)), lambda r: all(p.holds(r) for p in parts))


def _or(parts: list[Node]) -> Node:
    return Node(odata.or_(*(p.text for p in parts)), lambda r: any(p.holds(r) for p in parts))


def _not(part: Node) -> Node:
    return Node(f"not ({part.text})", lambda r: not part.holds(r))


FILTERS = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(_and),
        st.lists(children, min_size=1, max_size=3).map(_or),
        children.map(_not),
    ),
    max_leaves=8,
)


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), strategy)


RECORDS = st.fixed_dictionaries(
    {
        "id": _maybe(INTS),
        "total_gross_value": _maybe(FLOATS),
        "customer_document_no": _maybe(TEXT_WITH_QUOTES),
        "analysis_code_1": _maybe(TEXT),
        "on_hold": _maybe(st.booleans()),
        "document_date": _maybe(DATES.map(date.isoformat)),
        "date_time_updated": _maybe(RECORD_TIMES.map(lambda d: _stamp(d))),
        "document_status": _maybe(st.sampled_from(STATUSES)),
    }
)


@settings(max_examples=200, deadline=None)
@given(FILTERS, st.lists(RECORDS, min_size=1, max_size=10))
def test_builder_output_parses_and_means_what_was_asked(node: Node, records: list[dict[str, Any]]):
    predicate = compile_filter(parse_filter(node.text), SCHEMA, ENUMS)
    for record in records:
        assert predicate(record) is node.holds(record), (node.text, record)


def _stamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


EQUAL_PAIRS = st.one_of(  # (field, value asked for, the same value as a record holds it)
    INTS.map(lambda v: ("id", v, v)),
    FLOATS.map(lambda v: ("total_gross_value", v, v)),
    TEXT_WITH_QUOTES.map(lambda v: ("customer_document_no", v, v)),
    st.booleans().map(lambda v: ("on_hold", v, v)),
    DATES.map(lambda v: ("document_date", v, v.isoformat())),
    st.builds(lambda v, zone: ("date_time_updated", v.astimezone(zone), _stamp(v)), RECORD_TIMES, ZONES),
    st.sampled_from(STATUSES).map(lambda v: ("document_status", odata.enum(v), v)),
)


@settings(max_examples=200, deadline=None)
@given(EQUAL_PAIRS)
def test_a_record_holding_the_asked_value_matches_eq_and_not_ne(pair: tuple[str, Any, Any]):
    """Guards against a vacuous pass: a filter that matched nothing would agree with many broken predicates."""
    field, asked, stored = pair
    record = {field: stored}
    assert compile_filter(parse_filter(odata.eq(field, asked)), SCHEMA, ENUMS)(record) is True
    assert compile_filter(parse_filter(odata.ne(field, asked)), SCHEMA, ENUMS)(record) is False


@settings(max_examples=200, deadline=None)
@given(FILTER_TIMES, st.integers(-2, 2), ALL_OPS)
def test_datetimes_compare_at_full_precision_in_any_zone(asked: datetime, step_ms: int, op: str):
    """Records a millisecond or two either side of the asked moment (or on it) compare as Python does."""
    on_the_ms = asked.astimezone(UTC).replace(microsecond=asked.microsecond // 1000 * 1000)
    stored = on_the_ms + timedelta(milliseconds=step_ms)
    expression = BUILDERS[op]("date_time_updated", asked)
    assert expression.endswith("Z")
    predicate = compile_filter(parse_filter(expression), SCHEMA, ENUMS)
    assert predicate({"date_time_updated": _stamp(stored)}) is OPS[op](stored, asked), expression
