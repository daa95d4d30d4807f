"""CSV and Parquet columns and types from the catalogue, not from the first page."""

from __future__ import annotations

import csv
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_sage200.columns import Columns
from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.outputs import AtomicExport
from airflow_provider_sage200.version_compat import ObjectStoragePath

FIELDS = {"id": "int", "name": "str", "balance": "decimal", "on_hold": "bool", "date_time_updated": "datetime",
          "lines": "array"}  # fmt: skip
FIRST = [{"id": 1, "name": "Acme", "date_time_updated": "2026-01-02T03:04:05.678Z", "surprise": 7}]
SECOND = [{"id": 2, "balance": 12.5, "on_hold": True, "lines": [{"n": 1}], "date_time_updated": "2026-01-03"}]


def export(tmp_path, fmt: str, pages) -> ObjectStoragePath:
    destination = ObjectStoragePath(f"file://{tmp_path}/out.{fmt}")
    with AtomicExport(destination, fmt, Columns(FIELDS, "customers")) as out:
        for page in pages:
            out.write_page(page)
    return destination


def test_parquet_types_come_from_the_catalogue_and_unknown_fields_are_text(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        table = pq.read_table(str(export(tmp_path, "parquet", [FIRST, SECOND]).path))
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("balance").type == pa.float64()  # absent from the first page
    assert table.schema.field("on_hold").type == pa.bool_()
    assert table.schema.field("date_time_updated").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("surprise").type == pa.string()
    assert table.column_names == [*FIELDS, "surprise"]
    rows = table.to_pylist()
    assert rows[1]["balance"] == 12.5 and rows[1]["lines"] == '[{"n":1}]' and rows[0]["surprise"] == "7"
    assert "customers returned fields the catalogue lacks" in caplog.text and "surprise" in caplog.text


def test_csv_columns_come_from_the_catalogue(tmp_path):
    with open(export(tmp_path, "csv", [FIRST, SECOND]).path) as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [*FIELDS, "surprise"]
    assert rows[2][FIELDS_INDEX["balance"]] == "12.5"


FIELDS_INDEX = {name: i for i, name in enumerate(FIELDS)}


# The discarded file's parquet writer is closed with it, not by its finaliser on a closed stream.
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_field_unknown_to_catalogue_and_first_page_is_refused_not_dropped(tmp_path):
    with pytest.raises(Sage200ConfigError, match=r"fields \['late'\]"):
        export(tmp_path, "parquet", [FIRST, [{"id": 3, "late": 1}]])
    assert not (tmp_path / "out.parquet").exists()
