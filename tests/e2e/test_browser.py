"""The Airflow UI in headless Chromium (Debian's package, driven by Playwright) against the real deployment.

Two journeys a person makes: adding a Sage 200 connection through "Add Connection" (Airflow 3.2+'s declarative
form), and renewing the token on the "Sage 200 tokens" page with "Get new token" and "Refresh now", on every line
(``make compat`` runs it on the older ones): Admin → Sage 200 tokens in the FAB webserver of 2.11 and in the
Airflow 3.1+ UI (an iframe), ``/sage200/`` itself on 3.0, which has no menu entry for plugin pages. Screenshots go to
the pytest temp dir, or to ``$SAGE200_SCREENSHOT_DIR`` (``make screenshots`` points it at ``docs/images``).
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from airflow_provider_sage200.connection import Sage200ConnectionConfig
from airflow_provider_sage200.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    DECLARATIVE_CONN_FIELDS,
)
from tests.e2e.conftest import ADMIN

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google, which this network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CONNECTION_LABELS = [
    "Client ID",
    "Client Secret",
    "Edition",
    "Site ID",
    "Company ID",
    "API base URL",
    "Authorization URL",
    "Token URL",
    "Scope",
    "Audience",
    "Redirect URI",
    "Subscription key",
    "Refresh token lifetime (days)",
    "Token Variable",
]


def expect(locator):
    from playwright.sync_api import expect

    return expect(locator)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(
            "browser tests skipped: playwright is not installed (it is in the dev extra: `make venv`)"
        )
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests skipped: Debian's chromium is not at {CHROMIUM}; `make browser` installs it with "
            "apt-get (needs root)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, deployment):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    log_in(page, deployment)
    yield page
    context.close()


def log_in(page, deployment) -> None:
    """Sign in as the admin: the simple auth manager's form on 3.x, FAB's on 2.11."""
    username, password = ADMIN
    if AIRFLOW_V_3_0_PLUS:
        page.goto(f"{deployment.url}/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{deployment.url}/")
    else:
        page.goto(f"{deployment.url}/login/")
        page.locator("#username").fill(username)
        page.locator("#password").fill(password)
        page.get_by_role("button", name="Sign In").click()
        page.wait_for_url(f"{deployment.url}/home")


def open_token_page(page, deployment):
    """Open "Sage 200 tokens" as a person would; returns what holds the page (the UI's iframe on 3.1+)."""
    if not AIRFLOW_V_3_0_PLUS:
        page.goto(f"{deployment.url}/home")
        page.locator(".navbar").get_by_role("link", name="Admin", exact=True).click()
        page.get_by_role("link", name="Sage 200 tokens").click()
        return page
    if not AIRFLOW_V_3_1_PLUS:
        page.goto(f"{deployment.url}/sage200/")
        return page
    page.goto(f"{deployment.url}/")
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name="Sage 200 tokens").click()
    return page.frame_locator("iframe")


def screenshot(page, name: str, tmp_path: Path, **kwargs) -> Path:
    folder = Path(os.environ.get("SAGE200_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), **kwargs)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank image
    return path


@pytest.mark.skipif(not DECLARATIVE_CONN_FIELDS, reason="the declarative connection form is Airflow 3.2+'s")
def test_add_connection_form_shows_the_sage200_fields_and_saves(page, deployment, tmp_path):
    emulator = deployment.emulator
    site = emulator.client.sites()[0]
    page.goto(f"{deployment.url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    form = page.get_by_role("dialog")
    form.get_by_label("Connection ID").fill("sage200_browser")
    form.get_by_role("combobox", name="Connection Type").fill("Sage 200")
    page.get_by_role("option", name="Sage 200", exact=True).click()
    form.get_by_label("Client ID").fill("emulator-client")
    form.get_by_label("Client Secret").fill("emulator-secret")
    form.get_by_role("button", name="Extra Fields", exact=True).click()

    labels = [re.sub(r"\s*\*?\s*$", "", text) for text in form.locator("label").all_inner_texts()]
    for label in CONNECTION_LABELS:
        assert label in labels, (label, labels)
    for hidden in ("Host", "Port", "Schema"):
        assert hidden not in labels

    # Airflow 3.3's form does not tie extra-field labels to their inputs (``for`` differs from ``id``).
    for field, value in {
        "site_id": site["site_id"],
        "company_id": str(site["company_id"]),
        "api_url": emulator.api_url(),
        "auth_url": emulator.auth_url,
        "token_url": emulator.token_url,
    }.items():
        form.locator(f"input[name='element_{field}']").fill(value)
    page.set_viewport_size({"width": 1400, "height": 1900})  # the whole form, for the docs
    screenshot(page, "connection-form.png", tmp_path)
    form.get_by_role("button", name="Save").click()
    form.wait_for(state="detached")

    saved = json.loads(deployment.airflow("connections", "get", "sage200_browser", "--output", "json"))[0]
    assert saved["conn_type"] == "sage200" and saved["login"] == "emulator-client"
    assert saved["password"] == "emulator-secret"

    from airflow.models.connection import Connection

    stored = Connection(conn_id="sage200_browser", conn_type="sage200", login=saved["login"], password="x")
    stored.set_extra(json.dumps(saved["extra_dejson"]))
    config = Sage200ConnectionConfig.from_connection(stored)
    assert config.api_url == emulator.api_url() and config.require_site() == (
        site["site_id"],
        int(site["company_id"]),
    )
    assert deployment.api("DELETE", "/connections/sage200_browser").ok


def test_token_page_get_new_token_and_refresh_in_the_ui(page, deployment, tmp_path):
    stats = deployment.emulator.client.stats
    grants = stats()["token_grants"]
    tokens = open_token_page(page, deployment)
    card = tokens.locator("section[data-conn-id='sage200_default']")
    card.wait_for()

    clicked = time.time()
    card.get_by_role("button", name="Get new token").click()
    notice = tokens.locator("p.message")
    expect(notice).to_contain_text("New token stored for sage200_default")
    assert stats()["token_grants"]["authorization_code"] == grants["authorization_code"] + 1
    status = card.locator("p.status").inner_text()
    expires = datetime.fromisoformat(re.search(r"Refresh token expires in \d+ days, at (\S+)\.", status)[1])
    assert 89.9 * 86400 < expires.timestamp() - clicked <= 90 * 86400 + 5
    assert "Access token expires in 59 minutes" in status or "Access token expires in 60 minutes" in status
    assert card.locator("ul.sites li").first.inner_text().startswith("Demo Company Ltd (X-Company 1")

    card.get_by_role("button", name="Refresh now").click()
    expect(notice).to_have_text("sage200_default: Token refreshed.")
    assert stats()["token_grants"]["refresh_token"] == grants["refresh_token"] + 1
    screenshot(page, "token-page.png", tmp_path)

    html = page.content() + "".join(frame.content() for frame in page.frames)
    issued = deployment.emulator.client.issued_tokens()
    assert not [t for t in issued["access_tokens"] + issued["refresh_tokens"] if t in html]
    assert "emulator-secret" not in html


def test_forged_callback_in_the_browser_changes_nothing(page, deployment):
    before = deployment.emulator.client.stats()["token_grants"]
    page.goto(f"{deployment.url}/sage200/oauth/callback?state=forged&code=stolen-code")
    expect(page.locator("body > p.error")).to_contain_text("Consent refused")
    assert deployment.emulator.client.stats()["token_grants"] == before
