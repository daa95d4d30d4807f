"""Every other resource of the catalogue (:mod:`airflow_provider_sage200.resources`), served from its field types.

The four hand-modelled resources (``sop_orders``, ``customers``, ``products``, ``warehouses``, in :mod:`.data`)
keep their own generators and fast paths. Every other collection gets ``catalogue_records`` records per company,
each a pure function of (seed, company, resource, position) built on first read: the key (``id`` or the view's own
key) is the position, ``date_time_created``/``date_time_updated`` grow with it as in :mod:`.data`, a nested
collection's link field points at parents ``1..catalogue_records``, and every other field gets a value of its
type. Writes live in an overrides layer. The OData rules are those of :mod:`.queries`: ``$skip`` needs
``$orderby``, ``$top`` at most ``max_top``, unknown fields and options rejected.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from airflow_provider_sage200.emulator.data import Record, iso
from airflow_provider_sage200.emulator.odata import (
    BOOL,
    DATETIME,
    FLOAT,
    INT,
    LIST,
    STR,
    ODataError,
    compile_filter,
    parse_filter,
    to_timestamp,
)
from airflow_provider_sage200.emulator.queries import (
    COLLECTION_OPTIONS,
    check_options,
    parse_orderby,
    parse_window,
)
from airflow_provider_sage200.resources import Resource

ODATA_TYPES = {"int": INT, "decimal": FLOAT, "str": STR, "datetime": DATETIME, "bool": BOOL}
_WORDS = ("North", "Central", "Main", "Export", "Retail", "Trade", "Stock", "Service")


def odata_schema(fields: dict[str, str]) -> dict[str, str]:
    return {name: ODATA_TYPES.get(kind, LIST) for name, kind in fields.items()}


class CatalogueStore:
    """The catalogue-modelled resources of one company on one edition's view of them."""

    def __init__(self, seed: int, company_id: int, size: int, start: float, end: float) -> None:
        self.seed, self.company_id, self.size = seed, company_id, size
        self.start, self.end = start, end
        self.records: dict[str, list[Record | None]] = {}  # path -> records in position order (None: deleted)

    def all(self, resource: Resource) -> list[Record]:
        return [r for r in self._records(resource) if r is not None]

    def _records(self, resource: Resource) -> list[Record | None]:
        if resource.path not in self.records:
            self.records[resource.path] = [self._build(resource, n) for n in range(1, self.size + 1)]
        return self.records[resource.path]

    def find(self, resource: Resource, key_value: int) -> Record | None:
        return next((r for r in self.all(resource) if r.get(resource.key or "id") == key_value), None)

    def create(self, resource: Resource, body: Record, now: float) -> Record:
        records = self._records(resource)
        record = {name: None for name in resource.fields} | body
        if resource.key:
            record[resource.key] = len(records) + 1
        for stamp in ("date_time_created", "date_time_updated"):
            if stamp in resource.fields:
                record[stamp] = iso(now)
        records.append(record)
        return record

    def replace(self, resource: Resource, old: Record, new: Record | None) -> None:
        records = self._records(resource)
        records[records.index(old)] = new

    def _build(self, resource: Resource, position: int) -> Record:
        rng = random.Random(f"{self.seed}:{self.company_id}:{resource.path}:{position}")
        spacing = (self.end - self.start) / self.size
        created = self.start + (position - 1) * spacing
        record: Record = {}
        for name, kind in resource.fields.items():
            if name in (resource.key, "id"):
                value: Any = position
            elif name == resource.parent_link:
                value = (position - 1) % self.size + 1
            elif name == "date_time_created":
                value = iso(created)
            elif name == "date_time_updated":
                value = iso(created + rng.random() * spacing * 0.9)
            else:
                value = _value(kind, name, rng, created)
            record[name] = value
        return record


def _value(kind: str, name: str, rng: random.Random, created: float) -> Any:
    if kind == "int":
        return rng.randint(1, 50)
    if kind == "decimal":
        return round(rng.uniform(-500, 5000), 2)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "datetime":
        return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT00:00:00Z")
    if kind == "object":
        return {}
    if kind == "array":
        return []
    return f"{rng.choice(_WORDS)} {name.replace('_', ' ')} {rng.randint(1, 999)}"


def run_query(
    resource: Resource,
    records: list[Record],
    fields: dict[str, str],
    params: dict[str, str],
    max_top: int,
    default_top: int,
    top_over_max: str,
) -> Any:
    """A collection query over ``records`` (in position order): the page, or the count with ``$count=true``."""
    check_options(params, COLLECTION_OPTIONS, "on collections")
    schema = odata_schema(fields)
    if params.get("$expand"):
        raise ODataError(f"$expand: {resource.path} has no expandable relations")
    predicate: Callable[[Record], bool] = lambda record: True  # noqa: E731
    if params.get("$filter"):
        predicate = compile_filter(parse_filter(params["$filter"]), schema, {})
    matches = [r for r in records if predicate(r)]
    if params.get("$count", "").lower() == "true":
        return len(matches)
    order = parse_orderby(params, schema, resource.path)
    if order is not None:
        field, descending = order
        kind = schema[field]

        def sort_key(record: Record) -> Any:
            value = record.get(field)
            if kind == DATETIME and value:
                value = to_timestamp(value)
            return (value is None, value if value is not None else 0)

        # A stable sort: records that tie keep their stored order, as a clustered index would give them.
        matches.sort(key=sort_key, reverse=descending)
    skip, top = parse_window(params, max_top, default_top, top_over_max)
    page = matches[skip : skip + top]
    if params.get("$select"):
        names = [p.strip() for p in params["$select"].split(",") if p.strip()]
        for name in names:
            if name not in fields:
                raise ODataError(f"$select: unknown field {name!r} for {resource.path}")
        page = [{name: r.get(name) for name in names} for r in page]
    elif len(fields) != len(resource.fields):
        page = [{name: r.get(name) for name in fields} for r in page]
    return page
