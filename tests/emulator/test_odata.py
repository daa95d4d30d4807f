from __future__ import annotations

import re

import pytest

from airflow_provider_sage200.emulator.data import ENUMS, SCHEMAS
from airflow_provider_sage200.emulator.odata import (
    BoolOp,
    Compare,
    ODataError,
    compile_filter,
    id_bounds,
    parse_filter,
)

ORDER = {
    "id": 7,
    "document_no": "0000000007",
    "customer_document_no": "PO-O'Brien",
    "document_date": "2026-01-15",
    "document_status": "EnumDocumentStatusLive",
    "total_gross_value": 120.5,
    "date_time_updated": "2026-01-15T10:00:00.000Z",
    "analysis_code_1": None,
}


def matches(expression: str, record: dict = ORDER) -> bool:
    return compile_filter(parse_filter(expression), SCHEMAS["sop_orders"], ENUMS)(record)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param("id eq 7", True, id="eq"),
        pytest.param("id ne 7", False, id="ne"),
        pytest.param("id gt 6 and id lt 8", True, id="and"),
        pytest.param("id gt 7 or id le 7", True, id="or"),
        pytest.param("id eq 1 or id eq 2 and id eq 7", False, id="and-binds-tighter"),
        pytest.param("(id eq 1 or id eq 7) and id eq 7", True, id="parentheses"),
        pytest.param("not (id eq 7)", False, id="not"),
        pytest.param("customer_document_no eq 'PO-O''Brien'", True, id="escaped-quote"),
        pytest.param("contains(customer_document_no,'brien')", True, id="contains"),
        pytest.param("startswith(document_no,'0000')", True, id="startswith"),
        pytest.param("endswith(document_no,'8')", False, id="endswith"),
        pytest.param("document_date gt 2026-01-14", True, id="date"),
        pytest.param("date_time_updated ge 2026-01-15T10:00:00Z", True, id="datetime"),
        pytest.param("date_time_updated lt 2026-01-15T09:59:59.999Z", False, id="datetime-ms"),
        pytest.param("document_status eq 'EnumDocumentStatusLive'", True, id="enum-name"),
        pytest.param("document_status eq '0'", True, id="enum-int"),
        pytest.param("total_gross_value ge 120.5", True, id="decimal"),
        pytest.param("analysis_code_1 eq null", True, id="null"),
    ],
)
def test_filters_mean_what_they_say(expression, expected):
    assert matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        pytest.param("date_time_updated gt 2026-01-15T10:00:00", "'Z' suffix", id="datetime-without-z"),
        pytest.param("date_time_updated gt 2026-01-15T10:00:00+01:00", "'Z' suffix", id="datetime-offset"),
        pytest.param("nope eq 1", "unknown field 'nope'", id="unknown-field"),
        pytest.param("document_no eq 'abc", "unterminated string", id="bad-quote"),
        pytest.param("document_no eq abc", "expected a value", id="unquoted-string"),
        pytest.param("id eq '7'", "is a int field", id="type-mismatch"),
        pytest.param("document_no eq 7", "quote the value", id="text-needs-quotes"),
        pytest.param("document_status eq 'Nope'", "not a value of document_status", id="bad-enum"),
        pytest.param("id eq", "unexpected end", id="truncated"),
        pytest.param("id eq 1 and", "unexpected end", id="dangling-and"),
        pytest.param("(id eq 1", "unexpected end", id="unbalanced"),
        pytest.param("(id eq 1 id", "expected ')'", id="unclosed"),
        pytest.param("id like 1", "expected an operator", id="unknown-operator"),
        pytest.param("lines eq 1", "collection", id="collection-field"),
        pytest.param("contains(id,'1')", "text field", id="function-on-number"),
        pytest.param("id gt null", "null can only", id="null-ordering"),
        pytest.param("", "empty", id="empty"),
    ],
)
def test_invalid_filters_are_400s_that_name_the_problem(expression, message):
    with pytest.raises(ODataError, match=re.escape(message)):
        matches(expression)


def test_parser_builds_a_tree_not_a_string():
    tree = parse_filter("id gt 5 and (document_no eq 'a' or id lt 3)")
    assert isinstance(tree, BoolOp) and tree.op == "and"
    assert tree.left == Compare("id", "gt", tree.left.literal)
    assert isinstance(tree.right, BoolOp) and tree.right.op == "or"


def test_id_bounds_come_from_the_top_level_and_chain_only():
    assert id_bounds(parse_filter("id gt 10 and id le 20 and document_no eq 'x'")) == (11, 20)
    assert id_bounds(parse_filter("id gt 10 or id lt 3")) == (float("-inf"), float("inf"))
