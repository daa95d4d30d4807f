"""The control plane under ``/_emulator/`` (tests and demos only): health, reset, settings, faults, the clock,
record mutations and the ground truth a test compares an export with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_sage200.emulator.data import SCHEMAS
from airflow_provider_sage200.emulator.faults import touch
from airflow_provider_sage200.emulator.responses import ApiError
from airflow_provider_sage200.emulator.state import EmulatorState
from airflow_provider_sage200.resources import get_resource


def control_router(state: EmulatorState) -> APIRouter:
    router = APIRouter(prefix="/_emulator")

    @router.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True}

    @router.post("/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return {"ok": True}

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        return state.stats_json()

    @router.get("/config")
    async def get_config() -> dict[str, Any]:
        return state.config.to_dict()

    @router.post("/config")
    async def configure(request: Request) -> dict[str, Any]:
        try:
            state.configure(await request.json())
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from None
        return state.config.to_dict()

    @router.post("/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        try:
            state.set_faults(await request.json())
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return state.faults

    @router.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        state.clear_faults()
        return state.faults

    @router.post("/clock")
    async def clock(request: Request) -> dict[str, Any]:
        state.clock_offset += float((await request.json()).get("advance", 0))
        return {"now": state.now(), "offset": state.clock_offset}

    @router.post("/mutate")
    async def mutate(request: Request) -> dict[str, Any]:
        body = await request.json()
        resource = body.get("resource", "sop_orders")
        dataset = state.datasets[int(body.get("company_id", 1))]
        ids = body.get("ids") or [
            state.rng.randint(1, dataset.next_id[resource] - 1) for _ in range(int(body.get("count", 1)))
        ]
        touched = []
        for record_id in ids:
            record = dataset.get(resource, int(record_id))
            if record is not None:
                touch(state, dataset, resource, record, body.get("changes") or {})
                touched.append(int(record_id))
        return {"ids": touched}

    @router.get("/truth/{resource:path}")
    async def truth(resource: str, company_id: int = 1, fields: str = "id") -> Any:
        if resource == "sites":
            return state.config.reachable_sites()
        names = [f for f in fields.split(",") if f]
        if resource not in SCHEMAS:
            entry = get_resource(resource)
            if entry is None:
                raise ApiError(404, f"unknown resource {resource!r}")
            return [{name: r.get(name) for name in names} for r in state.catalogue[company_id].all(entry)]
        records = state.datasets[company_id].scan(resource, 1, float("inf"), float("-inf"), float("inf"))
        return [{name: r.get(name) for name in names} for r in records]

    @router.get("/issued_tokens")
    async def issued_tokens() -> dict[str, Any]:
        return state.identity.issued

    return router
