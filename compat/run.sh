#!/usr/bin/env bash
# Test the provider on the older Airflow lines (3.3 is `make test` itself), each in its own locked environment.
# Per line: the unit, emulator and dag.test() integration tests; on 3.x lines also the real-deployment smoke
# (API server, scheduler, DAG processor, triggerer: the export, maintenance and deferrable-sensor DAGs and the
# token page). Timings per line go to stdout. Usage: compat/run.sh [LINE...] (default: 2.11 3.0 3.1 3.2)
set -euo pipefail
cd "$(dirname "$0")/.."
lines=("$@")
[ ${#lines[@]} -gt 0 ] || lines=(2.11 3.0 3.1 3.2)
SMOKE="tests/e2e/test_deployment.py::test_export_dag_runs_on_real_workers_and_writes_files \
tests/e2e/test_deployment.py::test_token_maintenance_runs_in_its_pool \
tests/e2e/test_deployment.py::test_deferrable_sensor_waits_in_the_real_triggerer_until_consent \
tests/e2e/test_deployment.py::test_token_page_refresh_and_new_consent"
failed=()
for line in "${lines[@]}"; do
	start=$SECONDS
	compat/build.sh "$line"
	py=compat/.envs/$line/bin/python
	echo "== Airflow $("$py" -c 'import airflow; print(airflow.__version__)') (compat/requirements-$line.txt)"
	targets="tests/unit tests/emulator tests/integration"
	[ "$line" = 2.11 ] || targets="$targets $SMOKE"
	# shellcheck disable=SC2086
	if ! "$py" -m pytest -q -p no:cacheprovider $targets; then failed+=("$line"); fi
	echo "== $line took $((SECONDS - start)) s"
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "compat: failures on Airflow ${failed[*]}"
	exit 1
fi
