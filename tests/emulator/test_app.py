"""Emulator routes through FastAPI's in-process client (fast), checking Sage's rules one by one."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from airflow_provider_sage200.emulator import EmulatorConfig, make_app
from airflow_provider_sage200.emulator.config import SITE_A, SITE_B
from airflow_provider_sage200.emulator.data import Dataset

REDIRECT = "http://127.0.0.1:8765/callback"
API = "/uk/sage200extra/accounts/v1"


@pytest.fixture
def client():
    return TestClient(make_app(EmulatorConfig(sop_orders=300, customers=50, access_token_ttl=60)))


def authorize(client, **overrides) -> dict:
    params = {
        "client_id": "emulator-client",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "audience": "s200ukipd/sage200",
        "scope": "openid profile email offline_access",
        "state": "xyz",
    } | overrides
    response = client.get("/authorize", params=params, follow_redirects=False)
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def token(client, **form) -> dict:
    body = {"client_id": "emulator-client", "client_secret": "emulator-secret"} | form
    return client.post("/oauth/token", data=body)


def consent(client) -> dict:
    code = authorize(client)["code"]
    response = token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert response.status_code == 200, response.text
    return response.json()


def headers(access: str, company: int = 1, site: str = SITE_A) -> dict:
    return {"Authorization": f"Bearer {access}", "X-Site": site, "X-Company": str(company)}


def stats(client) -> dict:
    return client.get("/_emulator/stats").json()


class TestSageId:
    def test_authorize_echoes_state_and_requires_audience(self, client):
        assert authorize(client)["state"] == "xyz"
        assert authorize(client, audience="other")["error"] == "invalid_request"
        assert authorize(client, scope="openid")["error"] == "invalid_scope"

    def test_unregistered_redirect_is_never_followed(self, client):
        response = client.get(
            "/authorize",
            params={
                "client_id": "emulator-client",
                "redirect_uri": "https://evil.example/cb",
                "response_type": "code",
            },
            follow_redirects=False,
        )
        assert response.status_code == 400

    def test_code_is_single_use_and_bound_to_redirect_uri(self, client):
        code = authorize(client)["code"]
        assert (
            token(
                client, grant_type="authorization_code", code=code, redirect_uri="http://127.0.0.1:1/x"
            ).json()["error"]
            == "invalid_grant"
        )
        assert (
            token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT).status_code
            == 200
        )
        assert (
            token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT).json()["error"]
            == "invalid_grant"
        )

    def test_refresh_rotates_and_reuse_revokes_the_family(self, client):
        first = consent(client)
        second = token(client, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
        assert second["refresh_token"] != first["refresh_token"]
        assert client.get(f"{API}/sop_orders", headers=headers(second["access_token"])).status_code == 200
        reused = token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        # the whole family is gone: the newest refresh token and its access token too
        assert (
            token(client, grant_type="refresh_token", refresh_token=second["refresh_token"]).status_code
            == 400
        )
        assert client.get(f"{API}/sop_orders", headers=headers(second["access_token"])).status_code == 401
        assert stats(client)["families_revoked"] == 1

    def test_reuse_grace_returns_the_current_pair(self, client):
        client.post("/_emulator/config", json={"reuse_grace": 30})
        first = consent(client)
        second = token(client, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
        again = token(client, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
        assert again["refresh_token"] == second["refresh_token"]

    def test_family_expires_at_a_fixed_date(self, client):
        first = consent(client)
        client.post("/_emulator/clock", json={"advance": 89 * 86400})
        second = token(client, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
        client.post("/_emulator/clock", json={"advance": 2 * 86400})
        expired = token(client, grant_type="refresh_token", refresh_token=second["refresh_token"]).json()
        assert expired["error"] == "invalid_grant" and "expired" in expired["error_description"]

    def test_client_auth_in_body_or_basic(self, client):
        code = authorize(client)["code"]
        basic = base64.b64encode(b"emulator-client:emulator-secret").decode()
        response = client.post(
            "/oauth/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert response.status_code == 200
        bad = token(client, grant_type="refresh_token", refresh_token="x", client_secret="wrong")
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"

    def test_pkce_is_verified(self, client):
        verifier = "v" * 50
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        code = authorize(client, code_challenge=challenge, code_challenge_method="S256")["code"]
        wrong = token(
            client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier="w" * 50
        )
        assert wrong.json()["error"] == "invalid_grant"
        code = authorize(client, code_challenge=challenge, code_challenge_method="S256")["code"]
        right = token(
            client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier
        )
        assert right.status_code == 200

    def test_access_token_expires(self, client):
        access = consent(client)["access_token"]
        client.post("/_emulator/clock", json={"advance": 61})
        response = client.get(f"{API}/sop_orders", headers=headers(access))
        assert response.status_code == 401
        assert response.json() == {"Message": "Authorization has been denied for this request."}


class TestApi:
    @pytest.fixture
    def access(self, client):
        return consent(client)["access_token"]

    def test_sites_need_no_site_headers_and_return_a_bare_array(self, client, access):
        sites = client.get(f"{API}/sites", headers={"Authorization": f"Bearer {access}"}).json()
        assert isinstance(sites, list) and {s["site_id"] for s in sites} == {SITE_A, SITE_B}

    @pytest.mark.parametrize(
        ("hdrs", "status"),
        [
            pytest.param({"X-Company": "1"}, 400, id="no-site"),
            pytest.param({"X-Site": SITE_A}, 400, id="no-company"),
            pytest.param({"X-Site": SITE_A, "X-Company": "one"}, 400, id="company-not-int"),
            pytest.param({"X-Site": SITE_B, "X-Company": "1"}, 403, id="unreachable-pair"),
        ],
    )
    def test_site_headers_are_enforced(self, client, access, hdrs, status):
        response = client.get(f"{API}/sop_orders", headers={"Authorization": f"Bearer {access}"} | hdrs)
        assert response.status_code == status

    def test_bearer_needs_exactly_one_space(self, client, access):
        response = client.get(
            f"{API}/sop_orders", headers=headers(access) | {"Authorization": f"Bearer  {access}"}
        )
        assert response.status_code == 401

    def test_unknown_edition_is_404(self, client, access):
        assert client.get("/uk/sage300/accounts/v1/sop_orders", headers=headers(access)).status_code == 404

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            pytest.param({"$top": "5001"}, "must not exceed 5000", id="top-over-max"),
            pytest.param({"$top": "-1"}, "non-negative", id="top-negative"),
            pytest.param({"$skip": "10"}, "requires $orderby", id="skip-without-orderby"),
            pytest.param({"$orderby": "nope"}, "unknown field 'nope'", id="orderby-unknown"),
            pytest.param({"$select": "id,nope"}, "unknown field 'nope'", id="select-unknown"),
            pytest.param({"$expand": "warehouse"}, "not a relation", id="expand-unknown"),
            pytest.param({"$format": "xml"}, "not supported", id="unknown-option"),
        ],
    )
    def test_query_rules(self, client, access, params, message):
        response = client.get(f"{API}/sop_orders", headers=headers(access), params=params)
        assert response.status_code == 400
        assert message in response.json()["Message"]

    def test_paging_count_select_expand(self, client, access):
        h = headers(access)
        assert len(client.get(f"{API}/sop_orders", headers=h).json()) == 300  # default $top 500
        page = client.get(
            f"{API}/sop_orders", headers=h, params={"$orderby": "id", "$skip": "10", "$top": "5"}
        ).json()
        assert [r["id"] for r in page] == [11, 12, 13, 14, 15]
        keyed = client.get(
            f"{API}/sop_orders", headers=h, params={"$filter": "id gt 295", "$select": "id"}
        ).json()
        assert keyed == [{"id": i} for i in range(296, 301)]
        assert (
            client.get(
                f"{API}/sop_orders", headers=h, params={"$count": "true", "$filter": "id le 42"}
            ).json()
            == 42
        )
        expanded = client.get(
            f"{API}/sop_orders/3", headers=h, params={"$expand": "customer", "$select": "id,customer.name"}
        ).json()
        assert set(expanded) == {"id", "customer"} and "name" in expanded["customer"]
        nested = client.get(f"{API}/customers/5/sop_orders", headers=h).json()
        assert nested and all(r["customer_id"] == 5 for r in nested)

    def test_writes(self, client, access):
        h = headers(access)
        created = client.post(
            f"{API}/customers", headers=h, json={"reference": "NEW01", "name": "New Ltd"}
        ).json()
        assert created["id"] == 51 and created["date_time_created"].endswith("Z")
        duplicate = client.post(f"{API}/customers", headers=h, json={"reference": "NEW01", "name": "Again"})
        assert duplicate.status_code == 400 and "already in use" in duplicate.json()["Message"]
        missing = client.post(f"{API}/sop_orders", headers=h, json={"customer_document_no": "x"})
        assert missing.status_code == 400 and "customer_id" in missing.json()["Message"]
        before = client.get(f"{API}/customers/7", headers=h).json()
        client.post("/_emulator/clock", json={"advance": 5})
        updated = client.put(f"{API}/customers/7", headers=h, json={"name": "Renamed"}).json()
        assert updated["name"] == "Renamed" and updated["date_time_updated"] > before["date_time_updated"]
        assert client.put(f"{API}/customers/7", headers=h, json={"id": 9}).status_code == 400
        assert client.delete(f"{API}/customers/7", headers=h).status_code == 200
        assert client.get(f"{API}/customers/7", headers=h).status_code == 404
        assert stats(client)["writes"] == {"POST": 1, "PUT": 1, "DELETE": 1}

    def test_companies_have_their_own_data(self, client, access):
        one = client.get(f"{API}/customers/1", headers=headers(access, 1)).json()
        two = client.get(f"{API}/customers/1", headers=headers(access, 2)).json()
        assert one["id"] == two["id"] == 1 and one != two

    def test_scripted_faults_and_stats(self, client, access):
        client.post("/_emulator/faults", json={"script": [429, 503, "html"]})
        h = headers(access)
        first = client.get(f"{API}/sop_orders", headers=h)
        assert first.status_code == 429 and first.headers["retry-after"] == "1"
        assert client.get(f"{API}/sop_orders", headers=h).status_code == 503
        html = client.get(f"{API}/sop_orders", headers=h)
        assert html.status_code == 502 and html.text.startswith("<html>")
        assert client.get(f"{API}/sop_orders", headers=h).status_code == 200
        counted = stats(client)
        assert counted["faults_injected"] == {"429": 1, "503": 1, "html": 1}
        assert counted["requests_by_route"]["GET sop_orders"] == 4


def test_unmodified_records_are_deterministic_and_lazy():
    from airflow_provider_sage200.emulator.data import Dataset

    a = Dataset(42, 1, {"sop_orders": 1_000_000, "customers": 10, "products": 10, "warehouses": 1}, 1.8e9, 30)
    b = Dataset(42, 1, {"sop_orders": 1_000_000, "customers": 10, "products": 10, "warehouses": 1}, 1.8e9, 30)
    assert a.get("sop_orders", 999_999) == b.get("sop_orders", 999_999)
    page = list(a.scan("sop_orders", 500_001, 500_500, float("-inf"), float("inf")))
    assert [r["id"] for r in page] == list(range(500_001, 500_501))
    assert a._generate.cache_info().currsize <= 502  # only what was touched was generated
    stamps = [r["date_time_updated"] for r in page]
    assert stamps == sorted(stamps)


def _orders(n: int) -> Dataset:
    return Dataset(7, 1, {"sop_orders": n, "customers": 10, "products": 10, "warehouses": 1}, 1.8e9, 30)


def _page(dataset: Dataset, query: dict[str, str]) -> list[int]:
    from airflow_provider_sage200.emulator.queries import run_collection

    return [
        r["id"] for r in run_collection("sop_orders", dataset, {"$select": "id", **query}, 5000, 500, "error")
    ]


def test_offset_and_descending_fast_paths_agree_with_a_full_scan():
    dataset = _orders(3000)
    dataset.put("sop_orders", dict(dataset.get("sop_orders", 10), customer_document_no="X"))  # an update
    new_id = dataset.new_id("sop_orders")
    dataset.put("sop_orders", dict(dataset.get("sop_orders", 11), id=new_id))  # a created record
    every = [
        r["id"] for r in dataset.scan("sop_orders", float("-inf"), float("inf"), float("-inf"), float("inf"))
    ]
    assert _page(dataset, {"$orderby": "id", "$skip": "2990", "$top": "50"}) == every[2990:3040]
    assert _page(dataset, {"$orderby": "id desc", "$top": "3"}) == sorted(every, reverse=True)[:3]
    dataset.delete("sop_orders", 5)
    every.remove(5)
    assert _page(dataset, {"$orderby": "id", "$skip": "4", "$top": "3"}) == every[4:7]


def test_bounds_of_a_million_orders_are_found_without_generating_them():
    dataset = _orders(1_000_000)
    assert _page(dataset, {"$orderby": "id desc", "$top": "1"}) == [1_000_000]
    assert _page(dataset, {"$orderby": "id", "$skip": "999000", "$top": "2"}) == [999_001, 999_002]
    assert dataset._generate.cache_info().currsize < 2_000


@pytest.mark.parametrize(
    "expression",
    [
        "id gt 2.5 and id lt 6",
        "id ge 3 and id le 5",
        "id eq 4",
        "id gt 5.5 and id lt 5.9",
        "id gt 2 and id lt 6 and id ne 4",  # not a pure range: the predicate still applies
        "id lt 3 or id gt 9",
    ],
)
@pytest.mark.parametrize("changed", [False, True], ids=["generated", "updated-created-deleted"])
def test_id_range_filters_read_exactly_what_the_predicate_matches(expression, changed):
    """A filter made only of id comparisons is answered from the id range alone; the edges must be exact."""
    dataset = _orders(10)
    if changed:
        dataset.put("sop_orders", dict(dataset.get("sop_orders", 4), customer_document_no="X"))
        for source in (9, 3):  # created records: ids 11 and 12
            dataset.put(
                "sop_orders", dict(dataset.get("sop_orders", source), id=dataset.new_id("sop_orders"))
            )
        dataset.delete("sop_orders", 5)
    everything = dataset.scan("sop_orders", float("-inf"), float("inf"), float("-inf"), float("inf"))
    expected = [r["id"] for r in everything if matches_filter(expression, r)]
    assert _page(dataset, {"$filter": expression, "$orderby": "id"}) == expected


def matches_filter(expression: str, record: dict) -> bool:
    from airflow_provider_sage200.emulator.data import ENUMS, SCHEMAS
    from airflow_provider_sage200.emulator.odata import compile_filter, parse_filter

    return compile_filter(parse_filter(expression), SCHEMAS["sop_orders"], ENUMS)(record)


def test_unshaped_pages_are_the_stored_records_and_shaped_ones_are_copies():
    dataset = _orders(5)
    from airflow_provider_sage200.emulator.queries import run_collection

    plain = run_collection("sop_orders", dataset, {"$filter": "id le 2"}, 5000, 500, "error")
    assert plain == [dataset.get("sop_orders", 1), dataset.get("sop_orders", 2)]
    selected = run_collection("sop_orders", dataset, {"$select": "id,lines"}, 5000, 500, "error")
    selected[0]["lines"] = None
    assert dataset.get("sop_orders", 1)["lines"]
