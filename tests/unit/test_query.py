from __future__ import annotations

import pytest

from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.query import and_filters, iter_pages, validate_endpoint, validate_query


class TestValidateEndpoint:
    @pytest.mark.parametrize("endpoint", ["sop_orders", "sop_orders/123", "customers/7/sop_orders", "sites"])
    def test_accepts_resource_paths(self, endpoint):
        assert validate_endpoint(endpoint) == endpoint

    @pytest.mark.parametrize(
        ("endpoint", "message"),
        [
            pytest.param("/sop_orders", "without the leading slash", id="leading-slash"),
            pytest.param("https://api.columbus.sage.com/uk/sage200/accounts/v1/sites", "full URL", id="url"),
            pytest.param("sop_orders/../sites", "'..'", id="dotdot"),
            pytest.param("sop orders", "without spaces", id="space"),
            pytest.param("sop_orders?$top=1", "query string", id="query-string"),
            pytest.param("", "empty", id="empty"),
        ],
    )
    def test_rejects_with_clear_message(self, endpoint, message):
        with pytest.raises(Sage200ConfigError, match=message.replace("?", r"\?").replace(".", r"\.")):
            validate_endpoint(endpoint)


class TestValidateQuery:
    def test_passes_known_options_as_strings(self):
        query = {"$filter": "id gt 5", "$select": ["id", "document_no"], "$top": 10, "$count": True}
        assert validate_query(query) == {
            "$filter": "id gt 5",
            "$select": "id,document_no",
            "$top": "10",
            "$count": "true",
        }

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            pytest.param({"top": 5}, "Did you mean '\\$top'", id="missing-dollar"),
            pytest.param({"$format": "json"}, "Unknown OData option '\\$format'", id="unknown"),
            pytest.param({"$top": 5001}, "at most 5000", id="top-over-max"),
            pytest.param({"$top": -1}, "whole number", id="top-negative"),
            pytest.param({"$skip": 10}, "\\$skip needs \\$orderby", id="skip-without-orderby"),
            pytest.param({"$orderby": "id, name"}, "one field", id="multi-orderby"),
            pytest.param({"$count": "yes"}, "only takes true", id="count"),
        ],
    )
    def test_rejects_impossible_options(self, query, message):
        with pytest.raises(Sage200ConfigError, match=message):
            validate_query(query)


def test_and_filters_parenthesises_each_part():
    assert and_filters("a eq 1 or b eq 2", None, "id gt 5") == "(a eq 1 or b eq 2) and (id gt 5)"
    assert and_filters(None, " ") is None
    assert and_filters("x eq 1") == "x eq 1"


class TestIterPages:
    @staticmethod
    def fake_collection(ids):
        """A tiny stand-in for the server side of key paging, recording what was asked."""
        asked = []

        def fetch(params):
            asked.append(params)
            last = int(params["$filter"].rsplit(" ", 1)[-1]) if "$filter" in params else 0
            top = int(params["$top"])
            return [{"id": i} for i in ids if i > last][:top]

        return fetch, asked

    def test_key_paging_reads_every_id_once(self):
        fetch, asked = self.fake_collection(range(1, 11))
        pages = list(iter_pages(fetch, {}, page_size=4))
        assert [r["id"] for p in pages for r in p] == list(range(1, 11))
        assert [p.get("$filter") for p in asked] == [None, "id gt 4", "id gt 8"]
        assert all(p["$orderby"] == "id" for p in asked)

    def test_top_caps_the_total(self):
        fetch, asked = self.fake_collection(range(1, 100))
        records = [r for p in iter_pages(fetch, {"$top": "6"}, page_size=4) for r in p]
        assert [r["id"] for r in records] == [1, 2, 3, 4, 5, 6]
        assert [p["$top"] for p in asked] == ["4", "2"]

    @staticmethod
    def fake_offset_collection(total):
        """A stand-in for offset paging: records ``{"n": 0}`` to ``{"n": total - 1}``, recording what was asked."""
        asked = []

        def fetch(params):
            asked.append(params)
            skip = int(params.get("$skip", 0))
            return [{"n": n} for n in range(skip, min(skip + int(params["$top"]), total))]

        return fetch, asked

    def test_offset_paging_when_caller_orders(self):
        fetch, asked = self.fake_offset_collection(7)
        records = [r for p in iter_pages(fetch, {"$orderby": "document_date desc"}, page_size=3) for r in p]
        assert [r["n"] for r in records] == list(range(7))
        assert [p.get("$skip") for p in asked] == [None, "3", "6"]

    def test_select_gains_id_for_key_paging(self):
        fetch, asked = self.fake_collection(range(1, 3))
        list(iter_pages(fetch, {"$select": "document_no"}, page_size=5))
        assert asked[0]["$select"] == "document_no,id"

    def test_own_key_paging_filters_orders_and_selects_by_that_key(self):
        key = "sop_allocation_line_id"
        asked = []

        def fetch(params):
            asked.append(params)
            last = int(params["$filter"].rsplit(" ", 1)[-1]) if "$filter" in params else 0
            return [{key: i, "id": 0} for i in range(1, 8) if i > last][: int(params["$top"])]

        pages = list(iter_pages(fetch, {"$select": "warehouse_id"}, page_size=3, key=key))
        assert [r[key] for p in pages for r in p] == list(range(1, 8))
        assert [p.get("$filter") for p in asked] == [None, f"{key} gt 3", f"{key} gt 6"]
        assert all(p["$orderby"] == key and p["$select"] == f"warehouse_id,{key}" for p in asked)

    def test_no_key_pages_by_offset(self):
        fetch, asked = self.fake_offset_collection(5)
        records = [r for p in iter_pages(fetch, {"$orderby": "n"}, page_size=2, key=None) for r in p]
        assert [r["n"] for r in records] == list(range(5)) and "$filter" not in asked[-1]
