#!/usr/bin/env bash
# Audit the installed dependency set of .venv for known vulnerabilities with pip-audit.
#
# pip-audit asks PyPI's JSON API (/pypi/<name>/<version>/json) for each installed version; it needs network.
# When that API cannot be reached, pip-audit "skips" every package and still says "No known vulnerabilities
# found". This script refuses that false pass: it exits 2 unless at least one package was actually audited.
#
#   scripts/audit.sh              # PyPI's vulnerability data (the default)
#   AUDIT_SERVICE=osv scripts/audit.sh
#   AUDIT_ADVISORY_DB=/path/to/advisory-database scripts/audit.sh   # offline: a copy of pypa/advisory-database
#
# Exit codes: 0 nothing known, 1 vulnerabilities found, 2 the audit could not run (network).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
SERVICE="${AUDIT_SERVICE:-pypi}"
REPORT="$(mktemp)"
trap 'rm -f "$REPORT"' EXIT

if [ -n "${AUDIT_ADVISORY_DB:-}" ]; then
    exec "$BIN/python" scripts/audit_offline.py --db "$AUDIT_ADVISORY_DB"
fi

if [ ! -x "$BIN/pip-audit" ]; then
    echo "pip-audit is not installed: $BIN/uv pip install --python $BIN/python -e '.[dev]'" >&2
    exit 2
fi

status=0
"$BIN/pip-audit" --local --skip-editable --vulnerability-service "$SERVICE" --progress-spinner off \
    --format json --output "$REPORT" 2>/dev/null || status=$?
if [ ! -s "$REPORT" ]; then
    echo "pip-audit produced no report (exit $status): is $SERVICE's vulnerability service reachable?" >&2
    exit 2
fi

"$BIN/python" - "$REPORT" "$SERVICE" <<'PY'
import json
import sys

report, service = json.load(open(sys.argv[1])), sys.argv[2]
deps = report["dependencies"]
skipped = [d for d in deps if d.get("skip_reason")]
audited = [d for d in deps if not d.get("skip_reason")]
vulnerable = [d for d in audited if d.get("vulns")]
print(f"pip-audit ({service}): {len(deps)} installed packages, {len(audited)} audited, {len(skipped)} skipped")
for dep in vulnerable:
    for vuln in dep["vulns"]:
        fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
        print(f"  {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})")
if not audited:
    print(f"Nothing was audited: {service}'s vulnerability data could not be reached from here.", file=sys.stderr)
    sys.exit(2)
if skipped:
    print("Skipped: " + ", ".join(f"{d['name']} ({d['skip_reason']})" for d in skipped[:10]))
sys.exit(1 if vulnerable else 0)
PY
