"""The emulator's ASGI app: the Sage ID, Sage 200 API and control-plane routers (``routers/``), their error
handlers, and the fault and statistics middleware around them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from airflow_provider_sage200.emulator.config import EmulatorConfig
from airflow_provider_sage200.emulator.faults import FaultMiddleware
from airflow_provider_sage200.emulator.identity import OAuthError
from airflow_provider_sage200.emulator.odata import ODataError
from airflow_provider_sage200.emulator.responses import ApiError, JSONResponse
from airflow_provider_sage200.emulator.routers.api import api_router
from airflow_provider_sage200.emulator.routers.control import control_router
from airflow_provider_sage200.emulator.routers.identity import identity_router
from airflow_provider_sage200.emulator.state import EmulatorState
from airflow_provider_sage200.emulator.stats import StatsMiddleware


def make_app(config: EmulatorConfig | None = None) -> Any:
    """Build the ASGI app (FastAPI wrapped in the stats and fault middleware) around a fresh state."""
    state = EmulatorState(config or EmulatorConfig())
    app = FastAPI(
        title="Sage 200 emulator",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=JSONResponse,
    )
    app.state.emulator = state

    def error_body(status: int, message: str) -> dict[str, Any]:
        if state.config.error_style == "gateway":
            return {"statusCode": status, "message": message}
        return {"Message": message}

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, exc.message), status_code=exc.status)

    @app.exception_handler(ODataError)
    async def odata_error(_: Request, exc: ODataError) -> JSONResponse:
        return JSONResponse(error_body(400, f"The query is not valid. {exc}"), status_code=400)

    @app.exception_handler(OAuthError)
    async def oauth_error(_: Request, exc: OAuthError) -> JSONResponse:
        if exc.error == "invalid_grant":
            state.stats["invalid_grant"] += 1
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description},
            status_code=exc.status,
            headers={"Cache-Control": "no-store"},
        )

    app.include_router(identity_router(state))
    app.include_router(api_router(state))
    app.include_router(control_router(state))
    return StatsMiddleware(FaultMiddleware(app, state), state)
