"""The example DAGs parse with zero import errors and use only the public interface."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


def test_example_dags_import_cleanly(airflow_db):
    from tests.compat import dagbag

    bag = dagbag(str(EXAMPLES))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "sage200_export_sales_orders",
        "sage200_token_maintenance",
        "sage200_token_health",
        "sage200_sites",
        "sage200_push_records",
        "sage200_load_sales_orders",
        "sage200_export_ledger",
    }
    ledger = bag.get_dag("sage200_export_ledger")
    assert len(ledger.tasks) == 9 and ledger.max_active_tasks == 4
    assert {a.uri for t in ledger.tasks for a in t.outlets} == {
        f"file:///sage200/{t.task_id[7:]}" for t in ledger.tasks
    }
    maintenance = bag.get_dag("sage200_token_maintenance")
    assert maintenance.max_active_runs == 1
    assert maintenance.get_task("refresh_token").max_active_tis_per_dag == 1


def test_example_dags_need_no_pool_created_first(airflow_db):
    """A task in a pool that does not exist is never scheduled: every example uses only the pools Airflow makes."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    from tests.compat import dagbag

    with create_session() as session:
        fresh = {pool.pool for pool in session.query(Pool)}
    assert fresh == {"default_pool"}
    bag = dagbag(str(EXAMPLES))
    used = {(dag_id, task.task_id, task.pool) for dag_id in bag.dag_ids for task in bag.get_dag(dag_id).tasks}
    assert {pool for _, _, pool in used} <= fresh, sorted(used)


def test_examples_import_nothing_private():
    for path in EXAMPLES.glob("*.py"):
        text = path.read_text()
        assert "airflow.models" not in text, path.name
        assert "._" not in text.replace("__", ""), path.name


def test_token_maintenance_refreshes_in_a_fresh_deployment(consented, emulator):
    """dag.test() of the example as shipped, with no pool created: the refresh runs."""
    from tests.dag_runner import run_dag_in_process

    results = run_dag_in_process(EXAMPLES, "sage200_token_maintenance")
    state, status = results["refresh_token"]
    assert state == "success", results
    assert status["has_token"] is True and "refreshed" in status
