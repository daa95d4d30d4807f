"""The window of an incremental export: the data interval, or the cron period ending at a trigger-timetable run."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from airflow_provider_sage200.exceptions import Sage200ConfigError
from airflow_provider_sage200.intervals import cron_period_ending_at, export_window
from airflow_provider_sage200.version_compat import CronDataIntervalTimetable, CronTriggerTimetable

UTC = UTC
MIDNIGHT = datetime(2026, 12, 2, tzinfo=UTC)


class _Dag:
    def __init__(self, timetable):
        self.timetable = timetable


def test_a_run_with_a_data_interval_exports_exactly_that_interval():
    start = MIDNIGHT - timedelta(days=1)
    dag = _Dag(CronDataIntervalTimetable("@daily", timezone="UTC"))
    context = {"data_interval_start": start, "data_interval_end": MIDNIGHT, "dag": dag}
    assert export_window(context) == (start, MIDNIGHT)


def test_a_scheduled_daily_trigger_run_exports_the_day_before_it():
    dag = _Dag(CronTriggerTimetable("@daily", timezone="UTC"))
    context = {
        "data_interval_start": MIDNIGHT,
        "data_interval_end": MIDNIGHT,
        "logical_date": MIDNIGHT,
        "dag": dag,
    }
    assert export_window(context) == (MIDNIGHT - timedelta(days=1), MIDNIGHT)


def test_a_manual_trigger_run_exports_the_last_complete_period():
    dag = _Dag(CronTriggerTimetable("@daily", timezone="UTC"))
    moment = MIDNIGHT + timedelta(hours=15, minutes=7, seconds=3)
    context = {"data_interval_start": moment, "data_interval_end": moment, "dag": dag}
    assert export_window(context) == (MIDNIGHT - timedelta(days=1), MIDNIGHT)


def test_consecutive_hourly_trigger_runs_tile_time_without_gaps_or_overlap():
    dag = _Dag(CronTriggerTimetable("0 * * * *", timezone="UTC"))
    windows = [
        export_window({"data_interval_start": t, "data_interval_end": t, "dag": dag})
        for t in (MIDNIGHT + timedelta(hours=h) for h in range(1, 5))
    ]
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert end == start
    assert all(end - start == timedelta(hours=1) for start, end in windows)


def test_the_period_follows_the_timetable_time_zone_across_a_dst_change():
    london = pendulum.timezone("Europe/London")
    # 2026-10-25 is 25 hours long in London; the run at local midnight on the 26th covers all of it.
    run = datetime(2026, 10, 26, 0, 0, tzinfo=UTC)  # 00:00 GMT
    start, end = cron_period_ending_at("0 0 * * *", london, run)
    assert end == run
    assert start == datetime(2026, 10, 24, 23, 0, tzinfo=UTC)  # 00:00 BST
    assert end - start == timedelta(hours=25)


def test_a_run_without_interval_or_cron_schedule_is_refused_with_what_to_do():
    with pytest.raises(Sage200ConfigError, match="schedule='@daily'"):
        export_window({"data_interval_start": None, "data_interval_end": None, "dag": _Dag(None)})


def test_templates_get_the_window_read_and_a_run_without_one_its_moment():
    from airflow_provider_sage200.intervals import WINDOW_END, WINDOW_START, add_window_to_context

    trigger = {"data_interval_start": MIDNIGHT, "data_interval_end": MIDNIGHT, "logical_date": None}
    trigger["dag"] = _Dag(CronTriggerTimetable("@daily", timezone="UTC"))
    add_window_to_context(trigger)
    assert (trigger[WINDOW_START], trigger[WINDOW_END]) == (MIDNIGHT - timedelta(days=1), MIDNIGHT)
    unscheduled = {"data_interval_start": MIDNIGHT, "data_interval_end": MIDNIGHT, "dag": _Dag(None)}
    add_window_to_context(unscheduled)
    assert (unscheduled[WINDOW_START], unscheduled[WINDOW_END]) == (MIDNIGHT, MIDNIGHT)
