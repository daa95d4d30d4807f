"""Where the tests find Airflow's internals on each line (the provider's own code uses version_compat)."""

from __future__ import annotations

from typing import Any

from airflow_provider_sage200.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS


def dagbag(path: str) -> Any:
    """A DagBag of one file (``airflow.dag_processing.dagbag`` on 3.x, ``airflow.models.dagbag`` on 2.11)."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=path)


def xcom_return_value(session: Any, dag_id: str, run_id: str, task_id: str) -> Any:
    """The deserialized ``return_value`` XCom of one task instance, or None."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel as XCom
    else:
        from airflow.models.xcom import XCom
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
