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
    assert {t.pool for t in ledger.tasks} == {"sage200"} and len(ledger.tasks) == 9
    assert {a.name for t in ledger.tasks for a in t.outlets} == {
        f"sage200_{t.task_id[7:]}" for t in ledger.tasks
    }
    maintenance = bag.get_dag("sage200_token_maintenance")
    assert maintenance.max_active_runs == 1
    assert maintenance.get_task("refresh_token").pool == "sage200_token"


def test_examples_import_nothing_private():
    for path in EXAMPLES.glob("*.py"):
        text = path.read_text()
        assert "airflow.models" not in text, path.name
        assert "._" not in text.replace("__", ""), path.name
