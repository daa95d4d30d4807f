"""The wheel and sdist as they would be published: exact file lists, metadata, one version, the licence."""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from airflow_provider_sage200 import __version__
from airflow_provider_sage200.get_provider_info import get_provider_info
from tests.distribution import PACKAGE, REPO, UV, build

# What a dev or CI run leaves in a work tree; none of it may reach an archive.
LEFTOVERS = [
    f"{PACKAGE}/__pycache__/hooks.cpython-311.pyc",
    f"{PACKAGE}/stray.pyc",
    "tests/unit/__pycache__/test_x.cpython-311-pytest-8.pyc",
    "tests/.pytest_cache/v/cache/lastfailed",
    "docs/.site/index.html",
    "benchmarks/results/run.json",
    "benchmarks/.venv-dlt/bin/python",
    "airflow_home/airflow.db",
    ".demo/exports/orders.parquet",
    "dist/old.whl",
    "scheduler.log",
    f"{PACKAGE}.egg-info/PKG-INFO",
]
SDIST_TOP = {
    ".ci",
    "airflow_provider_sage200",
    "tests",
    "example_dags",
    "docs",
    "scripts",
    "benchmarks",
    "compat",
}
SDIST_FILES = {
    "LICENSE",
    "README.md",
    "CHANGELOG.md",
    "Makefile",
    "mkdocs.yml",
    "pyproject.toml",
    ".gitignore",
}


def tracked_files() -> list[str]:
    if not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to know which files are the source")
    out = subprocess.run(["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True).stdout
    return [path for path in out.splitlines() if (REPO / path).is_file()]


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """Both archives, built from a copy of the tracked source with a dev run's leftovers planted in it."""
    source = tmp_path_factory.mktemp("source")
    for path in tracked_files():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, source / path)
    for path in LEFTOVERS:
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text("left over")
    return build(tmp_path_factory.mktemp("dist"), "sdist", "wheel", source=source)


def test_sdist_holds_exactly_the_tracked_source(archives):
    with tarfile.open(archives["sdist"]) as sdist:
        prefix = f"airflow_provider_sage200-{__version__}/"
        members = {m.name.removeprefix(prefix) for m in sdist.getmembers() if m.isfile()}
    expected = {path for path in tracked_files() if path.split("/", 1)[0] in SDIST_TOP or path in SDIST_FILES}
    assert members - {"PKG-INFO"} == expected
    assert not [m for m in members if "__pycache__" in m or m.endswith((".pyc", ".log"))]


def test_wheel_holds_the_package_and_the_licence(archives):
    with zipfile.ZipFile(archives["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = email.message_from_bytes(wheel.read(f"{PACKAGE}-{__version__}.dist-info/METADATA"))
        entry_points = wheel.read(f"{PACKAGE}-{__version__}.dist-info/entry_points.txt").decode()
    package = {path for path in tracked_files() if path.startswith(f"{PACKAGE}/")}
    examples = {
        f"{PACKAGE}/{path}"
        for path in tracked_files()
        if path.startswith("example_dags/") and path.endswith(".py")
    }
    assert len(examples) == 6
    dist_info = {
        f"{PACKAGE}-{__version__}.dist-info/{name}"
        for name in ("METADATA", "WHEEL", "RECORD", "entry_points.txt", "licenses/LICENSE")
    }
    assert names == package | examples | dist_info
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["License-File"] == "LICENSE"
    assert "provider_info = airflow_provider_sage200.get_provider_info:get_provider_info" in entry_points
    assert "sage200 = airflow_provider_sage200.plugins.sage200_plugin:Sage200Plugin" in entry_points


def test_one_version_source():
    assert get_provider_info()["versions"][0] == __version__
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    changelog = (REPO / "CHANGELOG.md").read_text()
    # Keep a Changelog: the version being prepared is either released under its number or still Unreleased.
    assert f"## [{__version__}]" in changelog or f"released as {__version__}" in changelog


def test_licence_is_the_apache_2_text():
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text
    assert text.count("\n") > 190


def test_twine_accepts_both(archives):
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, archives.values())],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheels_examples_copy_into_a_dags_folder_and_register_once(archives, tmp_path, airflow_db):
    """`sage200 examples --copy-to` from the installed wheel's files; the DAGs folder then holds each DAG once."""
    installed = tmp_path / "site"
    with zipfile.ZipFile(archives["wheel"]) as wheel:
        wheel.extractall(installed)
    dags = tmp_path / "dags"
    env = {**os.environ, "PYTHONPATH": str(installed)}  # ahead of the editable install
    sage200 = [sys.executable, "-m", f"{PACKAGE}.cli.main", "examples"]
    listed = subprocess.run(sage200, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert f"Example DAGs in {installed / PACKAGE / 'example_dags'}" in listed.stdout
    copied = subprocess.run(
        [*sage200, "--copy-to", str(dags)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.count("Copied ") == 6
    again = subprocess.run(
        [*sage200, "--copy-to", str(dags)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 1 and "--overwrite" in again.stderr

    from tests.compat import dagbag

    bag = dagbag(str(dags))
    assert bag.import_errors == {}
    assert len(bag.dag_ids) == 7
    assert {Path(bag.get_dag(dag_id).fileloc).parent for dag_id in bag.dag_ids} == {dags}
    # The package's copies are data: importing the package loads none of them.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {PACKAGE}.examples; print(any('example_dags' in m for m in sys.modules))",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.stdout.strip() == "False", probe.stderr


# Packages the provider brings: left out of the fresh Airflow so that installing the wheel has to resolve them.
BROUGHT_BY_THE_PROVIDER = ("airflow-provider-sage200", "requests-oauthlib", "apache-airflow-providers-http")


def _package(requirement: str) -> str:
    """The normalised package name of a ``name==version`` line."""
    return requirement.split("==")[0].strip().lower().replace("_", "-")


def test_pip_install_into_a_fresh_airflow_lists_the_provider(archives, tmp_path):
    """The user's path on every line (``make compat`` runs this on each): an Airflow venv without the provider,
    ``pip install`` of the wheel resolving its dependencies there (pinned to this environment's versions, so the
    installed Airflow is never changed), then ``airflow providers list`` shows it."""
    import airflow

    frozen = subprocess.run(
        [*UV, "pip", "freeze", "--python", sys.executable, "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    airflow_only = [line for line in frozen if _package(line) not in BROUGHT_BY_THE_PROVIDER]
    assert any(_package(line) == "apache-airflow" for line in airflow_only)
    pins = tmp_path / "pins.txt"
    pins.write_text("\n".join(frozen) + "\n")
    (tmp_path / "airflow.txt").write_text("\n".join(airflow_only) + "\n")
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    uv = [*UV, "pip", "install", "--quiet", "--python", str(python)]
    subprocess.run([*UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([*uv, "--no-deps", "-r", str(tmp_path / "airflow.txt")], check=True, capture_output=True)
    missing = subprocess.run([str(python), "-c", f"import {PACKAGE}"], cwd=tmp_path, capture_output=True)
    assert missing.returncode != 0  # a fresh Airflow: the provider is not there yet
    installed = subprocess.run(
        [*uv, "--constraint", str(pins), str(archives["wheel"])], capture_output=True, text=True
    )
    assert installed.returncode == 0, installed.stderr
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AIRFLOW") and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env |= {"AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    listed = subprocess.run(
        [str(venv / "bin" / "airflow"), "providers", "list", "--output", "json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stderr
    table = re.search(r"^\[\s*\{", listed.stdout, re.MULTILINE)  # after any log lines
    assert table, listed.stdout
    providers = {row["package_name"]: row["version"] for row in json.loads(listed.stdout[table.start() :])}
    assert providers.get("airflow-provider-sage200") == __version__, (airflow.__version__, providers)
