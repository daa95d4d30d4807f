"""Audit this environment's installed packages against a local copy of the PyPA advisory database.

For machines that cannot reach pip-audit's online services: ``scripts/audit.sh`` runs this when
``AUDIT_ADVISORY_DB`` names a checkout (or export) of https://github.com/pypa/advisory-database. Each advisory is
an OSV record; a package is affected when its installed version is listed, or lies in an ``ECOSYSTEM`` range
(``introduced`` <= version < ``fixed``, or <= ``last_affected``). Withdrawn advisories are ignored. The report
names the newest ``modified`` date in the database, so a stale copy says so.

    .venv/bin/python scripts/audit_offline.py --db /path/to/advisory-database

Exit codes: 0 nothing known, 1 vulnerabilities found, 2 the database is missing or empty.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

_MODIFIED = re.compile(r"^modified: *['\"]?([0-9T:.Z-]+)", re.MULTILINE)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    return {normalise(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def in_range(version: Version, events: list[dict[str, str]]) -> bool:
    affected = False
    for event in events:
        (kind, bound), *_ = event.items()
        try:
            edge = Version("0") if bound == "0" else Version(bound)
        except InvalidVersion:
            continue
        if kind == "introduced" and version >= edge:
            affected = True
        elif (kind == "fixed" and version >= edge) or (kind == "last_affected" and version > edge):
            affected = False
    return affected


def affects(advisory: dict[str, Any], name: str, version: str) -> bool:
    for entry in advisory.get("affected") or []:
        package = entry.get("package") or {}
        if package.get("ecosystem") != "PyPI" or normalise(package.get("name", "")) != name:
            continue
        if version in (entry.get("versions") or []):
            return True
        try:
            parsed = Version(version)
        except InvalidVersion:
            continue
        for span in entry.get("ranges") or []:
            if span.get("type") == "ECOSYSTEM" and in_range(parsed, span.get("events") or []):
                return True
    return False


def fixed_in(advisory: dict[str, Any]) -> str:
    fixes = [
        event["fixed"]
        for entry in advisory.get("affected") or []
        for span in entry.get("ranges") or []
        if span.get("type") == "ECOSYSTEM"
        for event in span.get("events") or []
        if "fixed" in event
    ]
    return ", ".join(fixes) or "no fixed version"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, type=Path, help="advisory-database checkout (holds vulns/)")
    args = parser.parse_args()
    vulns = args.db / "vulns"
    if not vulns.is_dir():
        print(f"No vulns/ folder in {args.db}: not a pypa/advisory-database checkout.", file=sys.stderr)
        return 2
    packages = installed()
    newest, checked, found = "", 0, []
    for folder in sorted(vulns.iterdir()):
        name = normalise(folder.name)
        for path in sorted(folder.glob("*.yaml")):
            text = path.read_text()
            if modified := _MODIFIED.search(text):
                newest = max(newest, modified.group(1))
            if name not in packages:
                continue
            advisory = yaml.safe_load(text)
            if advisory.get("withdrawn"):
                continue
            checked += 1
            if affects(advisory, name, packages[name]):
                found.append((name, packages[name], advisory["id"], fixed_in(advisory)))
    if not newest:
        print(f"{vulns} holds no advisories.", file=sys.stderr)
        return 2
    print(
        f"PyPA advisory database (newest record {newest[:10]}): {len(packages)} installed packages, "
        f"{checked} advisories about them checked, {len(found)} affecting the installed versions"
    )
    for name, version, advisory_id, fixed in found:
        print(f"  {name} {version}: {advisory_id} (fixed in {fixed})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
