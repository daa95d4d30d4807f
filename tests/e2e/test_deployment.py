"""End to end in a real deployment (tests/e2e/conftest.py: the Airflow line of the test process, so ``make compat``
runs these on every older line), with the emulator, driven through Airflow's REST API.

On 3.x real task processes forbid metadata-DB access from task code, so this proves the provider obeys Airflow 3's
rules (dag.test() would not catch it); the deferrable sensor waits in the real triggerer. Every process started
here is stopped by its PID.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from airflow_provider_sage200.version_compat import AIRFLOW_V_3_0_PLUS
from tests.e2e.conftest import consent_with_the_cli

pytestmark = pytest.mark.e2e
# The Airflow 3 token page with a bearer token and its own CSRF rule; 2.11's FAB page: test_token_page_fab.py, and
# in a real webserver test_browser.py.
airflow_3 = pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="Airflow 3's token page (FastAPI app)")


def test_export_dag_runs_on_real_workers_and_writes_files(deployment):
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    result = deployment.run_dag("sage200_export_sales_orders", logical_date=day - timedelta(days=1))
    assert result["state"] == "success", result
    files = list((deployment.exports / "sop_orders").glob("*.*"))
    assert len(files) == 1 and files[0].stat().st_size > 0
    # The real worker's Asset event says what arrived; the load DAG (run by hand: the latest event) reads it
    # through the Execution API and loads exactly that file.
    events = deployment.asset_events("sage200_export_sales_orders")
    extra = max(events, key=lambda event: event["timestamp"])["extra"]
    assert extra["path"] == str(files[0]) and extra["bytes"] == files[0].stat().st_size
    assert extra["data_interval_end"] == (day - timedelta(days=1)).isoformat()
    loaded = deployment.run_dag("sage200_load_sales_orders")
    assert loaded["state"] == "success", loaded
    xcom = deployment.xcom("sage200_load_sales_orders", loaded["dag_run_id"], "load_sales_orders")
    assert xcom["warehouse_rows"] == extra["records"]
    assert [entry["path"] for entry in xcom["loaded"]] == [extra["path"]]


def test_token_maintenance_runs_in_its_pool(deployment):
    result = deployment.run_dag("sage200_token_maintenance")
    assert result["state"] == "success", result
    assert deployment.emulator.client.stats()["invalid_grant"] == 0


def test_deferrable_sensor_waits_in_the_real_triggerer_until_consent(deployment):
    """No token: the sensor defers; the real triggerer polls (read-only) until a person consents."""
    deployment.airflow("variables", "delete", "sage200_token__sage200_default")
    dag_id = "e2e_deferrable_sensor"
    run_id = deployment.trigger(dag_id)
    task = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/token_ok_deferred"
    deployment.wait_for(
        "the sensor to defer", lambda: deployment.api("GET", task).json().get("state") == "deferred"
    )
    consent_with_the_cli(deployment)
    assert deployment.wait_for_run(dag_id, run_id)["state"] == "success"
    fired = "Trigger fired event" if AIRFLOW_V_3_0_PLUS else "fired: TriggerEvent"
    assert fired in "".join(
        p.read_text()
        for p in [deployment.home / "triggerer.log", *(deployment.home / "logs").rglob("*trigger*")]
    )


@airflow_3
def test_token_page_refresh_and_new_consent(deployment):
    """The plugin page in the real API server: auth required, no secrets shown, refresh, consent, forged state."""
    page = f"{deployment.url}/sage200/"
    assert requests.get(page, timeout=30).status_code in (401, 403)
    auth = {"Authorization": f"Bearer {deployment.token}"}
    shown = requests.get(page, headers=auth, timeout=30)
    assert shown.ok and "sage200_default" in shown.text and "Refresh now" in shown.text
    issued = deployment.emulator.client.issued_tokens()
    assert not [t for t in issued["access_tokens"] + issued["refresh_tokens"] if t in shown.text]

    grants = deployment.emulator.client.stats()["token_grants"]
    refreshed = requests.post(
        f"{page}connections/sage200_default/refresh", headers=auth, allow_redirects=False, timeout=30
    )
    assert refreshed.status_code == 303 and "message=" in refreshed.headers["location"]
    after = deployment.emulator.client.stats()["token_grants"]
    assert after["refresh_token"] == grants["refresh_token"] + 1

    start = requests.post(
        f"{page}connections/sage200_default/authorize", headers=auth, allow_redirects=False, timeout=30
    )
    assert start.status_code == 303
    assert (
        "redirect_uri=" + requests.utils.quote(f"{deployment.url}/sage200/oauth/callback", safe="")
        in start.headers["location"]
    )
    callback = requests.get(start.headers["location"], allow_redirects=False, timeout=30).headers["location"]
    forged = callback.replace("state=", "state=forged")
    rejected = requests.get(forged, headers=auth, allow_redirects=False, timeout=30)
    assert "error=" in rejected.headers["location"]
    assert (
        deployment.emulator.client.stats()["token_grants"]["authorization_code"]
        == after["authorization_code"]
    )
    accepted = requests.get(callback, headers=auth, allow_redirects=False, timeout=30)
    assert "message=" in accepted.headers["location"], accepted.headers["location"]
    assert (
        deployment.emulator.client.stats()["token_grants"]["authorization_code"]
        == after["authorization_code"] + 1
    )


@airflow_3
def test_a_secret_masked_in_a_task_is_hidden_from_its_log_on_a_real_worker(deployment):
    """Inside a task the provider registers secrets with the Task SDK's masker only (not Airflow core's)."""
    from tests.e2e.e2e_dags import MASKING_PROBE

    assert deployment.run_dag("e2e_masking")["state"] == "success"
    log = "".join(p.read_text() for p in (deployment.home / "logs" / "dag_id=e2e_masking").rglob("*.log"))
    assert "a library logs ***" in log and "task code prints ***" in log
    assert MASKING_PROBE not in log


@airflow_3
def test_token_page_refuses_forged_posts_foreign_notices_and_a_spoofed_host(deployment):
    """Defect 13: a cookie-authenticated POST from another origin is refused; only notices the page sealed are
    shown; the OAuth callback URL comes from [api] base_url, whatever Host the request names."""
    page = f"{deployment.url}/sage200/"
    cookie = {"_token": deployment.token}
    grants = deployment.emulator.client.stats()["token_grants"]["refresh_token"]
    for origin in ("https://evil.example", None):
        headers = {"Origin": origin} if origin else {}
        forged = requests.post(
            f"{page}connections/sage200_default/refresh",
            cookies=cookie,
            headers=headers,
            allow_redirects=False,
            timeout=30,
        )
        assert forged.status_code == 403, (origin, forged.status_code)
    assert deployment.emulator.client.stats()["token_grants"]["refresh_token"] == grants
    own = requests.post(
        f"{page}connections/sage200_default/refresh",
        cookies=cookie,
        headers={"Origin": deployment.url},
        allow_redirects=False,
        timeout=30,
    )
    assert own.status_code == 303
    notice = requests.get(
        f"{deployment.url}/sage200/{own.headers['location'].lstrip('./')}", cookies=cookie, timeout=30
    )
    assert "sage200_default: Token refreshed." in notice.text

    spoofed = requests.get(
        page, params={"message": "Call +44 0000 to keep your token"}, cookies=cookie, timeout=30
    )
    assert spoofed.ok and "Call +44 0000" not in spoofed.text

    start = requests.post(
        f"{page}connections/sage200_default/authorize",
        cookies=cookie,
        headers={"Origin": deployment.url, "Host": "evil.example"},
        allow_redirects=False,
        timeout=30,
    )
    assert start.status_code == 303
    assert "evil.example" not in start.headers["location"]
    assert (
        requests.utils.quote(f"{deployment.url}/sage200/oauth/callback", safe="") in start.headers["location"]
    )
