"""Typed columns for CSV and Parquet exports, from the resource catalogue rather than the first page.

The columns are the catalogue's fields of the resource, in its order. A field Sage returns that the catalogue
lacks (a newer Sage) is kept as a string column after them, with a warning naming it; a catalogue field no record
carries is an empty column. Parquet types: ``int`` -> int64, ``decimal`` -> float64, ``bool`` -> bool,
``datetime`` -> timestamp (ms, UTC), ``str`` -> string, ``object``/``array`` -> string (JSON text).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)


class Columns:
    """The columns of one export: the catalogue's fields, then any unknown ones from the first page."""

    def __init__(self, fields: Mapping[str, str], endpoint: str) -> None:
        self.types = dict(fields)
        self.endpoint = endpoint

    def extend_with(self, names: Iterable[str]) -> list[str]:
        """Add fields the catalogue lacks (as strings, warned about); return the column names."""
        unknown = [name for name in dict.fromkeys(names) if name not in self.types]
        if unknown:
            log.warning(
                "%s returned fields the catalogue lacks, written as text columns: %s (run `make catalogue` "
                "with a newer OpenAPI description to type them)",
                self.endpoint,
                ", ".join(unknown),
            )
            self.types.update(dict.fromkeys(unknown, "str"))
        return list(self.types)

    def arrow_schema(self):
        import pyarrow as pa

        kinds = {"int": pa.int64(), "decimal": pa.float64(), "bool": pa.bool_(), "datetime": pa.string()}
        return pa.schema([pa.field(name, kinds.get(kind, pa.string())) for name, kind in self.types.items()])

    def arrow_table(self, rows: list[dict]):
        """``rows`` as a table of :meth:`arrow_schema`, datetimes cast from Sage's ISO text to UTC timestamps."""
        import pyarrow as pa

        text = {name for name, kind in self.types.items() if kind in ("str", "object", "array")}
        rows = [
            {
                k: str(v) if k in text and v is not None and not isinstance(v, str) else v
                for k, v in row.items()
            }
            for row in rows
        ]
        table = pa.Table.from_pylist(rows, schema=self.arrow_schema())
        for index, (name, kind) in enumerate(self.types.items()):
            if kind == "datetime":
                values = pa.array([_utc_text(v) for v in table.column(index).to_pylist()], pa.string())
                try:
                    stamps = values.cast(pa.timestamp("ms", tz="UTC"))
                except pa.ArrowInvalid as exc:
                    from airflow_provider_sage200.exceptions import Sage200Error

                    raise Sage200Error(
                        f"{self.endpoint} returned a {name!r} that is not an ISO 8601 date-time ({exc}); "
                        "use output_format='jsonl' to keep it as text."
                    ) from None
                table = table.set_column(index, name, stamps)
        return table


def _utc_text(value: str | None) -> str | None:
    """Sage's date-times as UTC text pyarrow can cast: a bare date is midnight, no zone means UTC."""
    if value is None:
        return None
    if len(value) == 10:
        return f"{value}T00:00:00Z"
    if value.endswith("Z") or "+" in value[10:] or value[10:].count("-"):
        return value
    return f"{value}Z"
