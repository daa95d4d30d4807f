"""Checks and paging for Sage 200 endpoints and OData query options (pure functions, no I/O).

Everything here runs before a request is sent, so a wrong option is reported with the option's name and
what would be right, and nothing reaches Sage.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import Any

import msgspec

from airflow_provider_sage200.exceptions import Sage200ConfigError, Sage200ServerError
from airflow_provider_sage200.resources import resource_or_unknown

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


def uses_key_paging(query: Mapping[str, str], key: str | None = "id") -> bool:
    """Key paging (``<key> gt <last>``) applies to a resource with an integer key, unless the caller chose
    another order or an offset."""
    if key is None:
        return False
    orderby = " ".join(query.get("$orderby", "").split()).lower()
    return "$skip" not in query and orderby in ("", key.lower(), f"{key.lower()} asc")


def paging_key(endpoint: str) -> str | None:
    """The integer key ``endpoint`` is read by (``id``, a view's own key such as ``sop_allocation_line_id``, or
    ``id`` for a resource the catalogue lacks); ``None`` when it has none (then it is offset paged)."""
    resource = resource_or_unknown(endpoint)
    return resource.paging_key() if resource.integer_key else None


def paging_mode(endpoint: str, query: Mapping[str, str], max_concurrency: int = 1) -> str:
    """How a read of ``endpoint`` with ``query`` pages: ``record`` (one record), ``offset`` (``$skip``),
    ``key`` (``<key> gt <last>``, one page after another) or ``key_ranges`` (key ranges read concurrently)."""
    if is_record_path(endpoint):
        return "record"
    if not uses_key_paging(query, paging_key(endpoint)):
        return "offset"
    return "key_ranges" if max_concurrency > 1 and "$top" not in query else "key"


def with_key(query: Mapping[str, str], key: str) -> dict[str, str]:
    """``query`` with ``key`` added to its ``$select`` (a key-paged read needs every record's key)."""
    out = dict(query)
    select = out.get("$select")
    if select and key not in [s.strip() for s in select.split(",")]:
        out["$select"] = f"{select},{key}"
    return out


def iter_pages(
    fetch: Callable[[dict[str, str]], Page],
    query: Mapping[str, str],
    page_size: int = DEFAULT_PAGE_SIZE,
    *,
    endpoint: str = "collection",
    after: int | None = None,
    key: str | None = "id",
) -> Iterator[Page]:
    """Yield the pages of a collection, asking ``fetch(params)`` for each.

    By default pages are read by key: ``$orderby=<key>``, ``$filter=(<yours>) and <key> gt <last key>``,
    ``$top=page_size``. Unlike ``$skip``, this cannot skip or repeat a record when records change while
    the export runs. When the caller sets ``$orderby`` (another field) or ``$skip``, offset paging is used:
    same order, ``$skip`` advancing by the records that arrived. A caller's ``$top`` caps the total.

    The server is not trusted (:class:`PageCheck`): every page is checked, and a page shorter than asked ends
    the read only once a full page of at least that size has proven the server honours ``$top`` (older Sage 200
    Professional builds silently cap it); otherwise the read goes on until an empty page.

    :param endpoint: named in errors.
    :param after: key paging only: start after this key.
    :param key: the integer key to page by (:func:`paging_key`); ``None`` pages by offset.
    """
    query = dict(query)
    limit = int(query.pop("$top")) if "$top" in query else None
    query.pop("$count", None)
    key_paging = key is not None and uses_key_paging(query, key)
    if key is not None and key_paging:
        query = with_key(query, key) | {"$orderby": key}
    skip = int(query.pop("$skip", 0))
    user_filter = query.get("$filter")
    check = PageCheck(endpoint, key=key or "id")
    remaining = limit
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        params = dict(query, **{"$top": str(size)})
        if key_paging:
            key_filter = None if after is None else f"{key} gt {after}"
            combined = and_filters(user_filter, key_filter)
            if combined:
                params["$filter"] = combined
        elif skip:
            params["$skip"] = str(skip)
        page = fetch(params)
        ids = check.key_page(page, size, after) if key_paging else check.offset_page(page, size, skip)
        if not page:
            return
        yield page
        if check.proves_end(page, size):
            return
        if remaining is not None:
            remaining -= len(page)
        if key_paging:
            after = ids[-1]
        else:
            skip += len(page)


@cache
def _key_decoder(key: str) -> msgspec.json.Decoder:
    """Decodes only ``key`` of a record's JSON text (the rest is skipped, not built)."""
    return msgspec.json.Decoder(msgspec.defstruct("_Key", [(key, Any, None)]))


# A collection page with each record left as its JSON text: validated and split, not built into dicts.
RAW_RECORDS = msgspec.json.Decoder(list[msgspec.Raw])


def _bad_page(endpoint: str, message: str) -> Sage200ServerError:
    return Sage200ServerError(
        f"{message}; nothing was written (the server does not behave as Sage 200 does)",
        method="GET",
        endpoint=endpoint,
    )


class PageCheck:
    """What every page of one read must satisfy; raises :class:`Sage200ServerError` naming what is wrong.

    Records are JSON objects; a page holds no more records than ``$top`` asked for; with key paging, keys are
    whole numbers strictly increasing past the previous page's last key and inside the range asked for (a server
    that ignores ``$filter``, answers keys going down or repeats the boundary record would otherwise loop forever
    or export duplicates). ``honoured`` is the largest ``$top`` a full page has proven the server honours.
    """

    def __init__(self, endpoint: str, honoured: int = 0, *, key: str = "id") -> None:
        self.endpoint = endpoint
        self.honoured = honoured
        self.key = key
        self._previous_ids: frozenset[int] = frozenset()

    def proves_end(self, page: Page, asked: int) -> bool:
        """Whether no record can follow ``page``: it is short, and the server is known to honour ``asked``."""
        if len(page) >= asked:
            self.honoured = max(self.honoured, asked)
            return False
        return asked <= self.honoured

    def key_page(self, page: Page, asked: int, after: int | None, end: int | None = None) -> list[int]:
        """Check a key-paged page (``<key> gt after`` [``and <key> lt end``]) and return its keys."""
        self._shape(page, asked)
        key = self.key
        ids = page_ids(page, key)
        previous = after
        for index, value in enumerate(ids):
            if previous is not None and value <= previous:
                where = (
                    f"{key} {value} is not after the previous page's last {key} {after}"
                    if index == 0
                    else f"{key}s are not in increasing order ({previous} then {value})"
                )
                asked_for = (
                    f"records in {key} order"
                    if after is None
                    else f"records with {key} > {after} in {key} order"
                )
                raise _bad_page(self.endpoint, f"asked for {asked_for}, but {where}")
            previous = value
        if end is not None and ids and ids[-1] >= end:
            raise _bad_page(
                self.endpoint,
                f"{key} {ids[-1]} is outside the range asked for ({key} > {after} and {key} < {end}): the server "
                "ignores $filter",
            )
        return ids

    def offset_page(self, page: Page, asked: int, skip: int) -> list[int] | None:
        """Check an offset-paged page; a page repeating the previous page's records means ``$skip`` is ignored."""
        self._shape(page, asked)
        try:
            ids = frozenset(page_ids(page, self.key))
        except Sage200ConfigError:
            return None
        if ids and ids & self._previous_ids:
            raise _bad_page(
                self.endpoint,
                f"$skip={skip} answered records already read (ids {sorted(ids & self._previous_ids)[:3]}…): the "
                "server ignores $skip",
            )
        self._previous_ids = ids
        return None

    def _shape(self, page: Page, asked: int) -> None:
        if len(page) > asked:
            raise _bad_page(self.endpoint, f"the server returned {len(page)} records for $top={asked}")
        for index, record in enumerate(page, 1):
            if isinstance(record, msgspec.Raw):
                if memoryview(record)[:1].tobytes() != b"{":
                    kind = type(msgspec.json.decode(record)).__name__
                    raise _bad_page(
                        self.endpoint, f"record {index} of the page is a {kind}, not a JSON object"
                    )
                _check_utf8(record, f"record {index} of the page", "the record", self.endpoint)
            elif not isinstance(record, dict):
                raise _bad_page(
                    self.endpoint,
                    f"record {index} of the page is a {type(record).__name__}, not a JSON object",
                )


def _check_utf8(data: msgspec.Raw | bytes, what: str, of: str, endpoint: str) -> None:
    try:
        codecs.utf_8_decode(data, "strict", True)
    except UnicodeDecodeError as exc:
        raise _bad_page(
            endpoint,
            f"{what} is not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start} of {of}): "
            "Sage 200 sends UTF-8, so the body is corrupt or not from the Sage 200 API",
        ) from None


def check_utf8(body: bytes, endpoint: str) -> None:
    """Raise a :class:`Sage200ServerError` (never retried) when a body that failed to decode is not UTF-8,
    naming the record when it is a page: a bad byte is not a body cut short, and reading it again cannot help."""
    try:
        records = RAW_RECORDS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        _check_utf8(body, "the response", "the body", endpoint)
        return
    for index, record in enumerate(records, 1):
        _check_utf8(record, f"record {index} of the page", "the record", endpoint)


def page_ids(page: Page, key: str = "id") -> list[int]:
    """The ``key`` of every record, in order (:class:`Sage200ConfigError` when one has no whole-number key)."""
    decoder = _key_decoder(key)
    ids = []
    for record in page:
        value = getattr(decoder.decode(record), key) if isinstance(record, msgspec.Raw) else record.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise Sage200ConfigError(
                f"Key paging needs a numeric {key!r} on every record, and this resource returned none; set "
                "query={'$orderby': '<field>'} to page by offset instead."
            )
        ids.append(value)
    return ids


def last_id(page: Page, key: str = "id") -> int:
    return page_ids(page[-1:], key)[0]


def record_count(value: Any, endpoint: str) -> int:
    """Check the answer to ``$count=true``: a whole number, 0 or more."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        shown = type(value).__name__ if not isinstance(value, int) else repr(value)
        raise Sage200ServerError(
            f"$count=true must answer a number of records, got {shown}", method="GET", endpoint=endpoint
        )
    return value
