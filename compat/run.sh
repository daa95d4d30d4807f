#!/usr/bin/env bash
# Test the provider on the older Airflow lines (3.3 is `make test` itself), each in its own locked environment.
# Per line, by default (what CI runs): the unit tests, which import every provider module on that line; the
# dag.test() integration tests of the operators, sensor, trigger and example DAGs against the emulator; the
# sage200 command against the line's metastore; the token page of the line (FAB view on 2.11, FastAPI app on 3.x);
# pip-installing the built wheel into a fresh Airflow of the line ('airflow providers list' shows it); and the
# real-deployment smoke: the wheel deployed as a real Airflow of the line (3.x: API server, scheduler, DAG
# processor, triggerer on SQLite; 2.11: webserver, scheduler, triggerer on a fresh PostgreSQL database) running the
# export, load, maintenance and deferrable-sensor DAGs, the token page in headless Chromium (Get new token, Refresh
# now) and consent from a "laptop" through the line's REST API (--airflow-url).
# COMPAT_TESTS replaces the selection (e.g. COMPAT_TESTS="tests/unit tests/emulator tests/integration", about
# 10 minutes per line); COMPAT_SMOKE=0 leaves the smoke out.
# Timings per line go to stdout. Usage: compat/run.sh [LINE...]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=("$@")
[ ${#lines[@]} -gt 0 ] || lines=(2.11 3.0 3.1 3.2)
DEFAULT_TESTS="tests/unit tests/integration/test_dags.py tests/integration/test_example_dags.py \
tests/integration/test_cli.py tests/integration/test_token_page.py tests/integration/test_token_page_fab.py \
tests/integration/test_distribution.py::test_pip_install_into_a_fresh_airflow_lists_the_provider"
SMOKE="tests/e2e/test_deployment.py::test_export_dag_runs_on_real_workers_and_writes_files \
tests/e2e/test_deployment.py::test_token_maintenance_runs_in_its_pool \
tests/e2e/test_deployment.py::test_deferrable_sensor_waits_in_the_real_triggerer_until_consent \
tests/e2e/test_deployment.py::test_token_page_refresh_and_new_consent \
tests/e2e/test_browser.py::test_token_page_get_new_token_and_refresh_in_the_ui \
tests/e2e/test_browser.py::test_forged_callback_in_the_browser_changes_nothing \
tests/e2e/test_remote_consent.py"
failed=()
for line in "${lines[@]}"; do
	start=$SECONDS
	compat/build.sh "$line"
	py=compat/.envs/$line/bin/python
	echo "== Airflow $("$py" -c 'import airflow; print(airflow.__version__)') (compat/requirements-$line.txt)"
	targets=${COMPAT_TESTS:-$DEFAULT_TESTS}
	[ "${COMPAT_SMOKE:-1}" = 0 ] || targets="$targets $SMOKE"
	# shellcheck disable=SC2086
	if ! "$py" -m pytest -q -p no:cacheprovider $targets; then failed+=("$line"); fi
	echo "== $line took $((SECONDS - start)) s"
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "compat: failures on Airflow ${failed[*]}"
	exit 1
fi
