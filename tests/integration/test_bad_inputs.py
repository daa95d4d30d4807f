"""A catalogue of bad inputs: what the DAG author sees, and what is guaranteed not to happen.

Every case runs against the emulator over HTTP and a real Airflow (SQLite) metastore, through the public surface
(``Sage200GetOperator.execute``, ``Sage200Operator.execute``, ``Sage200Hook``), and asserts:

* the exception type (exactly) and a distinctive part of its message, which names the field and what would
  be right;
* exactly which requests reached Sage 200 or Sage ID, by route, from the emulator's counters (usually none);
* that nothing was written: the export's output directory holds no file, not even a temporary one;
* that the stored token is unchanged (or, when a refresh happened, correctly rotated) and no secret is in the
  message.

docs/reliability.md ("Bad inputs") is the same catalogue as a table; keep the two in step.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from airflow_provider_sage200.emulator.config import SITE_B
from airflow_provider_sage200.exceptions import (
    Sage200AuthError,
    Sage200ClientError,
    Sage200ConfigError,
    Sage200ReauthorizationRequired,
    Sage200ServerError,
)
from airflow_provider_sage200.hooks.sage200 import Sage200Hook
from airflow_provider_sage200.odata import ge
from airflow_provider_sage200.operators.sage200 import Sage200GetOperator, Sage200Operator
from airflow_provider_sage200.token_provider import Sage200TokenProvider
from tests.conftest import CONN_ID, connection_json, consent

FAR_FUTURE = 4_102_444_800  # 2100-01-01


@dataclass
class World:
    """What a case can change before it acts: the connection, the token Variable, the emulator, the disk."""

    emulator: Any
    monkeypatch: pytest.MonkeyPatch
    tmp: Path
    variable: str

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def reconnect(self, **changes: Any) -> None:
        """Replace the connection (same token Variable); ``login``/``password`` None removes them."""
        conn = json.loads(connection_json(self.emulator, token_variable=self.variable))
        for key in ("login", "password"):
            if key in changes:
                conn[key] = changes.pop(key)
        conn["extra"] |= changes
        self.monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        Sage200TokenProvider.clear_cache()

    def store_token(self, value: str | dict[str, Any]) -> None:
        from airflow.models.variable import Variable

        Variable.set(self.variable, value if isinstance(value, str) else json.dumps(value))
        Sage200TokenProvider.clear_cache()

    def stored_token(self) -> str | None:
        from airflow.models.variable import Variable

        return Variable.get(self.variable, default_var=None)

    def expire_access_token(self, **changes: Any) -> None:
        """Make the hook refresh before its next call (the stored access token looks expired)."""
        token = json.loads(self.stored_token() or "{}")
        self.store_token(token | {"expires_at": 0} | changes)

    def export(self, endpoint: str = "sop_orders", query: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """What a DAG's export task does: the operator, run to a file in ``out``."""
        kwargs.setdefault("output_uri", str(self.out / "sop_orders.jsonl"))
        operator = Sage200GetOperator(task_id="export", endpoint=endpoint, query=query, **kwargs)
        return operator.execute({})

    def post(self, endpoint: str = "customers", body: dict[str, Any] | None = None) -> Any:
        operator = Sage200Operator(
            task_id="push", endpoint=endpoint, json=body or {"reference": "BAD0001", "name": "Bad Ltd"}
        )
        return operator.execute({})


@dataclass(frozen=True)
class Case:
    id: str
    act: Callable[[World], Any]
    error: type[Exception]
    message: str  # a regular expression searched in str(exception)
    setup: Callable[[World], Any] | None = None
    sent: dict[str, int] = field(default_factory=dict)  # requests that reached the emulator, by route
    consent: bool = True
    token_kept: bool = True  # the stored token is what it was before the act (but for a recorded rejection)
    consent_rejected: str | None = None  # the Sage ID error the act records in the token Variable


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unwritable(world: World) -> Any:
    blocker = world.tmp / "exports"
    blocker.write_text("a file where the export directory should be")
    try:
        return world.export(output_uri=str(blocker / "2026-01-02" / "sop_orders.jsonl"))
    finally:
        assert blocker.read_text() == "a file where the export directory should be"


def _no_pyarrow(world: World) -> Any:
    world.monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now raises ImportError
    return world.export(output_uri=str(world.out / "sop_orders.parquet"), output_format="parquet")


GUIDANCE = r"Run `sage200 auth login --conn-id sage200_default`"

CASES = [
    # -- the connection ------------------------------------------------------------------------------
    Case(
        "connection-without-client-id",
        setup=lambda w: w.reconnect(login=None),
        act=lambda w: w.export(),
        error=Sage200ConfigError,
        message=r"Connection 'sage200_default' has no Client ID: put the Sage ID client id in the 'login' field",
    ),
    Case(
        "connection-without-client-secret",
        setup=lambda w: w.reconnect(password=None),
        act=lambda w: w.export(),
        error=Sage200ConfigError,
        message=r"has no Client Secret: put the Sage ID client secret in the 'password' field",
    ),
    Case(
        "unknown-edition",
        setup=lambda w: w.reconnect(edition="enterprise"),
        act=lambda w: w.export(),
        error=Sage200ConfigError,
        message=r"field 'edition' is 'enterprise'; use 'standard' \(Sage 200 Standard\) or 'professional'",
    ),
    Case(
        "company-id-not-an-integer",
        setup=lambda w: w.reconnect(company_id="Demo Company Ltd"),
        act=lambda w: w.export(),
        error=Sage200ConfigError,
        message=r"field 'company_id' is 'Demo Company Ltd'; it must be the integer company id from `sage200 sites`",
    ),
    Case(
        "malformed-site-id",
        setup=lambda w: w.reconnect(site_id="DEMO"),
        act=lambda w: w.export(),
        error=Sage200ConfigError,
        message=r"field 'site_id' is 'DEMO'; it must be the site GUID from `sage200 sites`",
    ),
    Case(
        "missing-site-and-company",
        setup=lambda w: w.reconnect(site_id=None, company_id=None),
        act=lambda w: w.export(),
        error=Sage200ConfigError,
        message=r"has no site_id and company_id: every Sage 200 call except 'sites' needs X-Site and X-Company",
    ),
    Case(
        "unreachable-api-url",
        setup=lambda w: w.reconnect(api_url=f"http://127.0.0.1:{closed_port()}/uk/sage200extra/accounts/v1/"),
        act=lambda w: w.export(),
        error=Sage200ServerError,
        message=(
            r"failed \(no response\): connection failed to http://127\.0\.0\.1:\d+; check the connection's "
            r"api_url and that this worker can reach that host \(gave up after 6 attempts"
        ),
    ),
    Case(
        "plain-http-api-url-for-a-remote-host",
        setup=lambda w: w.reconnect(api_url="http://api.columbus.sage.com/uk/sage200extra/accounts/v1/"),
        act=lambda w: w.export(),
        error=Sage200ConfigError,
        message=r"field 'api_url' uses plain http:// for 'api.columbus.sage.com'; Sage ID and Sage 200 need https://",
    ),
    Case(
        "plain-http-token-url-for-a-remote-host",
        setup=lambda w: w.reconnect(token_url="http://id.sage.com/oauth/token"),
        act=lambda w: w.export(),
        error=Sage200ConfigError,
        message=r"field 'token_url' uses plain http:// for 'id.sage.com'",
    ),
    # -- the token Variable --------------------------------------------------------------------------
    Case(
        "token-variable-missing",
        consent=False,
        act=lambda w: w.export(),
        error=Sage200ReauthorizationRequired,
        message=r"No Sage 200 token stored for connection 'sage200_default' \(Variable 'sage200_token__\w+'\)\. "
        + GUIDANCE,
    ),
    Case(
        "token-variable-not-json",
        setup=lambda w: w.store_token("at_pasted-access-token-instead-of-the-json"),
        act=lambda w: w.export(),
        error=Sage200AuthError,
        message=r"Variable 'sage200_token__\w+' does not hold JSON\. It must hold the token written by "
        r"`sage200 auth login`",
    ),
    Case(
        "token-variable-refresh-token-not-a-string",
        setup=lambda w: w.store_token(
            {"access_token": "x", "refresh_token": 12345, "expires_at": FAR_FUTURE}
        ),
        act=lambda w: w.export(),
        error=Sage200AuthError,
        message=r"does not hold a Sage 200 token \(a JSON object with a string 'refresh_token'\)",
    ),
    Case(
        "token-variable-expiry-not-a-number",
        setup=lambda w: w.store_token({"access_token": "x", "refresh_token": "y", "expires_at": "tomorrow"}),
        act=lambda w: w.export(),
        error=Sage200AuthError,
        message=r"field 'expires_at' must be epoch seconds \(a number\)",
    ),
    Case(
        "refresh-token-past-its-fixed-expiry",
        setup=lambda w: w.expire_access_token(refresh_token_expires_at=int(time.time()) - 60),
        act=lambda w: w.export(),
        error=Sage200ReauthorizationRequired,
        message=r"refresh token of connection 'sage200_default' expired at its fixed expiry \(\d{4}-\d\d-\d\d "
        r"\d\d:\d\d UTC\)\. " + GUIDANCE,
    ),
    # -- the query -----------------------------------------------------------------------------------
    Case(
        "unknown-odata-option",
        act=lambda w: w.export(query={"filter": "id gt 5"}),
        error=Sage200ConfigError,
        message=r"Unknown OData option 'filter' in query\. Did you mean '\$filter'\? Sage 200 accepts: \$filter, ",
    ),
    Case(
        "top-over-5000",
        act=lambda w: w.export(query={"$top": 6000}),
        error=Sage200ConfigError,
        message=r"\$top is 6000; Sage 200 returns at most 5000 records per request \(use 1-5000\)",
    ),
    Case(
        "negative-skip",
        act=lambda w: w.export(query={"$orderby": "id", "$skip": -500}),
        error=Sage200ConfigError,
        message=r"\$skip is -500; it must be a whole number, 0 or more",
    ),
    Case(
        "naive-datetime-in-filter-builder",
        act=lambda w: w.export(query={"$filter": ge("date_time_updated", datetime(2026, 1, 2))}),
        error=Sage200ConfigError,
        message=r"datetime 2026-01-02T00:00:00 has no time zone; Sage 200 filters need UTC\. Pass an aware datetime",
    ),
    Case(
        "naive-datetime-in-a-hand-written-filter",
        act=lambda w: w.export(query={"$filter": "date_time_updated ge 2026-01-02T00:00:00"}),
        error=Sage200ClientError,
        message=r"GET sop_orders failed \(HTTP 400\): The query is not valid\. \$filter: datetime "
        r"'2026-01-02T00:00:00' must be in UTC with a 'Z' suffix",
        sent={"GET sop_orders": 1},
    ),
    Case(
        "skip-without-orderby",
        act=lambda w: w.export(query={"$skip": 500}),
        error=Sage200ConfigError,
        message=r"\$skip needs \$orderby: Sage 200 rejects offset paging without an explicit order",
    ),
    Case(
        "orderby-on-two-fields",
        act=lambda w: w.export(query={"$orderby": "document_date desc, id"}),
        error=Sage200ConfigError,
        message=r"\$orderby is 'document_date desc, id'; Sage 200 orders by one field",
    ),
    # -- the endpoint --------------------------------------------------------------------------------
    Case(
        "endpoint-with-a-leading-slash",
        act=lambda w: w.export(endpoint="/sop_orders"),
        error=Sage200ConfigError,
        message=r"endpoint '/sop_orders' starts with '/'; write it without the leading slash, e.g. 'sop_orders'",
    ),
    Case(
        "endpoint-that-is-a-full-url",
        act=lambda w: w.export(
            endpoint="https://api.columbus.sage.com/uk/sage200extra/accounts/v1/sop_orders"
        ),
        error=Sage200ConfigError,
        message=r"is a full URL; give the path relative to the API base URL \(e\.g\. 'sop_orders'\)",
    ),
    Case(
        "endpoint-with-dot-dot",
        act=lambda w: w.export(endpoint="sop_orders/../../sage200/accounts/v1/customers"),
        error=Sage200ConfigError,
        message=r"contains '\.\.'; only plain resource paths are allowed",
    ),
    Case(
        "endpoint-with-spaces",
        act=lambda w: w.export(endpoint="sop orders"),
        error=Sage200ConfigError,
        message=r"endpoint 'sop orders' is not a Sage 200 resource path: use letters, digits and '_' separated "
        r"by '/', without spaces",
    ),
    Case(
        "endpoint-with-a-query-string",
        act=lambda w: w.export(endpoint="sop_orders?$top=5"),
        error=Sage200ConfigError,
        message=r"contains a query string; pass OData options in `query` instead",
    ),
    # -- the output ----------------------------------------------------------------------------------
    Case(
        "unknown-output-format",
        act=lambda w: w.export(output_format="xlsx"),
        error=Sage200ConfigError,
        message=r"output_format 'xlsx' is not supported; use one of jsonl, json, csv, parquet",
    ),
    Case(
        "unwritable-output-location",
        act=_unwritable,
        error=Sage200ConfigError,
        message=r"Cannot write to output location '.*exports/2026-01-02'",
    ),
    Case(
        "parquet-without-pyarrow",
        act=_no_pyarrow,
        error=Sage200ConfigError,
        message=r"output_format='parquet' needs pyarrow: pip install 'airflow-provider-sage200\[parquet\]' "
        r"\(or use 'jsonl'\)",
    ),
    Case(
        "count-to-a-file",
        act=lambda w: w.export(query={"$count": True}),
        error=Sage200ConfigError,
        message=r"\$count returns a number, not records; it cannot be written to output_uri",
    ),
    Case(
        "post-without-a-body",
        act=lambda w: Sage200Operator(task_id="push", endpoint="customers", method="POST").execute({}),
        error=Sage200ConfigError,
        message=r"POST customers needs a json body",
    ),
    # -- what Sage answers ---------------------------------------------------------------------------
    Case(
        "sage-answers-400",
        act=lambda w: w.export(query={"$filter": "customer_id eq 'abc'"}),
        error=Sage200ClientError,
        message=r"GET sop_orders failed \(HTTP 400\): The query is not valid\. \$filter: 'customer_id' is a int "
        r"field; 'abc' is not a int",
        sent={"GET sop_orders": 1},
    ),
    Case(
        "field-the-resource-lacks",
        act=lambda w: w.export(query={"$filter": "custmer_id eq 1"}),
        error=Sage200ConfigError,
        message=r"\$filter: sop_orders has no field 'custmer_id'\. Did you mean 'customer_id'\?",
    ),
    Case(
        "sage-answers-400-to-a-write",
        act=lambda w: w.post(body={"name": "No Reference Ltd"}),
        error=Sage200ClientError,
        message=r"POST customers failed \(HTTP 400\): customers: field 'reference' is required",
        sent={"POST customers": 1},
    ),
    Case(
        "sage-answers-401-even-after-a-refresh",
        setup=lambda w: w.emulator.client.configure(user_api_enabled=False),
        act=lambda w: w.export(),
        error=Sage200AuthError,
        message=r"Sage 200 GET sop_orders answered 401 \(Authorization has been denied for this request\.\) even "
        r"with a freshly refreshed token\. Check that the Sage ID user is enabled for API access",
        sent={"GET sop_orders": 2, "POST oauth/token": 1},
        token_kept=False,  # the one refresh rotated it (checked below)
    ),
    Case(
        "sage-answers-403-wrong-site",
        setup=lambda w: w.reconnect(site_id=SITE_B, company_id=1),
        act=lambda w: w.export(),
        error=Sage200ClientError,
        message=r"failed \(HTTP 403\): The user does not have access to this site and company\. Check the "
        r"connection's site_id and company_id: `sage200 sites` lists the site/company pairs",
        sent={"GET sop_orders": 1},
    ),
    Case(
        "sage-answers-404-wrong-edition",
        setup=lambda w: (
            w.emulator.client.configure(tenant_edition="professional"),
            w.reconnect(edition="standard", api_url=w.emulator.api_url("standard")),
        ),
        act=lambda w: w.export(),
        error=Sage200ClientError,
        message=r"GET sop_orders failed \(HTTP 404\): Resource not found\. Check the endpoint name, and the "
        r"connection's edition: Sage 200 Standard is 'standard' \(/uk/sage200/\), Professional is 'professional'",
        sent={"GET sop_orders": 1},
    ),
    Case(
        "sage-answers-404-unknown-resource",
        act=lambda w: w.export(endpoint="sop_order"),
        error=Sage200ClientError,
        message=r"GET sop_order failed \(HTTP 404\): No resource 'sop_order' in this API\. Check the endpoint name",
        sent={"GET sop_order": 1},
    ),
    Case(
        "gateway-html-error-page-on-a-read",
        setup=lambda w: w.emulator.client.set_faults(rate_html=1.0),
        act=lambda w: w.export(),
        error=Sage200ServerError,
        message=r"GET sop_orders failed \(HTTP 502\): the gateway returned an HTML error page \(Bad Gateway\) "
        r"\(gave up after 6 attempts",
        sent={"GET sop_orders": 6},  # retried: a read is safe to repeat
    ),
    Case(
        "gateway-html-error-page-on-a-write",
        setup=lambda w: w.emulator.client.set_faults(script=["html"]),
        act=lambda w: w.post(),
        error=Sage200ServerError,
        message=r"POST customers failed \(HTTP 502\): the gateway returned an HTML error page \(Bad Gateway\)$",
        sent={"POST customers": 1},  # not retried: the write may have happened
    ),
    Case(
        "non-json-body",
        setup=lambda w: w.emulator.client.set_faults(script=["signin"]),
        act=lambda w: w.export(),
        error=Sage200ServerError,
        message=r"GET sop_orders failed \(HTTP 200\): the response is an HTML page \(Content-Type 'text/html; "
        r"charset=utf-8'\), not JSON: the connection's api_url points at a web page or a sign-in proxy",
        sent={"GET sop_orders": 1},
    ),
    Case(
        "truncated-body",
        setup=lambda w: w.emulator.client.set_faults(rate_truncate=1.0),
        act=lambda w: w.export(),
        error=Sage200ServerError,
        message=r"GET sop_orders failed \(no response\): the response is not valid JSON \(Content-Type "
        r"'application/json', 32 bytes\): the body was cut short .*\(gave up after 6 attempts",
        sent={"GET sop_orders": 6},
    ),
    Case(
        "connection-dropped-mid-write",
        setup=lambda w: w.emulator.client.set_faults(script=["drop"]),
        act=lambda w: w.post(),
        error=Sage200ServerError,
        message=r"POST customers failed \(no response\): the connection broke while reading the response; the "
        r"server may or may not have processed this write, so it was not repeated",
        sent={"POST customers": 1},
    ),
    Case(
        "invalid-grant-on-refresh",
        setup=lambda w: (w.expire_access_token(), w.emulator.client.advance_clock(91 * 86400)),
        act=lambda w: w.export(),
        error=Sage200ReauthorizationRequired,
        message=r"Sage ID rejected the refresh token for connection 'sage200_default': invalid_grant \(Refresh "
        r"token has expired\.\)\. The refresh token is expired, revoked or already used\. " + GUIDANCE,
        sent={"POST oauth/token": 1},
        consent_rejected="invalid_grant",
    ),
    Case(
        "invalid-client-on-refresh",
        setup=lambda w: (
            w.expire_access_token(),
            w.emulator.client.configure(client_secret="rotated-in-sage"),
        ),
        act=lambda w: w.export(),
        error=Sage200AuthError,
        message=r"Sage ID rejected the client credentials of connection 'sage200_default': invalid_client "
        r"\(Client authentication failed \(unknown client or wrong secret\)\.\)\. Check the Client ID \(login\) "
        r"and Client Secret \(password\)",
        sent={"POST oauth/token": 1},
        consent_rejected="invalid_client",
    ),
]


def _routes(emulator: Any) -> Counter[str]:
    return Counter(emulator.client.stats()["requests_by_route"])


class StoredToken(NamedTuple):
    text: str | None  # the Variable as stored, less any recorded rejection
    rejected: str | None  # the Sage ID error of a recorded rejection


def _without_rejection(stored: str | None) -> StoredToken:
    try:
        token = json.loads(stored) if stored else None
    except ValueError:
        return StoredToken(stored, None)
    if not isinstance(token, dict):
        return StoredToken(stored, None)
    rejected = token.pop("consent_rejected", None) or {}
    return StoredToken(json.dumps(token, sort_keys=True), rejected.get("error"))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, emulator, sage200_conn, tmp_path, monkeypatch):
    world = World(emulator, monkeypatch, tmp_path, Sage200Hook(sage200_conn).config.token_variable)
    if case.consent:
        consent(emulator)
    if case.setup is not None:
        case.setup(world)
    token_before = world.stored_token()
    before = _routes(emulator)

    with pytest.raises(case.error) as raised:
        case.act(world)

    assert type(raised.value) is case.error, f"{type(raised.value).__name__}: {raised.value}"
    text = str(raised.value)
    assert re.search(case.message, text), f"message was: {text}"
    sent = _routes(emulator) - before
    assert dict(sent) == case.sent, f"requests that reached the emulator: {dict(sent)}"
    left = sorted(p.name for p in world.out.rglob("*")) if world.out.exists() else []
    assert left == [], f"files left in the output directory: {left}"
    issued = emulator.client.issued_tokens()
    secrets = [*issued["access_tokens"], *issued["refresh_tokens"], *issued["auth_codes"], "emulator-secret"]
    assert [s for s in secrets if s in text] == []
    stored = _without_rejection(world.stored_token())
    assert stored.rejected == case.consent_rejected, stored
    if case.token_kept:
        assert stored.text == _without_rejection(token_before).text
    else:
        rotated = json.loads(world.stored_token())
        assert rotated["generation"] == json.loads(token_before)["generation"] + 1


def test_catalogue_is_big_enough_and_documented():
    assert len(CASES) >= 30
    doc = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    missing = [case.id for case in CASES if f"`{case.id}`" not in doc]
    assert missing == [], f"cases missing from docs/reliability.md: {missing}"
