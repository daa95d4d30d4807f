"""Defect 16: every security-relevant dependency's floor excludes the versions with a known advisory."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# package: (first fixed version, the advisory it fixes, why it matters here)
FIXED = {
    "requests": ("2.32.4", "CVE-2024-47081: .netrc credentials sent to the wrong host", "every API call"),
    "urllib3": ("2.5.0", "CVE-2025-50181/50182: redirects followed although disabled", "the redirect policy"),
    "oauthlib": ("3.2.2", "CVE-2022-36087: redirect_uri parsing DoS", "Sage ID grants"),
    "cryptography": (
        "44.0.1",
        "CVE-2024-12797: vulnerable bundled OpenSSL",
        "Fernet: token Variables, states",
    ),
    "certifi": ("2024.7.4", "CVE-2024-39689: GLOBALTRUST roots still trusted", "TLS to Sage"),
    "idna": ("3.7", "CVE-2024-3651: quadratic-time encode", "every URL"),
    "h11": ("0.16.0", "CVE-2025-43859: request smuggling", "the emulator (uvicorn)"),
}


def _declared() -> dict[str, Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(line for line in extra if not line.startswith("airflow-provider-sage200"))
    return {Requirement(line).name.lower(): Requirement(line) for line in lines}


@pytest.mark.parametrize("package", sorted(FIXED))
def test_floor_excludes_versions_with_known_advisories(package):
    fixed, advisory, _ = FIXED[package]
    requirement = _declared().get(package)
    assert requirement is not None, f"{package} is not declared; declare it >={fixed} ({advisory})"
    floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=")]
    assert floors and max(floors) >= Version(fixed), (
        f"{requirement} admits versions before {fixed}: {advisory}"
    )
