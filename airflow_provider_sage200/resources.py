"""The Sage 200 resource catalogue: what each resource is keyed, dated and typed by (pure, no I/O).

The data is generated from Sage's OpenAPI description by ``scripts/generate_catalogue.py`` into
:mod:`airflow_provider_sage200.catalogue_data`, which is imported on first use only (not when a DAG file is
parsed). A resource the catalogue does not know (a newer Sage) gets :data:`UNKNOWN`'s behaviour: paged by ``id``,
no field checks.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

FIELD_TYPES = ("int", "decimal", "str", "datetime", "bool", "object", "array")
# What a $filter expression contains besides field names.
_FILTER_WORDS = {
    "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "true", "false", "null", "asc", "desc",
    "add", "sub", "mul", "div", "mod", "datetime", "datetimeoffset", "guid", "time",
}  # fmt: skip
_QUOTED = re.compile(r"[A-Za-z]*'(?:[^']|'')*'")
_NAME = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)\b(\s*\()?")


def _config_error(message: str) -> Exception:
    # Imported here: the emulator reads the catalogue too, and must not import Airflow (exceptions does).
    from airflow_provider_sage200.exceptions import Sage200ConfigError

    return Sage200ConfigError(message)


@dataclass(frozen=True)
class Resource:
    """One collection of the Sage 200 API, as the catalogue describes it.

    :param path: the collection's path template, e.g. ``sop_orders`` or ``customers/{customerId}/sop_orders``.
    :param module: the Sage module (``sop``, ``sales``, ...).
    :param methods: methods on the collection (``GET``, ``POST``).
    :param item_methods: methods on one record (``GET``, ``PUT``, ``DELETE``).
    :param key: the unique key: ``id``, the view's own key (``sop_allocation_line_id``), or ``None``.
    :param incremental: the field to read changes by (``date_time_updated``), or ``None``.
    :param fields: every field and its type (one of :data:`FIELD_TYPES`).
    :param professional_only: the resource exists on Sage 200 Professional only.
    :param professional_fields: fields that exist on Professional only.
    :param post_returns_urn: a POST answers with the posting's ``urn``, not a record with an ``id``.
    :param parent: for a nested collection, the parent collection (``customers``).
    :param parent_link: the field of a nested record that holds its parent's id, where the schema has one.
    """

    path: str
    module: str = ""
    methods: tuple[str, ...] = ("GET",)
    item_methods: tuple[str, ...] = ()
    key: str | None = "id"
    incremental: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    professional_only: bool = False
    professional_fields: tuple[str, ...] = ()
    post_returns_urn: bool = False
    parent: str | None = None
    parent_link: str | None = None

    @property
    def known(self) -> bool:
        """False for a resource the catalogue lacks (then nothing is checked)."""
        return bool(self.fields)

    @property
    def integer_key(self) -> bool:
        return self.key is not None and self.fields.get(self.key, "int") == "int"

    def fields_for(self, edition: str = "professional") -> dict[str, str]:
        """The fields on ``edition`` (``standard`` lacks the Professional-only ones)."""
        if edition == "professional":
            return dict(self.fields)
        return {k: v for k, v in self.fields.items() if k not in self.professional_fields}

    def fields_selected(self, select: str | None) -> dict[str, str]:
        """The fields a ``$select`` (and the paging key added to it) returns, in catalogue order; all without one."""
        if not select:
            return dict(self.fields)
        chosen = {name.strip() for name in select.split(",")} | {self.key or ""}
        return {name: kind for name, kind in self.fields.items() if name in chosen}

    def offset_order(self) -> str:
        """The field offset paging orders by when there is no unique key: the first scalar field."""
        for name, kind in self.fields.items():
            if kind not in ("object", "array"):
                return name
        raise _config_error(f"{self.path} has no field to order by; it cannot be paged.")

    def plan_paging(self, query: dict[str, str]) -> None:
        """Check ``query``'s fields and choose the paging: a resource with an integer key (``id``, a view's own
        key, or ``id`` for an unknown resource) is read by that key; one without a key by offset, ordered by its
        first field (a stable order). The caller's own ``$orderby`` is kept."""
        self.check_fields(query)
        if self.known and not self.integer_key:
            query.setdefault("$orderby", self.offset_order())

    def paging_key(self) -> str | None:
        """The unique key a record is identified by run to run (``None``: the resource has none)."""
        return self.key if self.known else "id"

    def check_fields(self, query: Mapping[str, str]) -> None:
        """Raise :class:`Sage200ConfigError` naming the nearest valid field when ``$select``, ``$filter`` or
        ``$orderby`` names a field this resource lacks (nothing is sent)."""
        if not self.known:
            return
        for option, names in (
            ("$select", [s.strip() for s in query.get("$select", "").split(",") if s.strip()]),
            ("$orderby", query.get("$orderby", "").split()[:1]),
            ("$filter", filter_fields(query.get("$filter", ""))),
        ):
            for name in names:
                head = name.split("/", 1)[0].split(".", 1)[0]
                if head not in self.fields:
                    raise _config_error(
                        f"{option}: {self.path} has no field {head!r}.{nearest(head, self.fields)}"
                    )


UNKNOWN = Resource(path="")


def nearest(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def filter_fields(expression: str) -> list[str]:
    """Field names in an OData ``$filter`` (literals, operators and function names left out)."""
    text = _QUOTED.sub(" ", expression)
    return [
        m.group(1)
        for m in _NAME.finditer(text)
        if not m.group(2)
        and m.group(1).lower() not in _FILTER_WORDS
        and not text[m.start() - 1 : m.start()].isdigit()
    ]


@cache
def _catalogue() -> tuple[dict[str, Resource], list[tuple[re.Pattern[str], Resource]]]:
    from airflow_provider_sage200 import catalogue_data as data

    exact: dict[str, Resource] = {}
    nested: list[tuple[re.Pattern[str], Resource]] = []
    for path, entry in data.RESOURCES.items():
        schema = entry["schema"]
        resource = Resource(
            path=path,
            module=entry["module"],
            methods=tuple(entry["methods"]),
            item_methods=tuple(entry["item_methods"]),
            key=entry["key"],
            incremental=entry["incremental"],
            fields=data.SCHEMAS.get(schema or "", {}),
            professional_only=entry["professional_only"],
            professional_fields=tuple(data.PROFESSIONAL_FIELDS.get(schema or "", ())),
            post_returns_urn=entry["post_returns_urn"],
            parent=entry.get("parent"),
            parent_link=entry.get("parent_link"),
        )
        if "{" in path:
            nested.append(
                (re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$"), resource)
            )
        else:
            exact[path] = resource
    return exact, nested


def get_resource(endpoint: str) -> Resource | None:
    """The catalogue's entry for a collection path (``sop_orders``, ``customers/7/sop_orders``) or a record
    path (``sop_orders/12``); ``None`` when the catalogue has no such resource."""
    path = endpoint.strip("/").split("?", 1)[0]
    exact, nested = _catalogue()
    if path in exact:
        return exact[path]
    for pattern, resource in nested:
        if pattern.match(path):
            return resource
    head, _, tail = path.rpartition("/")
    if head and (tail.isdigit() or tail.startswith("{")):
        return get_resource(head)
    return None


def resource_or_unknown(endpoint: str) -> Resource:
    return get_resource(endpoint) or Resource(path=endpoint)


def resources() -> list[Resource]:
    """Every resource in the catalogue, collections first, then nested collections."""
    exact, nested = _catalogue()
    return list(exact.values()) + [resource for _, resource in nested]


def collections() -> list[Resource]:
    """Every resource that can be read with GET (top-level and nested collections)."""
    return [r for r in resources() if "GET" in r.methods]


def default_incremental_field(endpoint: str, requested: str | bool | None = True) -> str | None:
    """Resolve ``incremental_field``: ``True`` means "the catalogue's", a name is checked against the fields.

    :raises Sage200ConfigError: the resource has no incremental field, or no such field.
    """
    resource = resource_or_unknown(endpoint)
    if requested in (None, False):
        return None
    if requested is True:
        if resource.incremental:
            return resource.incremental
        dated = [n for n, t in resource.fields.items() if t == "datetime"]
        alternatives = f" Its date fields: {', '.join(dated)}." if dated else " It has no date field."
        raise _config_error(
            f"{endpoint} has no date_time_updated, so it cannot be read incrementally by default; pass "
            f"incremental_field='<a date field>' or export it in full.{alternatives if resource.known else ''}"
        )
    if resource.known and requested not in resource.fields:
        raise _config_error(
            f"incremental_field: {endpoint} has no field {requested!r}.{nearest(str(requested), resource.fields)}"
        )
    return str(requested)


def incremental_field_for(endpoint: str, requested: str | bool | None) -> str | None:
    """The operator's ``incremental_field``: ``"auto"`` is the catalogue's field or none (a full export)."""
    if requested == "auto":
        return resource_or_unknown(endpoint).incremental
    return default_incremental_field(endpoint, requested)
