"""The emulator's HTTP surface: Sage ID (``/authorize``, ``/oauth/token``), the Sage 200 API under
``/uk/{sage200|sage200extra}/accounts/v1/``, and a control plane under ``/_emulator/`` for tests.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse as _StarletteJSONResponse
from fastapi.responses import RedirectResponse, Response

from airflow_provider_sage200.emulator.config import EmulatorConfig
from airflow_provider_sage200.emulator.data import READ_ONLY, REQUIRED_ON_CREATE, SCHEMAS, iso
from airflow_provider_sage200.emulator.faults import FaultMiddleware
from airflow_provider_sage200.emulator.identity import OAuthError
from airflow_provider_sage200.emulator.odata import ODataError
from airflow_provider_sage200.emulator.queries import RECORD_OPTIONS, check_options, run_collection, shape
from airflow_provider_sage200.emulator.state import EmulatorState

EDITIONS = ("sage200", "sage200extra")
_BEARER = re.compile(r"^Bearer ([A-Za-z0-9._~+/=-]+)$")
_ID = re.compile(r"^\d+$")


class JSONResponse(_StarletteJSONResponse):
    """JSON encoded by msgspec: ten times faster than ``json.dumps`` on a page of orders, so the emulator is not
    what a benchmark measures."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def route_label(method: str, path: str) -> str | None:
    if path == "/oauth/token":
        return f"{method} oauth/token"
    match = re.match(r"^/uk/[^/]+/accounts/v1/(.*)$", path)
    if not match:
        return None
    segments = ["{id}" if _ID.match(s) else s for s in match.group(1).strip("/").split("/")]
    return f"{method} {'/'.join(segments)}"


class StatsMiddleware:
    """Counts every API and token request by status and by route (faults included)."""

    def __init__(self, app: Any, state: EmulatorState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        label = (
            route_label(scope.get("method", ""), scope.get("path", "")) if scope["type"] == "http" else None
        )
        if label is None:
            await self.app(scope, receive, send)
            return
        self.state.stats["requests_by_route"][label] += 1

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.state.stats["requests"][str(message["status"])] += 1
            await send(message)

        await self.app(scope, receive, counting_send)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


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

    # -- Sage ID -------------------------------------------------------------------------------------

    @app.get("/authorize")
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

    @app.post("/oauth/token")
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

    # -- Sage 200 API --------------------------------------------------------------------------------

    @app.api_route("/uk/{edition}/accounts/v1/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def api(edition: str, path: str, request: Request) -> Response:
        if edition not in EDITIONS:
            raise ApiError(404, f"No API found under /uk/{edition}/ (use sage200 or sage200extra)")
        tenant = state.config.tenant_edition
        if tenant is not None and edition != {"standard": "sage200", "professional": "sage200extra"}.get(
            tenant
        ):
            # The gateway has no such API for this tenant: Azure API Management's stock 404 body.
            return JSONResponse({"statusCode": 404, "message": "Resource not found"}, status_code=404)
        authenticate(request)
        segments = [s for s in path.strip("/").split("/") if s]
        params = dict(request.query_params)
        if segments == ["sites"] and request.method == "GET":
            return JSONResponse(state.config.reachable_sites())
        dataset = site_dataset(request)
        return await dispatch(request, dataset, segments, params)

    def authenticate(request: Request) -> None:
        key = request.headers.get("ocp-apim-subscription-key")
        if state.config.require_subscription_key and key != state.config.subscription_key:
            raise ApiError(401, "Access denied due to missing or invalid subscription key.")
        match = _BEARER.match(request.headers.get("authorization", ""))
        if not match or not state.identity.access_valid(match.group(1), state.now()):
            raise ApiError(401, "Authorization has been denied for this request.")
        if not state.config.user_api_enabled:
            raise ApiError(401, "Authorization has been denied for this request.")

    def site_dataset(request: Request):
        site, company = request.headers.get("x-site"), request.headers.get("x-company")
        if not site:
            raise ApiError(400, "Header X-Site was not found: send the site id from GET sites.")
        if not company:
            raise ApiError(400, "Header X-Company was not found: send the company id from GET sites.")
        if not company.isdigit():
            raise ApiError(400, f"Header X-Company must be an integer company id, got {company!r}.")
        reachable = {(s["site_id"], s["company_id"]) for s in state.config.reachable_sites()}
        if (site, int(company)) not in reachable:
            if state.config.header_check == "lenient":
                return None
            raise ApiError(403, "The user does not have access to this site and company.")
        return state.datasets[int(company)]

    async def dispatch(
        request: Request, dataset: Any, segments: list[str], params: dict[str, str]
    ) -> Response:
        method = request.method
        resource = segments[0] if segments else ""
        if resource not in SCHEMAS or len(segments) > 3:
            raise ApiError(404, f"No resource {'/'.join(segments)!r} in this API.")
        if dataset is None:
            return JSONResponse([])
        if len(segments) == 3:
            if (
                resource != "customers"
                or segments[2] != "sop_orders"
                or not _ID.match(segments[1])
                or method != "GET"
            ):
                raise ApiError(404, f"No resource {'/'.join(segments)!r} in this API.")
            if dataset.get("customers", int(segments[1])) is None:
                raise ApiError(404, f"Customer {segments[1]} not found.")
            extra = f"customer_id eq {int(segments[1])}"
            params["$filter"] = f"({params['$filter']}) and {extra}" if params.get("$filter") else extra
            return JSONResponse(collection("sop_orders", dataset, params))
        if len(segments) == 1:
            if method == "GET":
                return JSONResponse(collection(resource, dataset, params))
            if method == "POST":
                return JSONResponse(create(resource, dataset, await json_body(request)))
            raise ApiError(405, f"{method} is not allowed on {resource}; use GET or POST.")
        if not _ID.match(segments[1]):
            raise ApiError(404, f"{segments[1]!r} is not a {resource} id.")
        record_id = int(segments[1])
        record = dataset.get(resource, record_id)
        if record is None:
            raise ApiError(404, f"No {resource} record with id {record_id}.")
        if method == "GET":
            check_options(params, RECORD_OPTIONS, "on a single record")
            return JSONResponse(shape(resource, record, dataset, params))
        if method == "PUT":
            return JSONResponse(update(resource, dataset, record, await json_body(request)))
        if method == "DELETE":
            dataset.delete(resource, record_id)
            state.stats["writes"]["DELETE"] += 1
            return Response(status_code=200)
        raise ApiError(405, f"{method} is not allowed on a {resource} record.")

    def collection(resource: str, dataset: Any, params: dict[str, str]) -> Any:
        config = state.config
        page = run_collection(
            resource, dataset, params, config.max_top, config.default_top, config.top_over_max
        )
        maybe_mutate(resource)
        return page

    def maybe_mutate(resource: str) -> None:
        faults = state.faults
        if not faults["mutate_every"] or resource != faults["mutate_resource"]:
            return
        state.pages_served[resource] += 1
        if state.pages_served[resource] % int(faults["mutate_every"]):
            return
        for dataset in state.datasets.values():
            top = dataset.next_id[resource] - 1
            for _ in range(int(faults["mutate_count"])):
                record = dataset.get(resource, state.rng.randint(1, top))
                if record is not None:
                    changed = dict(record, date_time_updated=iso(state.now()))
                    if "customer_document_no" in changed:
                        changed["customer_document_no"] = f"PO-M{state.rng.randint(10000, 99999)}"
                    dataset.put(resource, changed)
                    state.stats["faults_injected"]["mutate"] += 1

    async def json_body(request: Request) -> dict[str, Any]:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise ApiError(415, "Send the body as JSON with Content-Type: application/json.")
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return body

    def validate_fields(resource: str, body: dict[str, Any]) -> None:
        schema = SCHEMAS[resource]
        for name in body:
            if name not in schema:
                raise ApiError(400, f"{resource}: unknown field {name!r}.")
            if name in READ_ONLY:
                raise ApiError(400, f"{resource}: field {name!r} is read-only.")

    def create(resource: str, dataset: Any, body: dict[str, Any]) -> dict[str, Any]:
        validate_fields(resource, body)
        for name in REQUIRED_ON_CREATE[resource]:
            if body.get(name) in (None, ""):
                raise ApiError(400, f"{resource}: field {name!r} is required.")
        if resource == "sop_orders" and dataset.get("customers", int(body["customer_id"])) is None:
            raise ApiError(400, f"sop_orders: customer_id {body['customer_id']} does not exist.")
        if resource == "customers" and any(
            r["reference"] == body["reference"]
            for r in dataset.scan("customers", 1, float("inf"), float("-inf"), float("inf"))
        ):
            raise ApiError(400, f"customers: reference {body['reference']!r} is already in use.")
        record_id = dataset.new_id(resource)
        now = iso(state.now())
        record = {name: None for name in SCHEMAS[resource]} | body
        record |= {"id": record_id, "date_time_created": now, "date_time_updated": now}
        if resource == "sop_orders":
            record["document_no"] = f"{record_id:010d}"
            record["lines"] = body.get("lines") or []
        dataset.put(resource, record)
        state.stats["writes"]["POST"] += 1
        state.stats["created_ids"][resource].append(record_id)
        return record

    def update(resource: str, dataset: Any, record: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        validate_fields(resource, body)
        changed = dict(record) | body | {"date_time_updated": iso(state.now())}
        dataset.put(resource, changed)
        state.stats["writes"]["PUT"] += 1
        return changed

    # -- control plane -------------------------------------------------------------------------------

    @app.get("/_emulator/health")
    async def health() -> dict[str, Any]:
        return {"ok": True}

    @app.post("/_emulator/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return {"ok": True}

    @app.get("/_emulator/stats")
    async def stats() -> dict[str, Any]:
        return state.stats_json()

    @app.get("/_emulator/config")
    async def get_config() -> dict[str, Any]:
        return state.config.to_dict()

    @app.post("/_emulator/config")
    async def configure(request: Request) -> dict[str, Any]:
        try:
            state.configure(await request.json())
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from None
        return state.config.to_dict()

    @app.post("/_emulator/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        try:
            state.set_faults(await request.json())
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return state.faults

    @app.delete("/_emulator/faults")
    async def clear_faults() -> dict[str, Any]:
        state.clear_faults()
        return state.faults

    @app.post("/_emulator/clock")
    async def clock(request: Request) -> dict[str, Any]:
        state.clock_offset += float((await request.json()).get("advance", 0))
        return {"now": state.now(), "offset": state.clock_offset}

    @app.post("/_emulator/mutate")
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
                dataset.put(
                    resource,
                    dict(record) | (body.get("changes") or {}) | {"date_time_updated": iso(state.now())},
                )
                touched.append(int(record_id))
        return {"ids": touched}

    @app.get("/_emulator/truth/{resource}")
    async def truth(resource: str, company_id: int = 1, fields: str = "id") -> Any:
        if resource == "sites":
            return state.config.reachable_sites()
        if resource not in SCHEMAS:
            raise ApiError(404, f"unknown resource {resource!r}")
        names = [f for f in fields.split(",") if f]
        records = state.datasets[company_id].scan(resource, 1, float("inf"), float("-inf"), float("inf"))
        return [{name: r.get(name) for name in names} for r in records]

    @app.get("/_emulator/issued_tokens")
    async def issued_tokens() -> dict[str, Any]:
        return state.identity.issued

    return StatsMiddleware(FaultMiddleware(app, state), state)
