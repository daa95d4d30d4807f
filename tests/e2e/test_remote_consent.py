"""`sage200 auth login --airflow-url` and `sage200 token check --airflow-url` from a "laptop": a process with no
metastore of its own, storing the token through the real deployment's REST API: Airflow 3's /api/v2 (a JWT for
the user and password, or a bearer token), Airflow 2.11's /api/v1 on the webserver (basic auth).

The emulator plays Sage ID; this test plays the person's browser and types the passwords (through a pipe: the
command runs without a terminal, so getpass reads its standard input).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import requests

from airflow_provider_sage200.emulator.server import free_port
from airflow_provider_sage200.token_store import VariableTokenStore
from airflow_provider_sage200.version_compat import AIRFLOW_V_3_0_PLUS

pytestmark = pytest.mark.e2e

CONN_ID = "sage200_remote"
VARIABLE = "sage200_token__remote_laptop"
LEASE = f"{VARIABLE}__refresh_lease"
CLIENT_SECRET = "emulator-secret"
PASSWORD = "e2e-password"


@pytest.fixture(scope="module")
def remote_conn(deployment):
    """A second connection in the deployment, with its own token Variable (an extra the API hides) and redirect
    port, so the other end-to-end tests' token is left alone."""
    emulator = deployment.emulator
    site = emulator.client.sites()[0]
    conn = {
        "conn_type": "sage200",
        "login": "emulator-client",
        "password": CLIENT_SECRET,
        "extra": {
            "api_url": emulator.api_url(),
            "auth_url": emulator.auth_url,
            "token_url": emulator.token_url,
            "redirect_uri": f"http://127.0.0.1:{free_port()}/callback",
            "site_id": site["site_id"],
            "company_id": site["company_id"],
            "token_variable": VARIABLE,
        },
    }
    deployment.airflow("connections", "add", CONN_ID, "--conn-json", json.dumps(conn))
    return CONN_ID


@pytest.fixture
def laptop(deployment, tmp_path):
    """The environment of a laptop: no Airflow settings of the deployment, a metastore path that must stay unused."""
    env = {k: v for k, v in deployment.env.items() if not k.startswith("AIRFLOW")}
    unused = tmp_path / "no-metastore.db"
    env |= {
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{unused}",
        "SAGE200_AIRFLOW_USER": "admin",
    }
    yield env
    assert not unused.exists(), "the laptop's command opened a metastore"


def remote_args(deployment, *args: str) -> list[str]:
    return [
        deployment.python,
        "-m",
        "airflow_provider_sage200.cli.main",
        *args,
        "--conn-id",
        CONN_ID,
        "--airflow-url",
        deployment.url,
        "--conn-extra",
        f"token_variable={VARIABLE}",
    ]


def remote_login(deployment, env: dict, typed: str) -> tuple[int, str, str]:
    """`sage200 auth login --airflow-url`, consenting in the "browser" once the consent URL is printed."""
    typed_file = Path(env["AIRFLOW_HOME"]).parent / "typed.txt"
    typed_file.write_text(typed)
    with typed_file.open() as stdin:
        return _remote_login(deployment, env, stdin)


def _remote_login(deployment, env: dict, stdin) -> tuple[int, str, str]:
    login = subprocess.Popen(
        [
            *remote_args(deployment, "auth", "login", "--no-browser", "--timeout", "60"),
            "--conn-extra",
            f"token_url={deployment.emulator.token_url}",
        ],
        env=env,
        cwd=Path(env["AIRFLOW_HOME"]).parent,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # no controlling terminal: getpass reads standard input
    )
    url, seen = None, []
    for line in login.stdout:
        seen.append(line)
        if line.strip().startswith("http"):
            url = line.strip()
        if line.startswith("Waiting"):
            break
    if url is None:
        stdout, stderr = login.communicate(timeout=60)
        return login.returncode, "".join(seen) + stdout, stderr
    redirect = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    requests.get(redirect, timeout=10)
    stdout, stderr = login.communicate(timeout=60)
    return login.returncode, "".join(seen) + stdout, stderr


def check(deployment, env: dict | None, *extra: str) -> subprocess.CompletedProcess:
    """`sage200 token check` locally (env None: in the deployment) or through the API: with a bearer token on
    Airflow 3, typing the password on 2.11 (whose API takes basic auth only)."""
    if env is None:
        args = [deployment.python, "-m", "airflow_provider_sage200.cli.main", "token", "check", "--conn-id"]
        return subprocess.run(
            [*args, CONN_ID, *extra], env=deployment.env, cwd=deployment.home, capture_output=True, text=True
        )
    if AIRFLOW_V_3_0_PLUS:
        env = env | {"SAGE200_AIRFLOW_TOKEN": deployment.token}
    return subprocess.run(
        remote_args(deployment, "token", "check", *extra),
        env=env,
        input="" if AIRFLOW_V_3_0_PLUS else f"{PASSWORD}\n",
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # no controlling terminal: getpass reads standard input
    )


def spans(text: str) -> str:
    """The output with the time spans blurred (the two commands run a second or so apart)."""
    return re.sub(r"\d+ (seconds|minutes|hours|days)", r"N \1", text)


def test_wrong_password_is_refused_before_anything_is_stored(deployment, remote_conn, laptop):
    grants = deployment.emulator.client.stats()["token_grants"]["authorization_code"]
    before = deployment.variable_value(VARIABLE)
    code, stdout, stderr = remote_login(deployment, laptop, "not-the-password\n")
    assert code == 1, stdout + stderr
    if AIRFLOW_V_3_0_PLUS:
        refused = f"POST {deployment.url}/auth/token answered HTTP 401 (wrong user/password or token)"
    else:  # Airflow 2.11's API answers 403 to a wrong password, as to a user without the permission
        refused = (
            f"GET {deployment.url}/api/v1/connections/{CONN_ID} answered HTTP 403 (a wrong user or password, "
            "or the user lacks permission to read connections: Airflow 2's API answers 403 to both)"
        )
    assert refused in stderr
    assert "not-the-password" not in stdout + stderr
    assert "/authorize?" not in stdout  # no consent was started
    assert deployment.emulator.client.stats()["token_grants"]["authorization_code"] == grants
    assert deployment.variable_value(VARIABLE) == before


def test_laptop_consent_stores_an_encrypted_token_the_deployment_uses(deployment, remote_conn, laptop):
    deployment.airflow("variables", "set", LEASE, json.dumps({"owner": "stale-worker", "lease_until": 4e9}))
    # Without a token both checks say so, with the same words and exit code.
    local, remote = check(deployment, None), check(deployment, laptop)
    assert (local.returncode, remote.returncode) == (1, 1), remote.stderr
    assert remote.stdout == local.stdout and "No Sage 200 token stored" in remote.stdout, remote.stderr

    code, stdout, stderr = remote_login(deployment, laptop, f"{PASSWORD}\n{CLIENT_SECRET}\n")
    assert code == 0, stderr
    assert f"Stored the token in Variable {VARIABLE!r} through the Airflow API at {deployment.url}." in stdout
    issued = deployment.emulator.client.issued_tokens()
    secrets = [*issued["access_tokens"], *issued["refresh_tokens"], PASSWORD, CLIENT_SECRET, deployment.token]
    assert not [s for s in secrets if s and s in stdout + stderr]  # no JWT on 2.11 (basic auth)

    token = json.loads(deployment.variable_value(VARIABLE))
    assert token["refresh_token"] in issued["refresh_tokens"] and token["generation"] == 0
    assert set(token) >= {"access_token", "expires_at", "refresh_token_expires_at", "consented_at"}
    row = deployment.variable_row(VARIABLE)
    assert row["is_encrypted"] and token["refresh_token"] not in row["val"]
    assert row["description"] == VariableTokenStore.description
    assert deployment.variable_value(LEASE) == "{}"  # the stale lease was reset, as a local consent does

    # The same output over the API as in the deployment, for a valid token too.
    remote, local = check(deployment, laptop), check(deployment, None)
    assert (local.returncode, remote.returncode) == (0, 0), remote.stderr
    assert spans(remote.stdout) == spans(local.stdout) and "Access token expires in" in remote.stdout
    remote_json = json.loads(check(deployment, laptop, "--json").stdout)
    local_json = json.loads(check(deployment, None, "--json").stdout)
    for field in ("access_token_seconds_left", "refresh_token_seconds_left"):
        assert abs(remote_json.pop(field) - local_json.pop(field)) <= 5
    assert remote_json == local_json

    # The deployment refreshes with the stored token and calls Sage 200 with it.
    refreshes = deployment.emulator.client.stats()["token_grants"]["refresh_token"]
    assert "Token refreshed." in deployment.sage200("token", "refresh", "--conn-id", CONN_ID)
    assert deployment.emulator.client.stats()["token_grants"]["refresh_token"] == refreshes + 1
    assert json.loads(deployment.sage200("sites", "--json", "--conn-id", CONN_ID))
    assert deployment.emulator.client.stats()["invalid_grant"] == 0
