"""Checks and paging for Sage 200 endpoints and OData query options (pure functions, no I/O).

Everything here runs before a request is sent, so a wrong option is reported with the option's name and
what would be right, and nothing reaches Sage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec

from airflow_provider_sage200.exceptions import Sage200ConfigError

MAX_TOP = 5000
DEFAULT_PAGE_SIZE = 500
ODATA_OPTIONS = ("$filter", "$select", "$orderby", "$expand", "$top", "$skip", "$count")

_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+"
_ENDPOINT = re.compile(rf"^(?:{_SEGMENT})(?:/(?:{_SEGMENT}))*$")
_ORDERBY = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)(?:\s+(asc|desc))?$", re.IGNORECASE)

# Records are dicts, or their undecoded JSON text (msgspec.Raw) when a writer passes JSON straight through.
Page = list[dict[str, Any]] | list[msgspec.Raw]


def validate_endpoint(endpoint: str) -> str:
    """Return ``endpoint`` if it is a path relative to the API base URL, else explain what is wrong.

    Accepted: a collection (``sop_orders``), a record (``sop_orders/123``) or a nested path
    (``customers/7/sop_orders``).
    """
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise Sage200ConfigError("endpoint is empty; give a Sage 200 resource such as 'sop_orders'.")
    if "://" in endpoint:
        raise Sage200ConfigError(
            f"endpoint {endpoint!r} is a full URL; give the path relative to the API base URL (e.g. "
            "'sop_orders'). The base URL comes from the connection's edition or api_url."
        )
    if endpoint.startswith("/"):
        raise Sage200ConfigError(
            f"endpoint {endpoint!r} starts with '/'; write it without the leading slash, e.g. "
            f"{endpoint.lstrip('/')!r}."
        )
    if ".." in endpoint.split("/"):
        raise Sage200ConfigError(
            f"endpoint {endpoint!r} contains '..'; only plain resource paths are allowed."
        )
    if "?" in endpoint or "#" in endpoint:
        raise Sage200ConfigError(
            f"endpoint {endpoint!r} contains a query string; pass OData options in `query` instead."
        )
    if not _ENDPOINT.match(endpoint):
        raise Sage200ConfigError(
            f"endpoint {endpoint!r} is not a Sage 200 resource path: use letters, digits and '_' separated "
            "by '/', without spaces (e.g. 'customers/7/sop_orders')."
        )
    return endpoint


def is_record_path(endpoint: str) -> bool:
    """True when ``endpoint`` names one record (its last segment is an id)."""
    return endpoint.rsplit("/", 1)[-1].isdigit()


def validate_query(query: Mapping[str, Any] | None) -> dict[str, str]:
    """Check OData options and return them as strings ready for the URL (requests URL-encodes them)."""
    if not query:
        return {}
    if not isinstance(query, Mapping):
        raise Sage200ConfigError(f"query must be a dict of OData options, got {type(query).__name__}.")
    out: dict[str, str] = {}
    for key, value in query.items():
        if key not in ODATA_OPTIONS:
            hint = f" Did you mean '${key}'?" if f"${key}" in ODATA_OPTIONS else ""
            raise Sage200ConfigError(
                f"Unknown OData option {key!r} in query.{hint} Sage 200 accepts: {', '.join(ODATA_OPTIONS)}."
            )
        if value is None:
            continue
        if key in ("$top", "$skip"):
            out[key] = str(_non_negative_int(key, value))
        elif key == "$count":
            if value not in (True, "true", "True"):
                raise Sage200ConfigError(
                    "$count only takes true (it makes Sage return the number of records)."
                )
            out[key] = "true"
        elif isinstance(value, list | tuple):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    if "$top" in out and not 1 <= int(out["$top"]) <= MAX_TOP:
        raise Sage200ConfigError(
            f"$top is {out['$top']}; Sage 200 returns at most {MAX_TOP} records per request (use 1-{MAX_TOP})."
        )
    if "$skip" in out and "$orderby" not in out:
        raise Sage200ConfigError(
            "$skip needs $orderby: Sage 200 rejects offset paging without an explicit order "
            "(e.g. {'$orderby': 'id', '$skip': 500})."
        )
    if "$orderby" in out and not _ORDERBY.match(out["$orderby"].strip()):
        raise Sage200ConfigError(
            f"$orderby is {out['$orderby']!r}; Sage 200 orders by one field: 'field' or 'field asc|desc'."
        )
    return out


def validate_page_size(page_size: int) -> int:
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_TOP:
        raise Sage200ConfigError(f"page_size is {page_size!r}; use an integer from 1 to {MAX_TOP}.")
    return page_size


def _non_negative_int(key: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or (isinstance(value, float) and not value.is_integer()):
        raise Sage200ConfigError(f"{key} is {value!r}; it must be a whole number, 0 or more.")
    return number


def and_filters(*filters: str | None) -> str | None:
    """Join ``$filter`` expressions with ``and``, each parenthesised; ``None`` when there are none."""
    from airflow_provider_sage200.odata import and_

    parts = [f.strip() for f in filters if f and f.strip()]
    return and_(*parts) if parts else None


def uses_key_paging(query: Mapping[str, str]) -> bool:
    """Key paging (``id gt <last>``) applies unless the caller chose an order or an offset."""
    orderby = query.get("$orderby", "").strip().lower()
    return "$skip" not in query and orderby in ("", "id", "id asc")


def iter_pages(
    fetch: Callable[[dict[str, str]], Page],
    query: Mapping[str, str],
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Iterator[Page]:
    """Yield the pages of a collection, asking ``fetch(params)`` for each.

    By default pages are read by key: ``$orderby=id``, ``$filter=(<yours>) and id gt <last id>``,
    ``$top=page_size``. Unlike ``$skip``, this cannot skip or repeat a record when records change while
    the export runs. When the caller sets ``$orderby`` (another field) or ``$skip``, offset paging is used:
    same order, ``$skip`` advancing by the page size. A caller's ``$top`` caps the total.
    """
    query = dict(query)
    limit = int(query.pop("$top")) if "$top" in query else None
    query.pop("$count", None)
    key_paging = uses_key_paging(query)
    if key_paging:
        query["$orderby"] = "id"
        select = query.get("$select")
        if select and "id" not in [s.strip() for s in select.split(",")]:
            query["$select"] = f"{select},id"
    skip = int(query.pop("$skip", 0))
    user_filter = query.get("$filter")
    after: int | None = None
    remaining = limit
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        params = dict(query, **{"$top": str(size)})
        if key_paging:
            key_filter = None if after is None else f"id gt {after}"
            combined = and_filters(user_filter, key_filter)
            if combined:
                params["$filter"] = combined
        elif skip:
            params["$skip"] = str(skip)
        page = fetch(params)
        if page:
            yield page
        if len(page) < size:
            return
        if remaining is not None:
            remaining -= len(page)
        if key_paging:
            after = last_id(page)
        else:
            skip += len(page)


def last_id(page: Page) -> int:
    record = page[-1]
    if isinstance(record, msgspec.Raw):
        record = msgspec.json.decode(record)
    value = record.get("id") if isinstance(record, dict) else None
    if not isinstance(value, int):
        raise Sage200ConfigError(
            "Key paging needs a numeric 'id' on every record, and this resource returned none; set "
            "query={'$orderby': '<field>'} to page by offset instead."
        )
    return value
