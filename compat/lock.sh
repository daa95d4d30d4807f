#!/usr/bin/env bash
# Re-resolve the pinned dependency set of each older Airflow line (Python 3.11, Linux x86_64).
# Airflow's own constraint files are not reachable from CI, so the project locks its own with uv.
# Usage: compat/lock.sh [LINE...]   (default: every compat/airflow-*.in)
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
lines=("$@")
if [ ${#lines[@]} -eq 0 ]; then
	for f in compat/airflow-*.in; do l=${f#compat/airflow-}; lines+=("${l%.in}"); done
fi
for line in "${lines[@]}"; do
	"$UV" pip compile pyproject.toml --extra dev --constraint "compat/airflow-$line.in" \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet \
		--output-file "compat/requirements-$line.txt"
done
