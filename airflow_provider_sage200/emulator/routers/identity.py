"""Sage ID: ``/authorize`` (the consent redirect) and ``/oauth/token`` (code and refresh-token grants)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from airflow_provider_sage200.emulator.identity import OAuthError
from airflow_provider_sage200.emulator.responses import JSONResponse
from airflow_provider_sage200.emulator.state import EmulatorState


def identity_router(state: EmulatorState) -> APIRouter:
    router = APIRouter()

    @router.get("/authorize")
    async def authorize(request: Request) -> Response:
        q = request.query_params
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != state.config.client_id:
            return JSONResponse(
                {"error": "unauthorized_client", "error_description": "Unknown client_id"}, 400
            )
        if not state.identity.redirect_allowed(redirect_uri):
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": f"redirect_uri {redirect_uri!r} is not registered",
                },
                400,
            )

        def back(**params: str | None) -> RedirectResponse:
            if q.get("state") is not None:
                params["state"] = q["state"]
            sep = "&" if urlsplit(redirect_uri).query else "?"
            return RedirectResponse(
                redirect_uri + sep + urlencode({k: v for k, v in params.items() if v}), 302
            )

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="response_type must be code")
        if q.get("audience") != state.config.audience:
            return back(
                error="invalid_request", error_description=f"audience must be {state.config.audience}"
            )
        scopes = (q.get("scope") or "").split()
        if "offline_access" not in scopes or "openid" not in scopes:
            return back(
                error="invalid_scope", error_description="scope must include openid and offline_access"
            )
        if state.config.consent != "allow":
            return back(error="access_denied", error_description="The user denied the request")
        method = q.get("code_challenge_method")
        if q.get("code_challenge") and method not in (None, "S256", "plain"):
            return back(
                error="invalid_request", error_description="code_challenge_method must be S256 or plain"
            )
        code = state.identity.issue_code(
            redirect_uri, state.now(), q.get("code_challenge"), method or "plain"
        )
        return back(code=code)

    @router.post("/oauth/token")
    async def token(request: Request) -> JSONResponse:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise OAuthError(
                "invalid_request", "The token request must be application/x-www-form-urlencoded."
            )
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.startswith("Basic ") and state.config.allow_basic_client_auth:
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                raise OAuthError("invalid_client", "Malformed Basic credentials.", 401) from None
        state.identity.check_client(client_id, client_secret)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            body = state.identity.grant_code(form, state.now())
        elif grant == "refresh_token":
            body = state.identity.grant_refresh(form, state.now())
        elif not grant:
            raise OAuthError("invalid_request", "grant_type is required.")
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported.")
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    return router
