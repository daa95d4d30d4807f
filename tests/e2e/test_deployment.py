"""End to end in a real deployment: API server, scheduler (LocalExecutor), DAG processor and triggerer on SQLite,
with the emulator, driven through Airflow's REST API.

Real task processes forbid metadata-DB access from task code, so this proves the provider obeys Airflow 3's rules
(dag.test() would not catch it); the deferrable sensor waits in the real triggerer. Every process started here is
stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_sage200.emulator import EmulatorConfig, EmulatorServer
from airflow_provider_sage200.emulator.server import free_port

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
AIRFLOW = [sys.executable, "-m", "airflow"]


class Deployment:
    def __init__(self, home: Path, emulator: EmulatorServer) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dags = home / "dags"
        self.exports = home / "exports"
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        (home / "passwords.json").write_text(json.dumps({"admin": "e2e-password"}))
        self.env |= {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__FERNET_KEY": "3x3lq8yJ9uQfAZ8d1o4w9nF2m1cT7eH5kL0pR6sV2bY=",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-jwt-secret-e2e-jwt-secret-e2e",
            "AIRFLOW__API__SECRET_KEY": "e2e-secret-key",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            # Only the runs this test triggers: a scheduled run with the same logical date would collide.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
        self.emulator = emulator
        self.token: str | None = None

    def airflow(self, *args: str) -> str:
        return subprocess.run(
            [*AIRFLOW, *args], env=self.env, check=True, capture_output=True, text=True
        ).stdout

    def start(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.processes[name] = subprocess.Popen(
            [*AIRFLOW, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def wait_for(self, what: str, check, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except requests.RequestException:
                pass
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"{name} exited:\n{(self.home / f'{name}.log').read_text()[-4000:]}")
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}")

    def run_dag(self, dag_id: str, conf: dict | None = None, logical_date: datetime | None = None) -> dict:
        assert self.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False}).ok
        body = {"conf": conf or {}, "logical_date": (logical_date or datetime.now(UTC)).isoformat()}
        created = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        assert created.ok, created.text
        run_id = created.json()["dag_run_id"]
        state: dict = {}

        def finished() -> bool:
            state.update(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json())
            return state["state"] in ("success", "failed")

        self.wait_for(f"{dag_id} to finish", finished, timeout=300)
        tasks = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()
        state["tasks"] = {t["task_id"]: t["state"] for t in tasks["task_instances"]}
        return state


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e-airflow")
    emulator = EmulatorServer(EmulatorConfig(sop_orders=5_000, customers=200), port=0).start()
    deployment = Deployment(home, emulator)
    try:
        deployment.dags.mkdir()
        for source in [*(REPO / "example_dags").glob("*.py"), Path(__file__).with_name("e2e_dags.py")]:
            shutil.copy(source, deployment.dags)
        deployment.airflow("db", "migrate")
        site = emulator.client.sites()[0]
        conn = {
            "conn_type": "sage200",
            "login": "emulator-client",
            "password": "emulator-secret",
            "extra": {
                "api_url": emulator.api_url(),
                "auth_url": emulator.auth_url,
                "token_url": emulator.token_url,
                "site_id": site["site_id"],
                "company_id": site["company_id"],
            },
        }
        deployment.airflow("connections", "add", "sage200_default", "--conn-json", json.dumps(conn))
        deployment.airflow("pools", "set", "sage200_token", "1", "Sage 200 token refresh")
        deployment.airflow("variables", "set", "sage200_export_base_uri", str(deployment.exports))
        consent_with_the_cli(deployment)
        for name, args in {
            "api-server": ("api-server", "--port", str(deployment.port)),
            "scheduler": ("scheduler",),
            "dag-processor": ("dag-processor",),
            "triggerer": ("triggerer",),
        }.items():
            deployment.start(name, *args)
        deployment.wait_for(
            "the API server", lambda: requests.get(f"{deployment.url}/api/v2/monitor/health").ok
        )
        login = requests.post(
            f"{deployment.url}/auth/token", json={"username": "admin", "password": "e2e-password"}, timeout=30
        )
        assert login.ok, login.text
        deployment.token = login.json()["access_token"]
        deployment.wait_for(
            "the DAGs to be parsed",
            lambda: all(
                deployment.api("GET", f"/api/v2/dags/{d}").ok
                for d in ("sage200_export_sales_orders", "sage200_token_maintenance", "e2e_deferrable_sensor")
            ),
        )
        yield deployment
    finally:
        deployment.stop()
        emulator.stop()


def consent_with_the_cli(deployment: Deployment) -> None:
    """`sage200 auth login`, with this test playing the person's browser."""
    login = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_sage200.cli.main",
            "auth",
            "login",
            "--no-browser",
            "--timeout",
            "60",
        ],
        env=deployment.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = None
    for line in login.stdout:
        if line.strip().startswith("http"):
            url = line.strip()
        if line.startswith("Waiting"):
            break
    redirect = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    assert parse_qs(urlsplit(redirect).query)["state"]
    requests.get(redirect, timeout=10)
    login.communicate(timeout=60)
    assert login.returncode == 0


def test_export_dag_runs_on_real_workers_and_writes_files(deployment):
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    result = deployment.run_dag("sage200_export_sales_orders", logical_date=day - timedelta(days=1))
    assert result["state"] == "success", result
    files = list((deployment.exports / "sop_orders").glob("*.*"))
    assert len(files) == 1 and files[0].stat().st_size > 0


def test_token_maintenance_runs_in_its_pool(deployment):
    result = deployment.run_dag("sage200_token_maintenance")
    assert result["state"] == "success", result
    assert deployment.emulator.client.stats()["invalid_grant"] == 0


def test_deferrable_sensor_waits_in_the_real_triggerer_until_consent(deployment):
    """No token: the sensor defers; the real triggerer polls (read-only) until a person consents."""
    deployment.airflow("variables", "delete", "sage200_token__sage200_default")
    dag_id = "e2e_deferrable_sensor"
    assert deployment.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False}).ok
    created = deployment.api(
        "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": datetime.now(UTC).isoformat()}
    )
    run_id = created.json()["dag_run_id"]
    task = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/token_ok_deferred"
    deployment.wait_for(
        "the sensor to defer", lambda: deployment.api("GET", task).json().get("state") == "deferred"
    )
    consent_with_the_cli(deployment)
    run = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"
    deployment.wait_for(
        "the run to finish", lambda: deployment.api("GET", run).json()["state"] in ("success", "failed")
    )
    assert deployment.api("GET", run).json()["state"] == "success"
    assert "Trigger fired event" in "".join(
        p.read_text() for p in (deployment.home / "logs").rglob("*trigger*.log")
    )


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
