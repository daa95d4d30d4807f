"""The Sage 200 API under ``/uk/{sage200|sage200extra}/accounts/v1/``: authentication, the X-Site/X-Company
headers, collections (OData query options), records and writes."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from airflow_provider_sage200.emulator.catalogue import run_query
from airflow_provider_sage200.emulator.data import READ_ONLY, REQUIRED_ON_CREATE, SCHEMAS, iso
from airflow_provider_sage200.emulator.faults import mutate_on_page, touch
from airflow_provider_sage200.emulator.queries import RECORD_OPTIONS, check_options, run_collection, shape
from airflow_provider_sage200.emulator.responses import ApiError, JSONResponse
from airflow_provider_sage200.emulator.state import EmulatorState
from airflow_provider_sage200.resources import Resource, get_resource

EDITIONS = ("sage200", "sage200extra")
_BEARER = re.compile(r"^Bearer ([A-Za-z0-9._~+/=-]+)$")
_ID = re.compile(r"^\d+$")


def api_router(state: EmulatorState) -> APIRouter:
    router = APIRouter()

    @router.api_route("/uk/{edition}/accounts/v1/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
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
        served = catalogue_target(segments)
        if served is not None:
            if dataset is None:
                return JSONResponse([])
            return await dispatch_catalogue(request, edition, dataset, segments, params, *served)
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

    async def dispatch_catalogue(
        request: Request,
        edition: str,
        dataset: Any,
        segments: list[str],
        params: dict[str, str],
        resource: Resource,
        record_key: int | None,
    ) -> Response:
        method = request.method
        if edition == "sage200" and resource.professional_only:
            raise ApiError(
                404, f"No resource {'/'.join(segments)!r} in this API (Sage 200 Professional only)."
            )
        store = state.catalogue[dataset.company_id]
        fields = resource.fields_for("standard" if edition == "sage200" else "professional")
        records = store.all(resource)
        if resource.parent is not None:
            # The last path parameter (``customers/{customerId}/...``) names the parent the records belong to.
            raw = segments[len(resource.path.split("/")) - 2]
            if not _ID.match(raw):
                raise ApiError(404, f"{raw!r} is not an id.")
            parent_id = int(raw)
            parent = segments[len(resource.path.split("/")) - 3]
            if parent in SCHEMAS:
                exists = dataset.get(parent, parent_id) is not None
            else:
                parent_resource = get_resource(parent)
                exists = parent_resource is None or store.find(parent_resource, parent_id) is not None
            if not exists:
                raise ApiError(404, f"No {parent} record with id {parent_id}.")
            if resource.parent_link is not None:
                records = [r for r in records if r.get(resource.parent_link) == parent_id]
        if record_key is None:
            if method == "GET" and "GET" in resource.methods:
                config = state.config
                page = run_query(
                    resource, records, fields, params, config.max_top, config.default_top, config.top_over_max
                )
                return JSONResponse(page)
            if method == "POST" and "POST" in resource.methods:
                body = await json_body(request)
                for name in body:
                    if name not in fields:
                        raise ApiError(400, f"{resource.path}: unknown field {name!r}.")
                record = store.create(resource, body, state.now())
                state.stats["writes"]["POST"] += 1
                if resource.post_returns_urn:
                    state.stats["posted_urns"] = state.stats.get("posted_urns", 0) + 1
                    return JSONResponse(body | {"urn": 100000 + state.stats["posted_urns"]})
                return JSONResponse(record)
            raise ApiError(
                405, f"{method} is not allowed on {resource.path}; use {' or '.join(resource.methods)}."
            )
        if method not in resource.item_methods:
            raise ApiError(405, f"{method} is not allowed on a {resource.path} record.")
        record = next((r for r in records if r.get(resource.key or "id") == record_key), None)
        if record is None:
            raise ApiError(404, f"No {resource.path} record with {resource.key} {record_key}.")
        if method == "GET":
            check_options(params, RECORD_OPTIONS, "on a single record")
            return JSONResponse({name: record.get(name) for name in fields})
        if method == "DELETE":
            store.replace(resource, record, None)
            state.stats["writes"]["DELETE"] += 1
            return Response(status_code=200)
        body = await json_body(request)
        for name in body:
            if name not in fields or name in (resource.key, "date_time_created", "date_time_updated"):
                raise ApiError(400, f"{resource.path}: field {name!r} is unknown or read-only.")
        changed = record | body
        if "date_time_updated" in changed:
            changed["date_time_updated"] = iso(state.now())
        store.replace(resource, record, changed)
        state.stats["writes"]["PUT"] += 1
        return JSONResponse(changed)

    def collection(resource: str, dataset: Any, params: dict[str, str]) -> Any:
        config = state.config
        page = run_collection(
            resource, dataset, params, config.max_top, config.default_top, config.top_over_max
        )
        mutate_on_page(state, resource)
        return page

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
        changed = touch(state, dataset, resource, record, body)
        state.stats["writes"]["PUT"] += 1
        return changed

    return router


def catalogue_target(segments: list[str]) -> tuple[Resource, int | None] | None:
    """The catalogue resource a path names and the record key in it (``None`` for the collection), or ``None``
    for the hand-modelled resources (:mod:`..data`) and paths the catalogue lacks."""
    path = "/".join(segments)
    if not segments or (len(segments) == 3 and segments[0] == "customers" and segments[2] == "sop_orders"):
        return None
    resource = get_resource(path)
    if resource is None or resource.path in SCHEMAS:
        return None
    depth = len(resource.path.split("/"))
    if len(segments) == depth:
        return resource, None
    if len(segments) == depth + 1 and _ID.match(segments[-1]) and resource.key:
        return resource, int(segments[-1])
    return None


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
