"""A real Airflow deployment for the end-to-end tests, with the emulator; one per test session, every process
stopped by its PID. It runs the Airflow line of the test process (``make compat`` runs it on each older line):

* Airflow 3: API server, scheduler (LocalExecutor), DAG processor and triggerer on SQLite; the REST API is
  ``/api/v2`` with a JWT from the simple auth manager.
* Airflow 2.11: webserver, scheduler (LocalExecutor; it parses the DAGs itself) and triggerer on a fresh database of
  the machine's PostgreSQL (Airflow 2 runs only the SequentialExecutor on SQLite); the REST API is ``/api/v1`` with
  basic auth as a FAB admin user.

The deployment runs from a fresh venv holding **the built wheel** (and the test venv's resolved dependencies), with
its working directory outside the repository, so a file missing from the wheel fails here.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet

from airflow_provider_sage200.emulator import EmulatorConfig, EmulatorServer
from airflow_provider_sage200.emulator.server import free_port
from airflow_provider_sage200.version_compat import AIRFLOW_V_3_0_PLUS
from tests.distribution import build, imported_from, venv_with_wheel

REPO = Path(__file__).resolve().parents[2]
ADMIN = ("admin", "e2e-password")
#: The machine's PostgreSQL (started before every session and for CI), for Airflow 2.11's LocalExecutor.
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432"


def pytest_collection_modifyitems(items):
    # The secret scan reads what every other end-to-end test logged, so it runs last (a stable sort).
    items.sort(key=lambda item: item.get_closest_marker("runs_last") is not None)


class Deployment:
    def __init__(
        self, home: Path, emulator: EmulatorServer, python: Path, database_url: str | None = None
    ) -> None:
        self.home = home
        self.python = str(python)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dags = home / "dags"
        self.exports = home / "exports"
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW", "_AIRFLOW")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        self.env |= {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "20",
            "AIRFLOW__CORE__FERNET_KEY": "3x3lq8yJ9uQfAZ8d1o4w9nF2m1cT7eH5kL0pR6sV2bY=",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url or f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            # Only the runs this test triggers: a scheduled run with the same logical date would collide.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # Lease timings scaled for the soak's 5-second access tokens (the defaults suit Sage's real lifetime).
            "AIRFLOW__SAGE200__CLAIM_WRITE_LIMIT_SECONDS": "1.0",
            "AIRFLOW__SAGE200__CLAIM_SETTLE_SECONDS": "1.2",
            "AIRFLOW__SAGE200__LEASE_POLL_SECONDS": "0.2",
            "AIRFLOW__SAGE200__REFRESH_LEASE_SECONDS": "30",
        }
        if AIRFLOW_V_3_0_PLUS:
            self.api_root = "/api/v2"
            self.ui_process = "api-server"
            (home / "passwords.json").write_text(json.dumps(dict([ADMIN])))
            self.env |= {
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN[0]}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API_AUTH__JWT_SECRET": "e2e-jwt-secret-e2e-jwt-secret-e2e",
                # 3.0 signs an empty issuer list without one, which PyJWT refuses (/auth/token answered 500).
                "AIRFLOW__API_AUTH__JWT_ISSUER": "sage200-e2e",
                "AIRFLOW__API__SECRET_KEY": "e2e-secret-key",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            }
        else:
            self.api_root = "/api/v1"
            self.ui_process = "webserver"
            self.env |= {
                "AIRFLOW__WEBSERVER__BASE_URL": self.url,
                "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(self.port),
                "AIRFLOW__WEBSERVER__SECRET_KEY": "e2e-secret-key",
                "AIRFLOW__WEBSERVER__WORKERS": "2",
                # The tests log in more often than FAB's login rate limit (5 in 40 s) allows.
                "AIRFLOW__WEBSERVER__AUTH_RATE_LIMITED": "False",
                "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
                "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            }
        self.emulator = emulator
        self.launches: dict[str, tuple] = {}
        # Processes restarted when they exit (while wait_for runs), as a process supervisor would; counted.
        self.supervised: set[str] = set()
        self.restarts: Counter[str] = Counter()
        self.token: str | None = None
        self.verify: str | bool = True  # how the test process verifies the emulator's TLS certificate

    def airflow(self, *args: str) -> str:
        return subprocess.run(
            [self.python, "-m", "airflow", *args],
            env=self.env,
            cwd=self.home,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def start(self, name: str, *args: str, prefix: tuple[str, ...] = (), env: dict | None = None) -> None:
        """Start ``airflow <args>`` as ``name``, in a session of its own; ``prefix`` wraps the command (e.g. to run
        it in a network namespace) and must exec it, so the PID kept is Airflow's."""
        self.launches[name] = (args, prefix, env)
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        self.processes[name] = subprocess.Popen(
            [*prefix, self.python, "-m", "airflow", *args],
            env=env or self.env,
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, *names: str) -> None:
        """Stop the named processes (all without names): SIGTERM to each one's process group, then SIGKILL."""
        chosen = [self.processes[n] for n in names] if names else list(self.processes.values())
        for process in chosen:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in chosen:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def sage200(self, *args: str) -> str:
        """Run the ``sage200`` command against this deployment's metastore."""
        return subprocess.run(
            [self.python, "-m", "airflow_provider_sage200.cli.main", *args],
            env=self.env,
            cwd=self.home,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """Call the line's REST API (``path`` below ``/api/v2`` or ``/api/v1``) as the admin."""
        if AIRFLOW_V_3_0_PLUS:
            kwargs["headers"] = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        else:
            kwargs["auth"] = ADMIN
        return requests.request(method, f"{self.url}{self.api_root}{path}", timeout=30, **kwargs)

    def variable_row(self, key: str) -> dict | None:
        """A Variable's row as the metastore holds it (``val`` still encrypted), read by the test harness."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        try:
            with engine.connect() as db:
                query = "SELECT val, is_encrypted, description FROM variable WHERE key = :key"
                row = db.execute(sqlalchemy.text(query), {"key": key}).mappings().first()
        finally:
            engine.dispose()
        return dict(row) if row else None

    def variable_value(self, key: str) -> str | None:
        """A Variable's value, decrypted with the deployment's Fernet key; None when it is not set."""
        row = self.variable_row(key)
        if row is None:
            return None
        if not row["is_encrypted"]:
            return row["val"]
        return Fernet(self.env["AIRFLOW__CORE__FERNET_KEY"]).decrypt(row["val"].encode()).decode()

    def asset_events(self, source_dag_id: str) -> list[dict]:
        """The Asset events (Dataset events on 2.11) a DAG's tasks emitted."""
        kind = "assets" if AIRFLOW_V_3_0_PLUS else "datasets"
        answer = self.api("GET", f"/{kind}/events", params={"source_dag_id": source_dag_id})
        return answer.json()[f"{kind[:-1]}_events"]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> object:
        """A task's ``return_value`` XCom, as the worker stored it (JSON)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        value = self.api("GET", path, params={} if AIRFLOW_V_3_0_PLUS else {"stringify": "false"})
        value = value.json()["value"]
        return json.loads(value) if isinstance(value, str) else value

    def wait_for(self, what: str, check, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except requests.RequestException:
                pass
            for name, process in list(self.processes.items()):
                if process.poll() is None:
                    continue
                if name not in self.supervised:
                    raise AssertionError(f"{name} exited:\n{(self.home / f'{name}.log').read_text()[-4000:]}")
                # What systemd's Restart=always or a Kubernetes pod's restartPolicy does for a real deployment.
                self.restarts[name] += 1
                args, prefix, env = self.launches[name]
                self.start(name, *args, prefix=prefix, env=env)
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}")

    def run_dag(
        self,
        dag_id: str,
        conf: dict | None = None,
        logical_date: datetime | None = None,
        timeout: float = 300,
    ) -> dict:
        return self.wait_for_run(dag_id, self.trigger(dag_id, conf, logical_date), timeout)

    def trigger(self, dag_id: str, conf: dict | None = None, logical_date: datetime | None = None) -> str:
        """Unpause ``dag_id``, start a run and return its id."""
        assert self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False}).ok
        body = {"conf": conf or {}, "logical_date": (logical_date or datetime.now(UTC)).isoformat()}
        created = self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)
        assert created.ok, created.text
        return created.json()["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        """Wait for a run to finish; its state with its task instances' states and hostnames."""
        state: dict = {}

        def finished() -> bool:
            state.update(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json())
            return state["state"] in ("success", "failed")

        self.wait_for(f"{dag_id} to finish", finished, timeout=timeout)
        tasks = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances").json()
        state["tasks"] = {t["task_id"]: t["state"] for t in tasks["task_instances"]}
        state["task_instances"] = [
            (t["task_id"], t["map_index"], t["state"]) for t in tasks["task_instances"]
        ]
        state["hostnames"] = [(t["task_id"], t["map_index"], t["hostname"]) for t in tasks["task_instances"]]
        return state


@pytest.fixture(scope="session")
def deployed_python(tmp_path_factory) -> Path:
    """The Python of a fresh venv with the built wheel installed: what the deployment runs."""
    wheel = build(tmp_path_factory.mktemp("e2e-dist"), "wheel")["wheel"]
    return venv_with_wheel(wheel, tmp_path_factory.mktemp("e2e-venv") / "venv")


@pytest.fixture(scope="session")
def deployment(tmp_path_factory, deployed_python):
    home = tmp_path_factory.mktemp("e2e-airflow")
    emulator = EmulatorServer(EmulatorConfig(sop_orders=5_000, customers=200), port=0).start()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(emulator.stop)
        database = None if AIRFLOW_V_3_0_PLUS else cleanup.enter_context(fresh_postgres_database())
        deployment = Deployment(home, emulator, deployed_python, database)
        cleanup.callback(deployment.stop)
        package = imported_from(deployed_python, home, deployment.env)
        assert package.is_relative_to(deployed_python.parents[1]), f"the deployment imports {package}"
        provision(
            deployment, [*(REPO / "example_dags").glob("*.py"), Path(__file__).with_name("e2e_dags.py")]
        )
        start_control_plane(
            deployment,
            (deployment.ui_process, "--port", str(deployment.port)),
            (
                "sage200_export_sales_orders",
                "sage200_load_sales_orders",
                "sage200_token_maintenance",
                "e2e_deferrable_sensor",
            ),
        )
        yield deployment


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new database on the machine's PostgreSQL for one deployment, dropped afterwards; its SQLAlchemy URL."""
    import psycopg2

    name = f"sage200_e2e_{secrets.token_hex(4)}"
    admin = psycopg2.connect(POSTGRES.replace("+psycopg2", "") + "/postgres")
    admin.autocommit = True
    try:
        admin.cursor().execute(f"CREATE DATABASE {name}")
        try:
            yield f"{POSTGRES}/{name}"
        finally:
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.close()


def provision(deployment: Deployment, dag_files: list[Path]) -> None:
    """DAGs, a migrated metastore, the Sage 200 connection (consented through the CLI), the token pool and the
    export Variable."""
    deployment.dags.mkdir()
    for source in dag_files:
        shutil.copy(source, deployment.dags)
    deployment.airflow("db", "migrate")
    if not AIRFLOW_V_3_0_PLUS:
        username, password = ADMIN
        deployment.airflow(
            *("users", "create", "--username", username, "--password", password, "--role", "Admin"),
            *("--firstname", "E2E", "--lastname", "Admin", "--email", "admin@example.com"),
        )
    emulator = deployment.emulator
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
    deployment.airflow(
        "variables", "set", "sage200_warehouse_path", str(deployment.home / "warehouse.sqlite")
    )
    consent_with_the_cli(deployment)


def start_control_plane(deployment: Deployment, ui_server: tuple[str, ...], dag_ids: tuple[str, ...]) -> None:
    """Start the line's processes (3.x: API server, scheduler, DAG processor, triggerer; 2.11: webserver, scheduler,
    triggerer); log in; wait until ``dag_ids`` are parsed."""
    processes = {deployment.ui_process: ui_server, "scheduler": ("scheduler",)}
    if AIRFLOW_V_3_0_PLUS:
        processes["dag-processor"] = ("dag-processor",)
    processes["triggerer"] = ("triggerer",)
    for name, args in processes.items():
        deployment.start(name, *args)
    wait_for_api_server(deployment)
    deployment.wait_for(
        "the DAGs to be parsed", lambda: all(deployment.api("GET", f"/dags/{d}").ok for d in dag_ids)
    )


def wait_for_api_server(deployment: Deployment) -> None:
    """Wait until the API server (the webserver on 2.11) answers; on 3.x log in as the admin for a JWT."""
    health = "/api/v2/monitor/health" if AIRFLOW_V_3_0_PLUS else "/health"
    deployment.wait_for("the API server", lambda: requests.get(f"{deployment.url}{health}", timeout=30).ok)
    if not AIRFLOW_V_3_0_PLUS:
        return  # basic auth on every request
    username, password = ADMIN
    login = requests.post(
        f"{deployment.url}/auth/token", json={"username": username, "password": password}, timeout=30
    )
    assert login.ok, login.text
    deployment.token = login.json()["access_token"]


def consent_with_the_cli(deployment: Deployment) -> None:
    """`sage200 auth login`, with this test playing the person's browser."""
    login = subprocess.Popen(
        [
            deployment.python,
            "-m",
            "airflow_provider_sage200.cli.main",
            "auth",
            "login",
            "--no-browser",
            "--timeout",
            "60",
        ],
        env=deployment.env,
        cwd=deployment.home,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = None
    for line in login.stdout:
        if line.strip().startswith("http"):
            url = line.strip()
        if line.startswith("Waiting"):
            break
    redirect = requests.get(url, allow_redirects=False, timeout=10, verify=deployment.verify).headers[
        "Location"
    ]
    assert parse_qs(urlsplit(redirect).query)["state"]
    requests.get(redirect, timeout=10)
    login.communicate(timeout=60)
    assert login.returncode == 0
