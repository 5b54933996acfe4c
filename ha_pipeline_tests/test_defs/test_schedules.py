"""Schedules run the last completed partition, and the automation switch stops them."""

from datetime import datetime, timezone

import dagster as dg

from ha_pipeline.definitions import defs
from ha_pipeline.defs.schedules import automation_status


def _tick(name: str, when: datetime) -> list[dg.RunRequest]:
    schedule = defs.get_repository_def().get_schedule_def(name)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
        return schedule.evaluate_tick(context).run_requests


def test_events_schedule_runs_the_hour_just_completed():
    schedule = defs.get_repository_def().get_schedule_def("events_schedule")
    assert schedule.cron_schedule == "5 * * * *"
    [request] = _tick("events_schedule", datetime(2025, 3, 1, 10, 5, tzinfo=timezone.utc))
    assert request.partition_key == "2025-03-01-09:00"


def test_daily_rollup_schedule_runs_yesterday_after_midnight():
    schedule = defs.get_repository_def().get_schedule_def("daily_rollup_schedule")
    # 01:00 in the home's zone (the tests' code location has no zone recorded: UTC)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 1 * * *", "UTC")
    [request] = _tick("daily_rollup_schedule", datetime(2025, 3, 2, 1, 0, tzinfo=timezone.utc))
    assert request.partition_key == "2025-03-01"


def test_monthly_rollup_schedule_runs_last_month_on_the_first():
    schedule = defs.get_repository_def().get_schedule_def("monthly_rollup_schedule")
    assert schedule.cron_schedule == "30 1 1 * *"
    [request] = _tick("monthly_rollup_schedule", datetime(2025, 4, 1, 1, 30, tzinfo=timezone.utc))
    assert request.partition_key == "2025-03-01"


def test_automation_on_by_default_and_off_by_env(monkeypatch):
    monkeypatch.delenv("HA_PIPELINE_AUTOMATION", raising=False)
    assert automation_status() == dg.DefaultScheduleStatus.RUNNING
    monkeypatch.setenv("HA_PIPELINE_AUTOMATION", "off")
    assert automation_status() == dg.DefaultScheduleStatus.STOPPED
