"""Where each Airflow API lives on each supported line: Airflow 2.11 and 3.0 to 3.3.

This module is the only place in the provider that knows which Airflow version it runs on. Everything else
imports ``BaseHook``, ``BaseOperator``, ``Variable``, ``conf``, the maskers, the timetables, ... from here, and
asks the feature flags below (never ``airflow.__version__``) when a feature exists only on some lines.

Checked against the newest patch release of each line (``make compat``; ``compat/README.md``):

========================  =========================  ==============================  ======================
name                      2.11                       3.0 / 3.1                       3.2+
========================  =========================  ==============================  ======================
BaseHook                  airflow.hooks.base         airflow.hooks.base (3.0);       airflow.sdk
                                                     airflow.sdk (3.1)
BaseOperator, sensor,     airflow.models... /        airflow.sdk                     airflow.sdk
Variable, Connection,     airflow.sensors.base /
ObjectStoragePath, ...    airflow.io.path
conf                      airflow.configuration      airflow.configuration           airflow.sdk
AirflowException          airflow.exceptions         airflow.exceptions (3.0);       airflow.sdk.exceptions
                                                     airflow.sdk.exceptions (3.1)
AirflowNotFoundException  airflow.exceptions         airflow.exceptions              airflow.sdk.exceptions
timetables                airflow.timetables.*       airflow.timetables.*            airflow.sdk
log masker(s)             one (airflow.utils.log)    one (3.0); task SDK's and       task SDK's and core's
                                                     core's (3.1)
token page                FAB view (airflow.www      FastAPI app (airflow.           FastAPI app
                          auth, [webserver]          api_fastapi security,
                          base_url)                  [api] base_url)
========================  =========================  ==============================  ======================
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from airflow import __version__ as AIRFLOW_VERSION
from airflow.triggers.base import BaseTrigger, TriggerEvent
from packaging.version import Version

_RELEASE = Version(AIRFLOW_VERSION).release

AIRFLOW_V_3_0_PLUS = _RELEASE >= (3, 0)
AIRFLOW_V_3_1_PLUS = _RELEASE >= (3, 1)
AIRFLOW_V_3_2_PLUS = _RELEASE >= (3, 2)

#: Airflow loads a provider's ``cli`` group (``airflow sage200 ...``) from 3.2 on.
PROVIDER_CLI_SUPPORTED = AIRFLOW_V_3_2_PLUS
#: The React connection form reads ``conn-fields`` from provider info from 3.2 on; before, it (3.0/3.1) or
#: the FAB form (2.11) calls the hook's ``get_connection_form_widgets`` / ``get_ui_field_behaviour``.
DECLARATIVE_CONN_FIELDS = AIRFLOW_V_3_2_PLUS
#: The token page is a FastAPI app on 3.x and a Flask-AppBuilder view on 2.11.
TOKEN_PAGE_KIND = "fastapi" if AIRFLOW_V_3_0_PLUS else "flask"
#: From 3.1 the API server authenticates a browser's request by the UI's ``_token`` cookie; 3.0's UI keeps the JWT
#: in localStorage and its API server reads the Authorization header only (plugins/ui_session_bridge.py).
API_READS_UI_COOKIE = AIRFLOW_V_3_1_PLUS
#: The option holding the URL people open the Airflow UI at: the API server's on 3.x, the webserver's on 2.11.
UI_BASE_URL_OPTION = ("api", "base_url") if AIRFLOW_V_3_0_PLUS else ("webserver", "base_url")

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import BaseOperator, BaseSensorOperator, Connection, Context, Variable
else:
    from airflow.models.baseoperator import BaseOperator
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable
    from airflow.sensors.base import BaseSensorOperator
    from airflow.utils.context import Context

if AIRFLOW_V_3_1_PLUS:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowException
else:
    from airflow.exceptions import AirflowException
    from airflow.hooks.base import BaseHook

try:  # the Task SDK defines it on the newest lines; older ones only in airflow.exceptions
    from airflow.sdk.exceptions import AirflowSensorTimeout
except ImportError:
    from airflow.exceptions import AirflowSensorTimeout

if AIRFLOW_V_3_2_PLUS:
    from airflow.sdk import conf
    from airflow.sdk.exceptions import AirflowNotFoundException
else:
    from airflow.configuration import conf
    from airflow.exceptions import AirflowNotFoundException

__all__ = [  # and, imported on first use, the names in _LAZY
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "API_READS_UI_COOKIE",
    "DECLARATIVE_CONN_FIELDS",
    "PROVIDER_CLI_SUPPORTED",
    "TOKEN_PAGE_KIND",
    "UI_BASE_URL_OPTION",
    "AirflowException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Connection",
    "Context",
    "TriggerEvent",
    "Variable",
    "conf",
    "cron_trigger_schedule",
    "get_connection",
    "in_task_process",
    "mask_secret_in_core",
    "mask_secret_in_task",
    "metastore_variables",
    "task_variables",
]

# Imported on first use: they pull in fsspec / the scheduler's timetable code, which most callers never need.
_LAZY = {
    "ObjectStoragePath": ("airflow.sdk", "airflow.io.path"),
    "CronDataIntervalTimetable": ("airflow.sdk", "airflow.timetables.interval"),
    "CronTriggerTimetable": ("airflow.sdk", "airflow.timetables.trigger"),
}
_LAZY_NEW_FROM = {"ObjectStoragePath": AIRFLOW_V_3_0_PLUS}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    new_home, old_home = _LAZY[name]
    module = importlib.import_module(new_home if _LAZY_NEW_FROM.get(name, AIRFLOW_V_3_2_PLUS) else old_home)
    value = getattr(module, name)
    globals()[name] = value
    return value


def cron_trigger_schedule(timetable: Any) -> tuple[str, Any] | None:
    """``(cron expression, timezone)`` of a ``CronTriggerTimetable`` (what ``schedule="@daily"`` makes on 3.x).

    The DAG a task sees holds the Task SDK's timetable on 3.2+ (``expression``, ``timezone``) and core's before
    (``_expression``, ``_timezone``). None for any other timetable.
    """
    if type(timetable).__name__ != "CronTriggerTimetable":
        return None
    expression = getattr(timetable, "expression", None) or getattr(timetable, "_expression", None)
    timezone = getattr(timetable, "timezone", None) or getattr(timetable, "_timezone", None)
    if not isinstance(expression, str) or timezone is None:
        return None
    if isinstance(timezone, str):  # the Task SDK's timetable keeps the name it was given
        import pendulum

        timezone = pendulum.timezone(timezone)
    return expression, timezone


def in_task_process() -> bool:
    """True inside a task run by an Airflow 3 worker or ``dag.test()`` (the Task SDK sets ``SUPERVISOR_COMMS``).

    Always False on 2.11: there a task talks to the metastore like every other Airflow process.
    """
    return hasattr(sys.modules.get("airflow.sdk.execution_time.task_runner"), "SUPERVISOR_COMMS")


def get_connection(conn_id: str) -> Any:
    """The connection ``conn_id``, read where this process may read it.

    In a task (and everywhere on 2.11): ``BaseHook.get_connection``. Outside a task on 3.x (a script, a notebook,
    the ``sage200`` command, the API server): Airflow core's secrets chain, environment variables, the configured
    secrets backend and then the metastore, as ``airflow connections get`` reads it. The Task SDK's own lookup
    there skips the metastore unless the process declares itself a server (``_AIRFLOW_PROCESS_CONTEXT=server``).
    """
    if not AIRFLOW_V_3_0_PLUS or in_task_process():
        return BaseHook.get_connection(conn_id)
    from airflow.models.connection import Connection as CoreConnection

    return CoreConnection.get_connection_from_secrets(conn_id)


def mask_secret_in_task(value: str) -> None:
    """Register ``value`` with the masker that redacts a task's logs (and, on 3.x, tells the supervisor)."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.log import mask_secret
    else:
        from airflow.utils.log.secrets_masker import mask_secret
    mask_secret(value)


def mask_secret_in_core(value: str) -> bool:
    """Register ``value`` with Airflow core's masker (API server, scheduler, CLI) where it is a separate one.

    Returns False where there is no separate core masker: 2.11 and 3.0 have a single masker, and a worker-only
    install of 3.1+ has no Airflow core.
    """
    if not AIRFLOW_V_3_1_PLUS:
        return False
    try:
        from airflow._shared.secrets_masker import mask_secret
    except ImportError:
        return False
    mask_secret(value)
    return True


class _TaskVariables:
    """Variables through the Task SDK's Execution API (inside an Airflow 3 task)."""

    @staticmethod
    def get(key: str) -> Any:
        from airflow.sdk import Variable as SdkVariable

        return SdkVariable.get(key, default=None)

    @staticmethod
    def set(key: str, value: str, description: str | None) -> None:
        from airflow.sdk import Variable as SdkVariable

        SdkVariable.set(key, value, description=description)


class _MetastoreVariables:
    """Variables in the metadata DB: outside a task on 3.x (CLI, API-server plugin), everywhere on 2.11."""

    @staticmethod
    def get(key: str) -> Any:
        from airflow.models.variable import Variable as ModelVariable

        return ModelVariable.get(key, default_var=None)

    @staticmethod
    def set(key: str, value: str, description: str | None) -> None:
        from airflow.models.variable import Variable as ModelVariable

        ModelVariable.set(key, value, description=description)


def task_variables() -> type[_TaskVariables] | type[_MetastoreVariables]:
    """The Variable backend this process must use: the Task SDK inside a 3.x task, else the metastore."""
    return _TaskVariables if in_task_process() else _MetastoreVariables


def metastore_variables() -> type[_MetastoreVariables]:
    """The metastore Variable backend (only outside a task on 3.x)."""
    return _MetastoreVariables
