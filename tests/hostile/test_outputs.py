"""Hostile input at the output: bad UTF-8, spreadsheet formulas, kills between write and rename."""

from __future__ import annotations

import csv
import json
import os
import time

import pytest

from airflow_provider_sage200.exceptions import Sage200ServerError
from airflow_provider_sage200.operators.sage200 import Sage200GetOperator
from airflow_provider_sage200.outputs import AtomicExport
from tests.hostile.server import Collection, HostileServer


def _with_bad_byte(page: list[dict]) -> bytes:
    return json.dumps(page).encode().replace(b'"0000000002"', b'"00000\xff0002"')


@pytest.mark.parametrize("output", ["jsonl", "json", "csv", "xcom"])
def test_invalid_utf8_is_refused_naming_the_record(tmp_path, connect, output):
    """Defect 7: a record holding a byte that is not UTF-8 fails the export, saying so; no file is left.

    jsonl and json pass each record's JSON text through; csv and XCom decode the page (where the byte used to be
    taken for a body cut short, and retried)."""
    with HostileServer(Collection(range(1, 6), body_for=_with_bad_byte), max_requests=10) as server:
        connect(server)
        out = tmp_path / "out"
        out.mkdir()
        kwargs = (
            {} if output == "xcom" else {"output_uri": str(out / f"orders.{output}"), "output_format": output}
        )
        operator = Sage200GetOperator(task_id="export", endpoint="sop_orders", max_concurrency=1, **kwargs)
        with pytest.raises(Sage200ServerError, match=r"record 2 of the page is not valid UTF-8 \(byte 0xff"):
            operator.execute({})
    assert list(out.iterdir()) == []
    assert len(server.requests) == 1


def test_csv_cells_that_are_formulas_are_escaped(tmp_path, connect):
    """Defect 15: text starting with = + - @ is written with a leading ' in csv (on by default); numbers are not."""
    values = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "-12.5", "plain"]
    collection = Collection(range(1, 7), record=lambda i: {"id": i, "name": values[i - 1], "n": -i})
    with HostileServer(collection, max_requests=10) as server:
        connect(server)
        path = tmp_path / "orders.csv"
        Sage200GetOperator(
            task_id="export",
            endpoint="sop_orders",
            output_uri=str(path),
            output_format="csv",
            max_concurrency=1,
        ).execute({})
    rows = list(csv.DictReader(path.open()))
    assert [r["name"] for r in rows] == [
        '\'=HYPERLINK("http://x")',
        "'+1+1",
        "'-2+3",
        "'@SUM(A1)",
        "-12.5",
        "plain",
    ]
    assert [r["n"] for r in rows] == [str(-i) for i in range(1, 7)]


def test_export_fsyncs_the_file_and_its_directory(tmp_path, monkeypatch):
    """Defect 15: the temporary file is fsynced before the rename, and the directory after it."""
    from airflow_provider_sage200.version_compat import ObjectStoragePath

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    destination = tmp_path / "orders.jsonl"
    with AtomicExport(ObjectStoragePath(str(destination)), "jsonl") as export:
        export.write_page([{"id": 1}])
    assert len(synced) == 2
    assert synced[0].startswith(str(tmp_path / ".orders.jsonl.")) and synced[0].endswith(".tmp")
    assert synced[1] == str(tmp_path)


def test_stale_temporary_files_of_the_destination_are_removed(tmp_path):
    """Defect 15: a killed export's temporary file is removed by the next export of the same destination."""
    from airflow_provider_sage200.outputs import STALE_TEMPORARY_SECONDS
    from airflow_provider_sage200.version_compat import ObjectStoragePath

    stale = tmp_path / ".orders.jsonl.deadbeef.tmp"
    fresh = tmp_path / ".orders.jsonl.0badc0de.tmp"  # perhaps another export still running
    other = tmp_path / ".customers.jsonl.deadbeef.tmp"
    for path in (stale, fresh, other):
        path.write_text("partial")
    old = time.time() - STALE_TEMPORARY_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    with AtomicExport(ObjectStoragePath(str(tmp_path / "orders.jsonl")), "jsonl") as export:
        export.write_page([{"id": 1}])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, other.name, "orders.jsonl"])
