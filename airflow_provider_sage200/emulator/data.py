"""Deterministic, lazily generated Sage 200 data, with an overrides layer for writes and mutations.

A record is a pure function of (seed, company, resource, id), so a million sales orders cost nothing until
read. Unmodified records' ``date_time_created``/``date_time_updated`` grow with the id (creation times are evenly
spaced over ``history_days``; the update time adds less than one spacing), which lets scans turn id and
time bounds into an id range. Written or mutated records live in ``overrides``; deleted ids in ``deleted``.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import repeat
from typing import Any

from airflow_provider_sage200.emulator.odata import BOOL, DATE, DATETIME, ENUM, FLOAT, INT, LIST, STR

Record = dict[str, Any]

DOCUMENT_STATUS = [
    "EnumDocumentStatusLive",
    "EnumDocumentStatusOnHold",
    "EnumDocumentStatusComplete",
    "EnumDocumentStatusDispute",
    "EnumDocumentStatusCancelled",
]
ENUMS = {"document_status": DOCUMENT_STATUS}

_STAMPS = {"id": INT, "date_time_created": DATETIME, "date_time_updated": DATETIME}
SCHEMAS: dict[str, dict[str, str]] = {
    "sop_orders": _STAMPS
    | {
        "document_no": STR,
        "document_date": DATE,
        "customer_id": INT,
        "customer_document_no": STR,
        "document_status": ENUM,
        "currency_id": INT,
        "total_net_value": FLOAT,
        "total_tax_value": FLOAT,
        "total_gross_value": FLOAT,
        "analysis_code_1": STR,
        "lines": LIST,
    },
    "customers": _STAMPS
    | {
        "reference": STR,
        "name": STR,
        "short_name": STR,
        "balance": FLOAT,
        "credit_limit": FLOAT,
        "currency_id": INT,
        "email": STR,
        "telephone": STR,
        "on_hold": BOOL,
    },
    "products": _STAMPS
    | {"code": STR, "name": STR, "description": STR, "product_group_id": INT, "unit_price": FLOAT},
    "warehouses": _STAMPS | {"name": STR, "description": STR},
}
REQUIRED_ON_CREATE = {
    "sop_orders": ("customer_id",),
    "customers": ("reference", "name"),
    "products": ("code", "name"),
    "warehouses": ("name",),
}
# $expand relations: resource -> relation -> how to build it.
EXPANDS = {"sop_orders": ("customer",), "customers": ("contacts",)}
READ_ONLY = ("id", "date_time_created", "date_time_updated", "document_no")

_WORDS = [
    "Acme",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
]
_SUFFIX = ["Ltd", "plc", "Trading Ltd", "Group", "& Sons", "Supplies Ltd"]
_PRODUCTS = ["Widget", "Gadget", "Sprocket", "Bracket", "Flange", "Valve", "Bearing", "Gasket"]


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch * 1000) % 1000:03d}Z"
    )


class Dataset:
    """The data of one company."""

    def __init__(
        self,
        seed: int,
        company_id: int,
        sizes: dict[str, int],
        data_end: float,
        history_days: float,
        record_cache: int = 50_000,
    ):
        self.seed = seed
        self.company_id = company_id
        self.sizes = dict(sizes)
        self.end = data_end
        self.start = data_end - history_days * 86400
        self.overrides: dict[str, dict[int, Record]] = {r: {} for r in SCHEMAS}
        self.override_ids: dict[str, list[int]] = {r: [] for r in SCHEMAS}
        self.deleted: dict[str, set[int]] = {r: set() for r in SCHEMAS}
        self.next_id = {r: n + 1 for r, n in sizes.items()}
        # Building a record costs ~60 us; keeping one costs ~2 KB. Bounded by default so 1,000,000 orders fit in
        # little memory; the benchmark keeps its whole dataset so re-reads do not regenerate every record.
        self._generate = lru_cache(maxsize=record_cache)(self._build)

    # -- timing --------------------------------------------------------------------------------------

    def spacing(self, resource: str) -> float:
        return (self.end - self.start) / max(self.sizes[resource], 1)

    def created_at(self, resource: str, record_id: int) -> float:
        return self.start + (record_id - 1) * self.spacing(resource)

    def id_range_for_updated(self, resource: str, lo: float, hi: float) -> tuple[float, float]:
        """Ids whose *unmodified* ``date_time_updated`` may fall in ``[lo, hi]``."""
        step = self.spacing(resource)
        id_lo = math.floor((lo - self.start) / step) if lo != float("-inf") else 1
        id_hi = math.ceil((hi - self.start) / step) + 1 if hi != float("inf") else self.sizes[resource]
        return max(1, id_lo), id_hi

    # -- records -------------------------------------------------------------------------------------

    def get(self, resource: str, record_id: int) -> Record | None:
        if record_id in self.deleted[resource]:
            return None
        if record_id in self.overrides[resource]:
            return self.overrides[resource][record_id]
        if 1 <= record_id <= self.sizes[resource]:
            return self._generate(resource, record_id)
        return None

    def scan(
        self, resource: str, id_lo: float, id_hi: float, base_lo: float, base_hi: float
    ) -> Iterator[Record]:
        """Records with ``id_lo <= id <= id_hi`` in id order; unmodified ones only within ``[base_lo, base_hi]``."""
        n = self.sizes[resource]
        lo = max(1, math.ceil(max(id_lo, base_lo, 1)))
        hi = math.floor(min(id_hi, base_hi, n))
        overridden = self.override_ids[resource]
        start = bisect.bisect_left(overridden, max(id_lo, 1) if id_lo != float("-inf") else 1)
        extra = [i for i in overridden[start:] if i <= id_hi]
        if not extra and not self.deleted[resource]:
            yield from map(self._generate, repeat(resource), range(lo, hi + 1))
            return
        j = 0
        record_id = lo
        while record_id <= hi or j < len(extra):
            if j < len(extra) and (record_id > hi or extra[j] <= record_id):
                current = extra[j]
                j += 1
                if current == record_id:
                    record_id += 1
                record = self.overrides[resource].get(current)
                if record is not None and current not in self.deleted[resource]:
                    yield record
                continue
            if record_id not in self.deleted[resource] and record_id not in self.overrides[resource]:
                yield self._generate(resource, record_id)
            record_id += 1

    def scan_descending(
        self, resource: str, id_lo: float, id_hi: float, base_lo: float, base_hi: float, chunk: int = 1000
    ) -> Iterator[Record]:
        """As :meth:`scan`, highest id first, generating one chunk of ids at a time."""
        overridden = self.override_ids[resource]
        hi = math.floor(min(id_hi, max(self.sizes[resource], overridden[-1] if overridden else 0)))
        bottom = max(1, math.ceil(max(id_lo, 1)))
        while hi >= bottom:
            lo = max(bottom, hi - chunk + 1)
            yield from reversed(list(self.scan(resource, lo, hi, base_lo, base_hi)))
            hi = lo - 1

    def skip_ahead(self, resource: str, skip: int) -> tuple[float, int]:
        """For an unfiltered read in id order: the id to start from and what is left of ``skip``.

        With no deletions every id from 1 to the generated size exists (overrides replace, never add, below
        it), so skipping ``k`` of them means starting at ``k + 1``.
        """
        if self.deleted[resource]:
            return float("-inf"), skip
        jump = min(skip, self.sizes[resource])
        return jump + 1, skip - jump

    def put(self, resource: str, record: Record) -> None:
        record_id = record["id"]
        if record_id not in self.overrides[resource]:
            bisect.insort(self.override_ids[resource], record_id)
        self.overrides[resource][record_id] = record

    def delete(self, resource: str, record_id: int) -> None:
        self.deleted[resource].add(record_id)

    def new_id(self, resource: str) -> int:
        record_id = self.next_id[resource]
        self.next_id[resource] += 1
        return record_id

    def _build(self, resource: str, record_id: int) -> Record:
        rng = random.Random(f"{self.seed}:{self.company_id}:{resource}:{record_id}")
        created = self.created_at(resource, record_id)
        updated = created + rng.random() * self.spacing(resource) * 0.9
        stamps = {"id": record_id, "date_time_created": iso(created), "date_time_updated": iso(updated)}
        return getattr(self, f"_build_{resource}")(rng, record_id, created) | stamps

    def _build_sop_orders(self, rng: random.Random, record_id: int, created: float) -> Record:
        lines = []
        for n in range(1, rng.randint(1, 4) + 1):
            product_id = rng.randint(1, max(self.sizes["products"], 1))
            quantity = rng.randint(1, 20)
            price = round(rng.uniform(2, 250), 2)
            lines.append(
                {
                    "id": record_id * 10 + n,
                    "line_number": n,
                    "product_id": product_id,
                    "product_code": f"P{product_id:06d}",
                    "description": f"{rng.choice(_PRODUCTS)} {rng.randint(100, 999)}",
                    "quantity": quantity,
                    "unit_price": price,
                    "line_total_value": round(quantity * price, 2),
                }
            )
        net = round(sum(line["line_total_value"] for line in lines), 2)
        tax = round(net * 0.2, 2)
        return {
            "document_no": f"{record_id:010d}",
            "document_date": (datetime.fromtimestamp(created, UTC).date()).isoformat(),
            "customer_id": rng.randint(1, max(self.sizes["customers"], 1)),
            "customer_document_no": f"PO-{rng.randint(10000, 99999)}",
            "document_status": rng.choice(DOCUMENT_STATUS[:4]),
            "currency_id": 1,
            "total_net_value": net,
            "total_tax_value": tax,
            "total_gross_value": round(net + tax, 2),
            "analysis_code_1": rng.choice(["", "WEB", "PHONE", "EDI"]),
            "lines": lines,
        }

    def _build_customers(self, rng: random.Random, record_id: int, created: float) -> Record:
        name = f"{rng.choice(_WORDS)} {rng.choice(_SUFFIX)}"
        return {
            "reference": f"CUS{record_id:07d}",
            "name": name,
            "short_name": name.split()[0].upper()[:8],
            "balance": round(rng.uniform(-500, 25000), 2),
            "credit_limit": float(rng.choice([1000, 5000, 10000, 50000])),
            "currency_id": 1,
            "email": f"accounts{record_id}@example.com",
            "telephone": f"01632 {rng.randint(100000, 999999)}",
            "on_hold": rng.random() < 0.05,
        }

    def _build_products(self, rng: random.Random, record_id: int, created: float) -> Record:
        kind = rng.choice(_PRODUCTS)
        return {
            "code": f"P{record_id:06d}",
            "name": f"{kind} {record_id}",
            "description": f"{kind}, grade {rng.choice('ABC')}",
            "product_group_id": rng.randint(1, 12),
            "unit_price": round(rng.uniform(2, 250), 2),
        }

    def _build_warehouses(self, rng: random.Random, record_id: int, created: float) -> Record:
        return {"name": f"WH{record_id:02d}", "description": f"Warehouse {record_id}"}

    def contacts(self, customer_id: int) -> list[Record]:
        rng = random.Random(f"{self.seed}:{self.company_id}:contacts:{customer_id}")
        return [
            {"id": customer_id * 10 + n, "name": f"Contact {n}", "email": f"c{n}.{customer_id}@example.com"}
            for n in range(1, rng.randint(1, 3) + 1)
        ]


def default_data_end() -> float:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=0)).timestamp()
