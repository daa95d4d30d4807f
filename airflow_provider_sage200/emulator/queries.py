"""Run a Sage 200 collection query (``$filter $select $orderby $top $skip $count $expand``) over a dataset."""

from __future__ import annotations

from typing import Any

from airflow_provider_sage200.emulator.data import ENUMS, EXPANDS, SCHEMAS, Dataset
from airflow_provider_sage200.emulator.odata import (
    DATETIME,
    LIST,
    ODataError,
    compile_filter,
    id_bounds,
    only_bounds,
    parse_filter,
    to_timestamp,
)

Record = dict[str, Any]
COLLECTION_OPTIONS = {"$filter", "$select", "$orderby", "$top", "$skip", "$count", "$expand", "$metadata"}
RECORD_OPTIONS = {"$select", "$expand", "$metadata"}


def _int_option(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ODataError(f"{name} must be a non-negative integer, got {raw!r}") from None
    if value < 0:
        raise ODataError(f"{name} must be a non-negative integer, got {raw!r}")
    return value


def check_options(params: dict[str, str], allowed: set[str], where: str) -> None:
    for key in params:
        if key.startswith("$") and key not in allowed:
            raise ODataError(
                f"Query option {key!r} is not supported {where}; supported: {', '.join(sorted(allowed))}"
            )


def expand_list(resource: str, params: dict[str, str]) -> list[str]:
    raw = params.get("$expand")
    if not raw:
        return []
    relations = [r.strip() for r in raw.split(",") if r.strip()]
    for relation in relations:
        if relation not in EXPANDS.get(resource, ()):
            allowed = ", ".join(EXPANDS.get(resource, ())) or "none"
            raise ODataError(f"$expand: {relation!r} is not a relation of {resource}; expandable: {allowed}")
    return relations


def shape(resource: str, record: Record, dataset: Dataset, params: dict[str, str]) -> Record:
    """Apply ``$expand`` then ``$select`` to one record."""
    relations = expand_list(resource, params)
    out = dict(record)
    for relation in relations:
        if relation == "customer":
            out["customer"] = dataset.get("customers", record["customer_id"])
        elif relation == "contacts":
            out["contacts"] = dataset.contacts(record["id"])
    select = params.get("$select")
    if not select:
        return out
    chosen: Record = {}
    for path in (p.strip() for p in select.split(",") if p.strip()):
        head, _, child = path.partition(".")
        if head not in SCHEMAS[resource] and head not in relations:
            raise ODataError(f"$select: unknown field {path!r} for {resource}")
        if child:
            if head not in relations:
                raise ODataError(f"$select: {path!r} needs $expand={head}")
            parent = out.get(head) or {}
            chosen.setdefault(head, {})[child] = parent.get(child) if isinstance(parent, dict) else None
        else:
            chosen[head] = out.get(head)
    return chosen


def parse_orderby(params: dict[str, str], schema: dict[str, str], resource: str) -> tuple[str, bool] | None:
    """``$orderby`` as (field, descending), or ``None`` when absent; one scalar field of ``schema`` only."""
    if "$orderby" not in params:
        return None
    parts = params["$orderby"].split()
    if not parts or len(parts) > 2 or "," in params["$orderby"]:
        raise ODataError("$orderby takes one field, optionally followed by asc or desc")
    if parts[0] not in schema or schema[parts[0]] == LIST:
        raise ODataError(f"$orderby: unknown field {parts[0]!r} for {resource}")
    if len(parts) == 2 and parts[1].lower() not in ("asc", "desc"):
        raise ODataError(f"$orderby: direction must be asc or desc, got {parts[1]!r}")
    return parts[0], len(parts) == 2 and parts[1].lower() == "desc"


def parse_window(
    params: dict[str, str], max_top: int, default_top: int, top_over_max: str
) -> tuple[int, int]:
    """``($skip, $top)``: ``$skip`` needs ``$orderby``; ``$top`` above ``max_top`` is an error (or clamped)."""
    skip = 0
    if "$skip" in params:
        if "$orderby" not in params:
            raise ODataError("$skip requires $orderby: paging without an explicit order is not supported")
        skip = _int_option("$skip", params["$skip"])
    top = default_top
    if "$top" in params:
        top = _int_option("$top", params["$top"])
        if top > max_top:
            if top_over_max != "clamp":
                raise ODataError(f"$top must not exceed {max_top}; got {top}")
            top = max_top
    return skip, top


def run_collection(resource: str, dataset: Dataset, params: dict[str, str], max_top: int, default_top: int,
                   top_over_max: str) -> Any:  # fmt: skip
    """Return the page (a list) or, with ``$count=true``, the number of matching records."""
    check_options(params, COLLECTION_OPTIONS, "on collections")
    schema = SCHEMAS[resource]
    predicate = lambda record: True  # noqa: E731
    id_lo, id_hi, base_lo, base_hi = float("-inf"), float("inf"), float("-inf"), float("inf")
    if params.get("$filter"):
        tree = parse_filter(params["$filter"])
        id_lo, id_hi = id_bounds(tree, "id")
        if not only_bounds(tree, "id"):  # else the id range alone decides, and the scan is exact
            predicate = compile_filter(tree, schema, ENUMS)
        updated_lo, updated_hi = id_bounds(tree, "date_time_updated")
        base_lo, base_hi = dataset.id_range_for_updated(resource, updated_lo, updated_hi)
    expand_list(resource, params)
    if params.get("$count", "").lower() == "true":
        return sum(1 for r in dataset.scan(resource, id_lo, id_hi, base_lo, base_hi) if predicate(r))
    order_field, descending = parse_orderby(params, schema, resource) or ("id", False)
    skip, top = parse_window(params, max_top, default_top, top_over_max)
    if order_field == "id":
        if not descending and skip and not params.get("$filter"):
            # Unfiltered ids are dense, so an offset is an id: no need to generate the skipped records.
            id_lo, skip = dataset.skip_ahead(resource, skip)
        scan = dataset.scan_descending if descending else dataset.scan
        matches = (r for r in scan(resource, id_lo, id_hi, base_lo, base_hi) if predicate(r))
        page: list[Record] = []
        for record in matches:
            if skip:
                skip -= 1
                continue
            if len(page) >= top:
                break
            page.append(record)
    else:
        matches = (r for r in dataset.scan(resource, id_lo, id_hi, base_lo, base_hi) if predicate(r))
        key = schema[order_field]

        def sort_key(record: Record) -> Any:
            value = record.get(order_field)
            if key == DATETIME and value:
                value = to_timestamp(value)
            return (value is None, value if value is not None else 0, record["id"])

        page = sorted(matches, key=sort_key, reverse=descending)[skip : skip + top]
    if not params.get("$expand") and not params.get("$select"):
        return page  # encoded as they are, never modified
    return [shape(resource, r, dataset, params) for r in page]
