"""The time window an incremental export covers, on every Airflow line and with every cron timetable.

A run's data interval is the window when it has one: on Airflow 2.11 and with ``CronDataIntervalTimetable``,
a ``"@daily"`` run covers the day before it. Airflow 3 schedules a cron string such as ``"@daily"`` with
``CronTriggerTimetable``, whose runs have an empty interval (start == end == the run's logical date). For those
the window is the **cron period that ends at the run**: the last fire time at or before the run's logical date
back to the fire time before it. A scheduled ``"@daily"`` run at midnight therefore exports the previous day, as
on Airflow 2, and consecutive runs cover every change once; a manual run re-exports the most recent complete
period (an incremental export is idempotent, so that is safe).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.version_compat import cron_trigger_schedule


def export_window(context: Any) -> tuple[datetime, datetime]:
    """Return ``[start, end)`` for an incremental export of the run in ``context``.

    :raises Sage200ConfigError: the run has no interval and its DAG has no cron schedule to derive one from.
    """
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and start < end:
        return start, end
    anchor = end or context.get("logical_date")
    dag = context.get("dag")
    schedule = cron_trigger_schedule(getattr(dag, "timetable", None))
    if anchor is None or schedule is None:
        raise Sage200ConfigError(
            "incremental_field needs a time window, but this run has no data interval and its DAG no cron "
            f"schedule (interval [{start}, {end}]). Give the DAG a cron schedule such as schedule='@daily' or "
            "drop incremental_field."
        )
    return cron_period_ending_at(*schedule, anchor)


def cron_period_ending_at(expression: str, timezone: Any, moment: datetime) -> tuple[datetime, datetime]:
    """The period ``[previous fire, last fire)`` of ``expression`` whose end is the last fire at or before ``moment``."""
    from croniter import croniter

    # get_prev() is strictly before its start: a second later makes a fire exactly at ``moment`` count.
    end = croniter(expression, moment.astimezone(timezone) + timedelta(seconds=1)).get_prev(datetime)
    start = croniter(expression, end).get_prev(datetime)
    return start.astimezone(moment.tzinfo), end.astimezone(moment.tzinfo)


#: The template variables :class:`~airflow_provider_sage200.operators.sage200.Sage200GetOperator` adds: the window
#: the export reads, for naming its file (``{{ sage200_window_start | ds }}``).
WINDOW_START, WINDOW_END = "sage200_window_start", "sage200_window_end"


def add_window_to_context(context: Any) -> None:
    """Put the export window into ``context`` as :data:`WINDOW_START` / :data:`WINDOW_END` for templates.

    It is :func:`export_window` where there is one, so a file named by it holds the period it is named after on
    every timetable: ``{{ ds }}`` is the logical date (the day *after* the data on a ``"@daily"`` trigger
    timetable, undefined for a manual run without a logical date). Without a window (no interval, no cron
    schedule) both are the run's moment: its data interval start, logical date or time it ran after.
    """
    if WINDOW_START in context:
        return
    try:
        start, end = export_window(context)
    except Sage200ConfigError:
        run = context.get("dag_run")
        start = (
            context.get("data_interval_start")
            or context.get("logical_date")
            or getattr(run, "run_after", None)
            or getattr(run, "start_date", None)
        )
        end = context.get("data_interval_end") or start
    context[WINDOW_START], context[WINDOW_END] = start, end
