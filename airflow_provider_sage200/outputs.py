"""Streaming record writers for exports: constant memory, and nothing at the destination until done.

Records arrive page by page and are written straight to a temporary file next to the destination; only
when the export succeeds is that file flushed to disk (``fsync``, local files) and moved onto the destination
name. A failed export removes the temporary file and leaves the destination untouched (no partial output); a
temporary file left by a killed export of the same destination is removed by the next one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import time
import uuid
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

import msgspec

from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.query import Page

if TYPE_CHECKING:
    from airflow_provider_sage200.columns import Columns
    from airflow_provider_sage200.version_compat import ObjectStoragePath


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
    typed_columns = False  # takes the catalogue's columns (columns.Columns) as a second argument

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
    """CSV with a stable column order (the catalogue's fields when given, else first-seen order of the first
    page); nested values as JSON text.

    :param formula_guard: prefix ``'`` to text cells a spreadsheet would run as a formula (starting with ``=``,
        ``+``, ``-``, ``@``, tab or carriage return, unless the text is a plain number), so a record's text
        cannot run in whoever opens the file (CSV injection).
    :param typed: the catalogue's columns (:mod:`airflow_provider_sage200.columns`).
    """

    typed_columns = True

    def __init__(self, stream: IO[bytes], typed: Columns | None = None, formula_guard: bool = True) -> None:
        super().__init__(stream)
        self.columns: list[str] | None = None
        self.formula_guard = formula_guard
        self.typed = typed

    def write_page(self, page: Page) -> None:
        if not page:
            return
        if self.columns is None:
            names = [key for record in page for key in record]
            self.columns = self.typed.extend_with(names) if self.typed else list(dict.fromkeys(names))
            self._write_rows([self.columns])
        known = set(self.columns)
        for record in page:
            extra = record.keys() - known
            if extra:
                raise Sage200ConfigError(
                    f"CSV output: a record has fields {sorted(extra)} that the first page did not have, so "
                    "they have no column; use output_format='jsonl', or $select a fixed set of fields."
                )
        cell = _guarded_cell if self.formula_guard else _cell
        self._write_rows([[cell(record.get(c)) for c in self.columns] for record in page])

    def _write_rows(self, rows: Iterable[list[Any]]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        self.stream.write(text.getvalue().encode())


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return _dumps(value)
    return "" if value is None else value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _guarded_cell(value: Any) -> Any:
    value = _cell(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


class ParquetWriter(RecordWriter):
    """Parquet through pyarrow (``pip install 'airflow-provider-sage200[parquet]'``); nested values as JSON text;
    column types from the catalogue when given (:mod:`airflow_provider_sage200.columns`), else from the first page."""

    typed_columns = True

    def __init__(self, stream: IO[bytes], typed: Columns | None = None) -> None:
        super().__init__(stream)
        import pyarrow  # noqa: F401  (checked in open_writer)

        self.writer = None
        self.schema = None
        self.typed = typed

    def write_page(self, page: Page) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not page:
            return
        rows = [{k: _dumps(v) if isinstance(v, dict | list) else v for k, v in r.items()} for r in page]
        if self.typed is not None:
            if self.writer is None:
                self.typed.extend_with(key for row in rows for key in row)
            elif any(row.keys() - self.typed.types.keys() for row in rows):
                extra = sorted({key for row in rows for key in row} - self.typed.types.keys())
                raise Sage200ConfigError(
                    f"Parquet output: a record has fields {extra} that neither the catalogue nor the first page "
                    "had, so they have no column; use output_format='jsonl'."
                )
            table = self.typed.arrow_table(rows)
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.stream, table.schema)
            self.writer.write_table(table)
            return
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


OUTPUT_FORMATS = tuple(_WRITERS)


def check_format_name(output_format: str) -> str:
    """Raise :class:`Sage200ConfigError` unless ``output_format`` names a writer (cheap: for DAG parse time)."""
    if output_format not in _WRITERS:
        raise Sage200ConfigError(
            f"output_format {output_format!r} is not supported; use one of {', '.join(OUTPUT_FORMATS)}."
        )
    return output_format


def check_output_format(output_format: str) -> str:
    """:func:`check_format_name`, and that the writer's optional dependency is installed."""
    check_format_name(output_format)
    if output_format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise Sage200ConfigError(
                "output_format='parquet' needs pyarrow: pip install 'airflow-provider-sage200[parquet]' "
                "(or use 'jsonl')."
            ) from None
    return output_format


# A temporary file untouched for this long belongs to an export that was killed (a running export writes every
# page, and gives up retrying after [sage200] max_retry_seconds, 300 by default).
STALE_TEMPORARY_SECONDS = 3600.0


class AtomicExport:
    """Context manager: write pages to ``.<name>.<random>.tmp`` beside ``destination``, move it there on success.

    :param destination: where the finished file must appear (any ``ObjectStoragePath``).
    :param output_format: one of :data:`OUTPUT_FORMATS`.
    :param csv_formula_guard: for ``csv``, escape cells a spreadsheet would run as formulas (see
        :class:`CsvWriter`).
    """

    def __init__(
        self,
        destination: ObjectStoragePath,
        output_format: str,
        typed: Columns | None = None,
        *,
        csv_formula_guard: bool = True,
    ) -> None:
        self.destination = destination
        self.typed = typed
        self.output_format = check_output_format(output_format)
        self.csv_formula_guard = csv_formula_guard
        self.temporary = destination.parent / f".{destination.name}.{uuid.uuid4().hex[:8]}.tmp"
        self.bytes = 0
        self._stream: IO[bytes] | None = None
        self._writer: RecordWriter | None = None

    def __enter__(self) -> AtomicExport:
        try:
            self.destination.parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temporaries()
            self._stream = self.temporary.open("wb")
        except OSError as exc:
            raise Sage200ConfigError(
                f"Cannot write to output location {str(self.destination.parent)!r}: {exc.strerror or exc}."
            ) from None
        writer = _WRITERS[self.output_format]
        if writer is CsvWriter:
            self._writer = CsvWriter(self._stream, self.typed, formula_guard=self.csv_formula_guard)
        elif writer.typed_columns:
            self._writer = writer(self._stream, self.typed)
        else:
            self._writer = writer(self._stream)
        return self

    def _remove_stale_temporaries(self) -> None:
        """Remove temporary files of this destination that a killed export left (best effort)."""
        cutoff = time.time() - STALE_TEMPORARY_SECONDS
        for path in self.destination.parent.glob(f".{glob_escape(self.destination.name)}.*.tmp"):
            with contextlib.suppress(OSError, AttributeError, TypeError, ValueError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

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
                _sync_file(self._stream)
            else:
                # Finished into the discarded file all the same: pyarrow's writer would otherwise write its footer
                # when garbage-collected, to the closed stream. The export's own exception is what is raised.
                with contextlib.suppress(Exception):
                    self._writer.close()
            self._stream.close()
            if exc_type is None:
                self.bytes = self.temporary.stat().st_size
                self.temporary.rename(self.destination)
                _sync_directory(self.destination)
        finally:
            if self.temporary.exists():
                self.temporary.unlink()


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _local_path(path: ObjectStoragePath) -> str | None:
    return path.path if getattr(path, "protocol", "file") in ("file", "local", "") else None


def _sync_file(stream: IO[bytes]) -> None:
    """Put the written bytes on disk before the rename makes them the destination (local files only)."""
    stream.flush()
    with contextlib.suppress(AttributeError, io.UnsupportedOperation, OSError):
        os.fsync(stream.fileno())


def _sync_directory(destination: ObjectStoragePath) -> None:
    """Make the rename itself durable: fsync the directory that holds the destination (local files only)."""
    local = _local_path(destination)
    if local is None:
        return
    fd = os.open(os.path.dirname(local) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
