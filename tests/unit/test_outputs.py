"""The record writers: every format reads back to the records written, and a failed export leaves nothing."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pyarrow.parquet as pq
import pytest

from airflow_provider_sage200.outputs import AtomicExport
from airflow_provider_sage200.transport import RAW_RECORDS
from airflow_provider_sage200.version_compat import ObjectStoragePath

PAGES = [
    [
        {"id": 1, "name": "Café Ltd", "lines": [{"id": 11, "qty": 2}], "total": 12.5},
        {"id": 2, "name": "Ünïcode & Sons", "lines": [], "total": None},
    ],
    [],
    [{"id": 3, "name": "Acme", "lines": [{"id": 31, "qty": 1}], "total": 0.1}],
]
RECORDS = [record for page in PAGES for record in page]


def export(tmp_path, output_format: str, pages=PAGES) -> ObjectStoragePath:
    destination = ObjectStoragePath(f"file://{tmp_path}/out.{output_format}")
    with AtomicExport(destination, output_format) as out:
        for page in pages:
            out.write_page(page)
    assert out.bytes == destination.stat().st_size
    return destination


def leftovers(tmp_path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


def test_jsonl_is_one_compact_utf8_record_per_line(tmp_path):
    raw = export(tmp_path, "jsonl").read_bytes()
    assert raw.decode("utf-8").splitlines() == [
        json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in RECORDS
    ]
    assert "Café".encode() in raw  # UTF-8, not \u escapes


def test_json_is_one_array(tmp_path):
    assert json.loads(export(tmp_path, "json").read_text()) == RECORDS


def test_json_with_no_records_is_an_empty_array(tmp_path):
    assert json.loads(export(tmp_path, "json", pages=[[], []]).read_text()) == []


def test_csv_keeps_first_page_columns_and_nests_json(tmp_path):
    rows = list(csv.DictReader(export(tmp_path, "csv").read_text().splitlines()))
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert json.loads(rows[0]["lines"]) == [{"id": 11, "qty": 2}]
    assert rows[1]["total"] == ""


def test_parquet_reads_back(tmp_path):
    table = pq.read_table(export(tmp_path, "parquet").path)
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert json.loads(table.column("lines").to_pylist()[0]) == [{"id": 11, "qty": 2}]


def test_values_json_has_no_type_for_are_written_as_text(tmp_path):
    page = [{"id": 1, "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "amount": Decimal("1.10")}]
    (line,) = export(tmp_path, "jsonl", pages=[page]).read_text().splitlines()
    assert json.loads(line) == {"id": 1, "when": "2026-01-02T03:04:05Z", "amount": "1.10"}


def test_failed_export_leaves_no_file_and_keeps_the_previous_one(tmp_path):
    destination = export(tmp_path, "jsonl")
    before = destination.read_bytes()
    with pytest.raises(RuntimeError, match="boom"), AtomicExport(destination, "jsonl") as out:
        out.write_page(PAGES[0])
        raise RuntimeError("boom")
    assert destination.read_bytes() == before
    assert leftovers(tmp_path) == ["out.jsonl"]


def raw_pages(separator: bytes = b"") -> list[list[msgspec.Raw]]:
    """The pages as ``iter_pages(raw_records=True)`` gives them, optionally pretty-printed by the server."""
    text = [b"[" + b",".join(json.dumps(r).encode() for r in page) + b"]" for page in PAGES]
    if separator:
        text = [t.replace(b", ", b"," + separator) for t in text]
    return [RAW_RECORDS.decode(t) for t in text]


@pytest.mark.parametrize("separator", [b"", b"\n  ", b"\r\n"], ids=["compact", "newlines", "crlf"])
def test_jsonl_from_raw_records_is_one_record_per_line(tmp_path, separator):
    lines = export(tmp_path, "jsonl", pages=raw_pages(separator)).read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == RECORDS
    assert b"\r" not in b"".join(lines)


def test_json_from_raw_records(tmp_path):
    assert json.loads(export(tmp_path, "json", pages=raw_pages(b"\n")).read_text()) == RECORDS


@pytest.mark.parametrize("output_format, accepts", [("jsonl", True), ("json", True), ("csv", False)])
def test_only_json_formats_take_raw_records(tmp_path, output_format, accepts):
    destination = ObjectStoragePath(f"file://{tmp_path}/out.{output_format}")
    assert AtomicExport(destination, output_format).accepts_raw is accepts
