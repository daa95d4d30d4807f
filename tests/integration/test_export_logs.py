"""What an export's log tells the person watching it: what it reads, how far it is, what it wrote."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_sage200.operators.sage200 import Sage200GetOperator

pytestmark = pytest.mark.usefixtures("consented")


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class _Captured(Sage200GetOperator):
    """The operator with a plain stdlib logger (its own is structlog's on 3.x, stdlib's on 2.11)."""

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"sage200.test_export_logs.{self.task_id}")


def export_log(operator: Sage200GetOperator, context: dict) -> tuple[object, list[str]]:
    """Run ``operator`` directly against the emulator, capturing what it logs."""
    handler = _Lines()
    logger = operator.log
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        result = operator.execute(context)
    finally:
        logger.removeHandler(handler)
    # Airflow 3 warns that execute() runs outside its task runner: not the operator's own words.
    return result, [line for line in handler.lines if "outside of the Task Runner" not in line]


def test_first_line_names_resource_filter_and_window_and_progress_has_a_percentage(emulator, tmp_path):
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = end - timedelta(days=3650)
    operator = _Captured(
        task_id="export",
        endpoint="sop_orders",
        query={"$select": "id,date_time_updated"},
        incremental_field="date_time_updated",
        output_uri=str(tmp_path / "orders.jsonl"),
        page_size=1000,
        max_concurrency=4,
        progress_interval=0,
    )
    summary, lines = export_log(operator, {"data_interval_start": start, "data_interval_end": end})
    assert lines[0] == (
        f"Exporting sop_orders: $filter {summary['filter']}; changes in [{start.isoformat()}, {end.isoformat()}); "
        f"to {tmp_path / 'orders.jsonl'}"
    )
    total = summary["records"]
    assert total == 20_000
    progress = [line for line in lines if line.startswith("sop_orders progress:")]
    assert progress, lines
    # A parallel read counts the records to plan: progress says how many of them, as a percentage.
    assert re.match(
        rf"sop_orders progress: \d+ pages, [\d,]+ of {total:,} records \(\d+%\), \d+ records/s", progress[-1]
    )
    assert f"sop_orders finished: 20 pages, {total:,} of {total:,} records (100%)" in "\n".join(lines)
    assert f"Wrote {total:,} records in 20 pages (" in lines[-1]


def test_one_page_is_one_page(emulator, tmp_path):
    operator = _Captured(
        task_id="export",
        endpoint="customers",
        query={"$select": "id", "$top": 1},
        output_uri=str(tmp_path / "one.jsonl"),
    )
    summary, lines = export_log(operator, {})
    assert (
        lines[0]
        == f"Exporting customers: $filter none; no time window (the whole resource); to {tmp_path / 'one.jsonl'}"
    )
    assert summary["records"] == 1
    assert "customers finished: 1 page, 1 record, " in "\n".join(lines)
    assert "Wrote 1 record in 1 page (" in lines[-1]
    assert not [line for line in lines if " 1 pages" in line or " 1 records" in line]
