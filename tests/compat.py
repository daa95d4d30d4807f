"""Where the tests find Airflow's internals on each line (the provider's own code uses version_compat)."""

from __future__ import annotations

from typing import Any

from airflow_provider_sage200.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
)


def dagbag(path: str) -> Any:
    """A DagBag of one file (``airflow.dag_processing.dagbag`` from 3.2, ``airflow.models.dagbag`` before)."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=path)


def dag_test(dag: Any, run_conf: dict | None = None, logical_date: Any = None) -> Any:
    """``dag.test()``: the run's date is ``logical_date`` on 3.x, ``execution_date`` on 2.11."""
    kwargs: dict[str, Any] = {"run_conf": run_conf or {}}
    if logical_date is not None:
        kwargs["logical_date" if AIRFLOW_V_3_0_PLUS else "execution_date"] = logical_date
    return dag.test(**kwargs)


def xcom_return_value(session: Any, dag_id: str, run_id: str, task_id: str) -> Any:
    """The deserialized ``return_value`` XCom of one task instance, or None."""
    if not AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XCom

        return XCom.get_one(
            dag_id=dag_id, run_id=run_id, task_id=task_id, key="return_value", session=session
        )
    from airflow.models.xcom import XComModel as XCom

    row = (
        session.query(XCom)
        .filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id, key="return_value")
        .first()
    )
    return XCom.deserialize_value(row) if row is not None else None


def redact(value: Any, name: str | None = None) -> Any:
    """What the task log masker makes of ``value`` (under the key ``name``)."""
    if AIRFLOW_V_3_1_PLUS:
        from airflow.sdk.log import redact as _redact
    elif AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.execution_time.secrets_masker import redact as _redact
    else:
        from airflow.utils.log.secrets_masker import redact as _redact
    return _redact(value, name)


def redact_in_core(value: Any) -> Any:
    """What Airflow core's masker (the API server's, the scheduler's) makes of ``value``."""
    if AIRFLOW_V_3_1_PLUS:
        from airflow._shared.secrets_masker import redact as _redact

        return _redact(value)
    return redact(value)  # 2.11 and 3.0 have a single masker
