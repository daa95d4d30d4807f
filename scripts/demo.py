"""`make demo`: the emulator, a real Airflow with SQLite, the consent, two daily exports and a token refresh.

Everything runs under .demo/ (a throwaway AIRFLOW_HOME) and every process started here is stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / ".demo"
BIN = Path(sys.executable).parent
EXPORTS = DEMO / "exports"


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def airflow_env() -> dict[str, str]:
    env = os.environ.copy()
    env |= {
        "AIRFLOW_HOME": str(DEMO / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": "cQ9f1b4lG0m3V6JWn9kD4m8a2jv0YtY5pF3Vt8oGxQE=",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    return env


def run(*args: str, env: dict[str, str], capture: bool = False) -> str:
    result = subprocess.run(args, env=env, check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


def consent(env: dict[str, str]) -> None:
    """Run `sage200 auth login` and play the person's browser: open the URL, follow the redirect."""
    login = subprocess.Popen(
        [str(BIN / "sage200"), "auth", "login", "--no-browser", "--timeout", "60"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert login.stdout is not None
    for line in login.stdout:
        print("   ", line.rstrip())
        if line.strip().startswith("http"):
            url = line.strip()
        if line.startswith("Waiting for the redirect"):
            requests.get(url, timeout=30)  # the emulator auto-consents and redirects to the callback
            break
    for line in login.stdout:
        print("   ", line.rstrip())
    if login.wait(60) != 0:
        raise SystemExit("consent failed")


def airflow(env: dict[str, str], *args: str) -> str:
    return run(str(BIN / "airflow"), *args, env=env, capture=True)


def add_connection(conn: dict, env: dict[str, str]) -> None:
    airflow(env, "connections", "add", "sage200_default", "--conn-json", json.dumps(conn))


def count_records(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def main() -> int:
    from airflow_provider_sage200.emulator import EmulatorConfig, EmulatorServer

    started = time.monotonic()
    shutil.rmtree(DEMO, ignore_errors=True)
    EXPORTS.mkdir(parents=True)
    env = airflow_env()

    step("Starting the Sage 200 emulator (Sage ID + API, 20,000 sales orders over 30 days)")
    server = EmulatorServer(EmulatorConfig(sop_orders=20_000, customers=500), port=0)
    server.start()
    try:
        print(f"    {server.url}")
        step("Creating a throwaway Airflow home with SQLite (airflow db migrate)")
        airflow(env, "db", "migrate")
        conn = {
            "conn_type": "sage200",
            "login": server.config.client_id,
            "password": server.config.client_secret,
            "extra": {
                "edition": "professional",
                "api_url": server.api_url("professional"),
                "auth_url": server.auth_url,
                "token_url": server.token_url,
                "redirect_uri": "http://127.0.0.1:8765/callback",
            },
        }
        add_connection(conn, env)
        airflow(env, "variables", "set", "sage200_export_base_uri", str(EXPORTS))

        step("One-time consent: sage200 auth login (the emulator consents automatically)")
        consent(env)

        step("Discovering sites: sage200 sites")
        sites_json = run(str(BIN / "sage200"), "sites", "--json", env=env, capture=True)
        sites = json.loads(sites_json)
        run(str(BIN / "sage200"), "sites", env=env)
        site = sites[0]
        conn["extra"] |= {"site_id": site["site_id"], "company_id": site["company_id"]}
        airflow(env, "connections", "delete", "sage200_default")
        add_connection(conn, env)
        print(f"    using X-Site {site['site_id']} / X-Company {site['company_id']} ({site['company_name']})")

        step("A few sales orders through Sage200Hook.paginate")
        os.environ.update(env)  # the hook outside a task reads the connection from the metastore
        from airflow_provider_sage200.hooks.sage200 import Sage200Hook

        query = {"$select": "id,document_no,customer_id,total_gross_value,date_time_updated", "$top": 3}
        for order in Sage200Hook().paginate("sop_orders", query):
            print(f"    {order}")

        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for days_back in (1, 0):
            day = (today - timedelta(days=days_back)).strftime("%Y-%m-%d")
            step(f"Running sage200_export_sales_orders for {day} (airflow dags test)")
            airflow(env, "dags", "test", "sage200_export_sales_orders", day)

        step("Running sage200_token_maintenance once")
        airflow(env, "dags", "test", "sage200_token_maintenance")

        step("What the demo produced")
        files = sorted(EXPORTS.rglob("*.*"))
        if not files:
            raise SystemExit("the export DAG produced no files")
        for path in files:
            print(
                f"    {path.relative_to(REPO)}: {count_records(path)} records, {path.stat().st_size:,} bytes"
            )
        print()
        run(str(BIN / "sage200"), "token", "check", env=env)
        stats = server.client.stats()
        print(
            f"\n    emulator: {stats['token_grants']} token grants, {stats.get('invalid_grant', 0)} invalid_grant"
        )
    finally:
        server.stop()
    print(f"\nDemo finished in {time.monotonic() - started:.0f}s; everything it started has stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
