"""Summaries of the home's days and months, reduced from the hourly summaries as HA does."""

from datetime import timedelta, timezone

import dagster as dg

from ha_pipeline.defs.partitions import daily_partitions, monthly_partitions
from ha_pipeline.defs.resources import InfluxDBResource, fails_at_once
from ha_pipeline.timeseries.calendar import Period

SUMMARIES_RETRY = dg.RetryPolicy(max_retries=2, delay=20, backoff=dg.Backoff.EXPONENTIAL)
DAILY_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)
MONTHLY_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=12)


def _roll_up(context: dg.AssetExecutionContext, influxdb: InfluxDBResource, bucket_key: str,
             period: Period, time_zone: str) -> dg.MaterializeResult:
    """Rewrite the partition window's periods in `bucket_key` and describe the run."""
    from ha_pipeline.timeseries.period_summaries import roll_up_periods  # pandas: only when a run needs it

    window = context.partition_time_window
    specs = influxdb.bucket_specs()
    spec = specs[bucket_key]
    backend = influxdb.backend()
    backend.ensure_bucket(spec)
    result = roll_up_periods(backend, specs["events_hourly"], spec, window.start, window.end, period, time_zone)
    preview = result.rows.head(10).to_string(index=False) if len(result.rows) else "No hourly rows in this window."
    return dg.MaterializeResult(
        metadata={
            "window_start": dg.MetadataValue.text(window.start.astimezone(timezone.utc).isoformat()),
            "window_end": dg.MetadataValue.text(window.end.astimezone(timezone.utc).isoformat()),
            "time_zone": dg.MetadataValue.text(time_zone),
            "periods": dg.MetadataValue.int(result.periods),
            "hourly_rows_read": dg.MetadataValue.int(result.hourly_rows),
            f"entity_{period}s": dg.MetadataValue.int(len(result.rows)),
            "points_written": dg.MetadataValue.int(result.points_written),
            "bucket": dg.MetadataValue.text(spec.name),
            "preview": dg.MetadataValue.md(f"```\n{preview}\n```"),
        }
    )


@dg.asset(
    key=["influxdb", "daily_summaries"],
    deps=[["influxdb", "hourly_summaries"]],
    partitions_def=daily_partitions,
    backfill_policy=DAILY_BACKFILL,
    group_name="history",
    kinds={"influxdb"},
    pool="influxdb",
    retry_policy=SUMMARIES_RETRY,
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26)),
)
@fails_at_once
def daily_summaries_asset(context: dg.AssetExecutionContext, influxdb: InfluxDBResource) -> dg.MaterializeResult:
    """Per entity and day of the home (its time zone: a day is the hours starting on that local
    date, 23 or 25 on DST days), HA's own reduction of the hourly summaries: mean of the hourly
    means, min of the mins, max of the maxes, sum of the hourly sum increases (HA's `change`),
    stamped at local midnight in the 2555-day `events_daily` bucket. Each day is deleted and
    rewritten, so re-running a day after its hours were re-run gives the same result."""
    return _roll_up(context, influxdb, "events_daily", "day", daily_partitions.timezone)


@dg.asset(
    key=["influxdb", "monthly_summaries"],
    deps=[["influxdb", "hourly_summaries"]],
    partitions_def=monthly_partitions,
    backfill_policy=MONTHLY_BACKFILL,
    group_name="history",
    kinds={"influxdb"},
    pool="influxdb",
    retry_policy=SUMMARIES_RETRY,
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=32)),
)
@fails_at_once
def monthly_summaries_asset(context: dg.AssetExecutionContext, influxdb: InfluxDBResource) -> dg.MaterializeResult:
    """Per entity and month of the home, HA's own reduction of the month's hourly summaries
    (what `statistics_during_period` gives for period `month`), stamped at local midnight of
    the 1st in the `events_monthly` bucket, kept forever unless `MONTHLY_SUMMARY_RETENTION_DAYS`
    says otherwise. Each month is deleted and rewritten."""
    return _roll_up(context, influxdb, "events_monthly", "month", monthly_partitions.timezone)
