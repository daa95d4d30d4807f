"""The emulator's whole state: configuration, clock, Sage ID, per-company data, faults and statistics."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime
from typing import Any

from airflow_provider_sage200.emulator.catalogue import CatalogueStore
from airflow_provider_sage200.emulator.config import EmulatorConfig
from airflow_provider_sage200.emulator.data import Dataset, default_data_end
from airflow_provider_sage200.emulator.faults import FAULT_KEYS
from airflow_provider_sage200.emulator.identity import Identity
from airflow_provider_sage200.emulator.stats import new_stats


class EmulatorState:
    """Mutable state behind one emulator app; ``reset()`` returns to the startup configuration."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.startup = EmulatorConfig.from_dict(config.to_dict())
        self.reset()

    def reset(self) -> None:
        self.config = EmulatorConfig.from_dict(self.startup.to_dict())
        self.clock_offset = 0.0
        self.stats = new_stats()
        self.identity = Identity(self.config, self.stats)
        end = (
            datetime.fromisoformat(self.config.data_end.replace("Z", "+00:00")).timestamp()
            if self.config.data_end
            else default_data_end()
        )
        sizes = {
            "sop_orders": self.config.sop_orders,
            "customers": self.config.customers,
            "products": self.config.products,
            "warehouses": self.config.warehouses,
        }
        companies = {site["company_id"] for site in self.config.sites}
        self.datasets = {
            c: Dataset(self.config.seed, c, sizes, end, self.config.history_days, self.config.record_cache)
            for c in sorted(companies)
        }
        self.new_catalogue()
        self.clear_faults()

    def new_catalogue(self) -> None:
        self.catalogue = {
            c: CatalogueStore(self.config.seed, c, self.config.catalogue_records, d.start, d.end)
            for c, d in self.datasets.items()
        }

    def clear_faults(self) -> None:
        self.faults: dict[str, Any] = dict(FAULT_KEYS)
        self.faults["script"] = []
        self.rng = random.Random(self.faults["seed"])
        self.down_until = 0.0
        self.pages_served: Counter[str] = Counter()

    def set_faults(self, changes: dict[str, Any]) -> None:
        unknown = set(changes) - set(FAULT_KEYS)
        if unknown:
            raise ValueError(f"unknown faults: {sorted(unknown)}; known: {sorted(FAULT_KEYS)}")
        self.faults.update(changes)
        if "seed" in changes:
            self.rng = random.Random(changes["seed"])
        if changes.get("down_for"):
            self.down_until = self.now() + float(changes["down_for"])

    def configure(self, changes: dict[str, Any]) -> None:
        merged = self.config.to_dict() | changes
        new = EmulatorConfig.from_dict(merged)
        for key in changes:
            setattr(self.config, key, getattr(new, key))
        if "catalogue_records" in changes:
            self.new_catalogue()

    def now(self) -> float:
        return time.time() + self.clock_offset

    def stats_json(self) -> dict[str, Any]:
        out = {}
        for key, value in self.stats.items():
            out[key] = dict(value) if isinstance(value, dict) else value
        return out
