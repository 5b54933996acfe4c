"""Daily and monthly summaries: each local period of a window rewritten from its hourly rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from ha_pipeline.timeseries.backend import TimeseriesBackend
from ha_pipeline.timeseries.buckets import BucketSpec
from ha_pipeline.timeseries.calendar import Period, periods
from ha_pipeline.timeseries.rollups import FIELD_COLUMNS, SUMMARY_COLUMNS, TAG_COLUMNS, reduce_hourly


@dataclass(frozen=True)
class PeriodRollup:
    """What rolling up a window did: hourly rows read, period rows made and points written."""

    periods: int
    hourly_rows: int
    rows: pd.DataFrame
    points_written: int


def roll_up_periods(
    backend: TimeseriesBackend,
    hourly: BucketSpec,
    target: BucketSpec,
    start: datetime,
    end: datetime,
    period: Period,
    time_zone: str,
) -> PeriodRollup:
    """Rewrite every local ``period`` of ``[start, end)`` in ``target`` from its hourly rows
    (``reduce_hourly``); each period is deleted first, so a re-run gives the same rows."""
    windows = periods(start, end, period, time_zone)
    frames, hourly_rows, written = [], 0, 0
    for window_start, window_end in windows:
        # InfluxDB returns only the fields it holds; the reduction expects every summary column.
        hours = backend.read(hourly.name, hourly.measurement, window_start, window_end).reindex(
            columns=list(SUMMARY_COLUMNS)
        )
        rows = reduce_hourly(hours, period, time_zone)
        backend.delete(target.name, target.measurement, window_start, window_end)
        if len(rows):
            written += backend.write(target.name, rows, target.measurement, list(TAG_COLUMNS), list(FIELD_COLUMNS))
        hourly_rows += len(hours)
        frames.append(rows)
    rows = pd.concat(frames, ignore_index=True) if frames else reduce_hourly(pd.DataFrame(), period, time_zone)
    return PeriodRollup(periods=len(windows), hourly_rows=hourly_rows, rows=rows, points_written=written)
