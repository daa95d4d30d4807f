#!/usr/bin/env bash
# Build the environment of one older Airflow line from its lock: compat/.envs/LINE, with exactly the locked
# packages (uv pip sync) and the provider installed from this worktree. Rebuilt only when the lock changed.
# Usage: compat/build.sh LINE
set -euo pipefail
cd "$(dirname "$0")/.."
line=$1
lock=compat/requirements-$line.txt
env=compat/.envs/$line
UV=${UV:-.venv/bin/uv}
PYTHON=${PYTHON:-python3}
stamp=$env/.lock-sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
	rm -rf "$env"
	"$PYTHON" -m venv "$env"
	"$UV" pip sync --quiet --python "$env/bin/python" "$lock"
	echo "$want" >"$stamp"
fi
# The provider itself, from the worktree, never its dependencies (those are the lock's).
"$UV" pip install --quiet --python "$env/bin/python" --no-deps --reinstall-package airflow-provider-sage200 -e .
