"""The offline audit (scripts/audit_offline.py) against a small advisory database in OSV format."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml

SCRIPT = Path(__file__).parents[2] / "scripts" / "audit_offline.py"
REQUESTS = metadata.version("requests")


def advisory(folder: Path, advisory_id: str, *, events=None, versions=None, withdrawn=None) -> None:
    affected = {"package": {"name": "requests", "ecosystem": "PyPI"}, "versions": versions or []}
    if events:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    record = {"id": advisory_id, "modified": "2026-11-01T00:00:00Z", "affected": [affected]}
    if withdrawn:
        record["withdrawn"] = withdrawn
    (folder / f"{advisory_id}.yaml").write_text(yaml.safe_dump(record))


def audit(db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, "--db", db], capture_output=True, text=True)


def test_reports_the_advisories_that_affect_installed_versions_only(tmp_path):
    folder = tmp_path / "vulns" / "requests"
    folder.mkdir(parents=True)
    advisory(folder, "PYSEC-IN-RANGE", events=[{"introduced": "0"}, {"fixed": "999.0"}])
    advisory(folder, "PYSEC-LISTED", versions=[REQUESTS])
    advisory(folder, "PYSEC-FIXED", events=[{"introduced": "0"}, {"fixed": "0.1"}])
    advisory(folder, "PYSEC-LAST-AFFECTED", events=[{"introduced": "0"}, {"last_affected": "0.1"}])
    advisory(folder, "PYSEC-WITHDRAWN", versions=[REQUESTS], withdrawn="2026-01-01T00:00:00Z")
    result = audit(tmp_path)
    assert result.returncode == 1, result.stderr
    assert "newest record 2026-11-01" in result.stdout
    assert "4 advisories about them checked, 2 affecting the installed versions" in result.stdout
    assert f"requests {REQUESTS}: PYSEC-IN-RANGE (fixed in 999.0)" in result.stdout
    assert f"requests {REQUESTS}: PYSEC-LISTED (fixed in no fixed version)" in result.stdout


def test_a_missing_database_is_not_a_pass(tmp_path):
    result = audit(tmp_path)
    assert result.returncode == 2
    assert "not a pypa/advisory-database checkout" in result.stderr
