"""Streaming record writers for exports: constant memory, and nothing at the destination until done.

Records arrive page by page and are written straight to a temporary file next to the destination; only
when the export succeeds is that file moved onto the destination name. A failed export removes the
temporary file and leaves the destination untouched (no partial output).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

import msgspec

from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.query import Page

if TYPE_CHECKING:
    from airflow_provider_sage200.version_compat import ObjectStoragePath

OUTPUT_FORMATS = ("jsonl", "json", "csv", "parquet")

# Compact UTF-8 JSON; values JSON has no type for (dates from a user's own code, Decimal) become their str().
_ENCODER = msgspec.json.Encoder(enc_hook=str)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value).decode()


class RecordWriter:
    """Writes pages of records to an open binary stream in one format.

    Pages hold dicts; the JSON writers also take records left as JSON text (:class:`msgspec.Raw`, from
    ``Sage200Hook.iter_pages(raw_records=True)``) and copy them through without decoding.
    """

    accepts_raw = False

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def write_page(self, page: Page) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the document (closing brackets, parquet footer); the stream itself is closed by the caller."""


class JsonLinesWriter(RecordWriter):
    accepts_raw = True

    def write_page(self, page: Page) -> None:
        lines = _ENCODER.encode_lines(page)
        if lines.count(b"\n") != len(page) or b"\r" in lines:
            # Records passed through as the server's JSON text kept its line breaks (whitespace, since JSON
            # strings escape them): re-encode them compactly, one record per line.
            lines = _ENCODER.encode_lines([_decode(record) for record in page])
        self.stream.write(lines)


def _decode(record: Any) -> Any:
    return msgspec.json.decode(record) if isinstance(record, msgspec.Raw) else record


class JsonArrayWriter(RecordWriter):
    accepts_raw = True

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream)
        self.stream.write(b"[")
        self.first = True

    def write_page(self, page: Page) -> None:
        if not page:
            return
        self.stream.write((b"" if self.first else b",\n") + b",\n".join(_ENCODER.encode(r) for r in page))
        self.first = False

    def close(self) -> None:
        self.stream.write(b"]\n")


class CsvWriter(RecordWriter):
    """CSV with a stable column order (first-seen order of the first page); nested values as JSON text."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream)
        self.columns: list[str] | None = None

    def write_page(self, page: Page) -> None:
        if not page:
            return
        if self.columns is None:
            self.columns = list(dict.fromkeys(key for record in page for key in record))
            self._write_rows([self.columns])
        known = set(self.columns)
        for record in page:
            extra = record.keys() - known
            if extra:
                raise Sage200ConfigError(
                    f"CSV output: a record has fields {sorted(extra)} that the first page did not have, so "
                    "they have no column; use output_format='jsonl', or $select a fixed set of fields."
                )
        self._write_rows([[_cell(record.get(c)) for c in self.columns] for record in page])

    def _write_rows(self, rows: Iterable[list[Any]]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        self.stream.write(text.getvalue().encode())


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return _dumps(value)
    return "" if value is None else value


class ParquetWriter(RecordWriter):
    """Parquet through pyarrow (``pip install 'airflow-provider-sage200[parquet]'``); nested values as JSON text."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream)
        import pyarrow  # noqa: F401  (checked in open_writer)

        self.writer = None
        self.schema = None

    def write_page(self, page: Page) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not page:
            return
        rows = [{k: _dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()} for r in page]
        if self.schema is None:
            inferred = pa.Table.from_pylist(rows).schema
            self.schema = pa.schema(
                [pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type) for f in inferred]
            )
            self.writer = pq.ParquetWriter(self.stream, self.schema)
        self.writer.write_table(pa.Table.from_pylist(rows, schema=self.schema))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


_WRITERS: dict[str, type[RecordWriter]] = {
    "jsonl": JsonLinesWriter,
    "json": JsonArrayWriter,
    "csv": CsvWriter,
    "parquet": ParquetWriter,
}


def check_output_format(output_format: str) -> str:
    if output_format not in _WRITERS:
        raise Sage200ConfigError(
            f"output_format {output_format!r} is not supported; use one of {', '.join(OUTPUT_FORMATS)}."
        )
    if output_format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise Sage200ConfigError(
                "output_format='parquet' needs pyarrow: pip install 'airflow-provider-sage200[parquet]' "
                "(or use 'jsonl')."
            ) from None
    return output_format


class AtomicExport:
    """Context manager: write pages to ``<destination>.<random>.tmp``, move onto ``destination`` on success.

    :param destination: where the finished file must appear (any ``ObjectStoragePath``).
    :param output_format: one of :data:`OUTPUT_FORMATS`.
    """

    def __init__(self, destination: ObjectStoragePath, output_format: str) -> None:
        self.destination = destination
        self.output_format = check_output_format(output_format)
        self.temporary = destination.parent / f".{destination.name}.{uuid.uuid4().hex[:8]}.tmp"
        self.bytes = 0
        self._stream: IO[bytes] | None = None
        self._writer: RecordWriter | None = None

    def __enter__(self) -> AtomicExport:
        try:
            self.destination.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self.temporary.open("wb")
        except OSError as exc:
            raise Sage200ConfigError(
                f"Cannot write to output location {str(self.destination.parent)!r}: {exc.strerror or exc}."
            ) from None
        self._writer = _WRITERS[self.output_format](self._stream)
        return self

    @property
    def accepts_raw(self) -> bool:
        """Whether pages may hold records as JSON text (``msgspec.Raw``) instead of dicts."""
        return _WRITERS[self.output_format].accepts_raw

    def write_page(self, page: Page) -> None:
        assert self._writer is not None
        self._writer.write_page(page)

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._stream is not None and self._writer is not None
        try:
            if exc_type is None:
                self._writer.close()
            self._stream.close()
            if exc_type is None:
                self.bytes = self.temporary.stat().st_size
                self.temporary.rename(self.destination)
        finally:
            if self.temporary.exists():
                self.temporary.unlink()
