"""Daily and monthly summaries judged by the real Home Assistant's own statistics reduction.

Hourly statistics spanning eight months, with both DST changes of the test bed home
(Europe/Amsterdam: 2026-03-29 has 23 hours, 2026-10-25 has 25), are imported into the real HA
(`recorder/import_statistics`): a measurement with mean/min/max and gaps, and a meter with
state/sum and resets. HA's hourly rows go through our `reduce_hourly` in the zone the product
would use (read from HA's `get_config` and recorded as discovery does); every day and month must
equal what HA's `recorder/statistics_during_period` returns for periods `day` and `month`.
Then HA is switched to Asia/Kolkata (a day starts at 18:30Z) and everything is compared again.
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ha_pipeline.homeassistant.client import HomeAssistantClient
from ha_pipeline.timeseries.calendar import home_time_zone, record_ha_time_zone
from ha_pipeline.timeseries.rollups import SUMMARY_COLUMNS, reduce_hourly

pytestmark = pytest.mark.real_ha

FIRST_HOUR = datetime(2026, 3, 14, 23, tzinfo=timezone.utc)  # 2026-03-15 00:00 in Amsterdam
HOURS = 24 * 235  # through early November: both DST changes and seven whole months
REL = 1e-9


def _hourly_inputs(suffix: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """(metadata, rows) of a measurement and of a meter; some hours missing or without a mean."""
    rng = np.random.default_rng(10)
    measurement = {"has_mean": True, "has_sum": False, "name": "calendar test", "source": "ha_pipeline",
                   "statistic_id": f"ha_pipeline:calendar_mean_{suffix}", "unit_of_measurement": "°C"}
    meter = {"has_mean": False, "has_sum": True, "name": "calendar meter", "source": "ha_pipeline",
             "statistic_id": f"ha_pipeline:calendar_meter_{suffix}", "unit_of_measurement": "kWh"}
    means, sums = [], []
    state = total = 0.0
    for k in range(HOURS):
        start = (FIRST_HOUR + timedelta(hours=k)).isoformat()
        if k % 97 != 13:  # an hour HA has no row for
            mean = 20 + 8 * math.sin(k / 11) + float(rng.normal(0, 0.7))
            row: dict[str, Any] = {"start": start, "min": mean - float(rng.uniform(0, 3)),
                                   "max": mean + float(rng.uniform(0, 3))}
            if k % 53 != 7:  # a row without a mean
                row["mean"] = mean
            means.append(row)
        increase = float(rng.uniform(0.01, 1.5))
        # a reset every ~9 days: the state starts again from the increase, the sum runs on
        state = increase if k % 217 == 100 else state + increase
        total += increase
        sums.append({"start": start, "state": round(state, 6), "sum": round(total, 6)})
    return measurement, means, meter, sums


def _statistics(ha, ids: list[str], period: str, end: datetime) -> dict[str, list[dict[str, Any]]]:
    return ha.ws_command(
        "recorder/statistics_during_period", timeout=60,
        start_time=FIRST_HOUR.isoformat(), end_time=end.isoformat(), statistic_ids=ids, period=period,
        types=["mean", "min", "max", "change", "state", "sum"],
    )


def _as_hourly_summaries(rows: dict[str, list[dict[str, Any]]]) -> pd.DataFrame:
    """HA's hourly rows as our hourly summary rows (the fields reduce_hourly reads)."""
    records = []
    for statistic_id, stats in rows.items():
        for i, stat in enumerate(stats):
            records.append({
                "time": pd.Timestamp(stat["start"], unit="ms", tz="UTC"), "entity_id": statistic_id,
                "mean": stat.get("mean"), "min": stat.get("min"), "max": stat.get("max"),
                "last": stat.get("state"), "sum_increase": stat.get("change"), "count": 1,
                "unavailable_seconds": 0.0, "on_seconds": np.nan,
                # our hours carry how long their means covered; HA does not weight by it
                "covered_seconds": 3600.0 * (1 + i % 4) / 4,
            })
    frame = pd.DataFrame(records).reindex(columns=list(SUMMARY_COLUMNS))
    return frame.astype({c: "float64" for c in ("mean", "min", "max", "last", "sum_increase")})


def _rel_err(ours: float | None, ha: float | None) -> float:
    if ha is None or ours is None or pd.isna(ours):
        return 0.0 if (ha is None) == (ours is None or pd.isna(ours)) else math.inf
    return abs(ours - ha) / max(abs(ha), 1e-300)


def _compare(ha, ids: list[str], hourly: pd.DataFrame, time_zone: str, end: datetime) -> dict[str, Any]:
    """Every day and month HA returns against ours: largest relative error per field, counts."""
    worst: dict[str, float] = {}
    periods = {}
    for period in ("day", "month"):
        ours = reduce_hourly(hourly, period, time_zone).set_index(["entity_id", "time"])
        theirs = _statistics(ha, ids, period, end)
        assert set(theirs) == set(ids)
        n = 0
        for statistic_id, stats in theirs.items():
            mine = ours.xs(statistic_id, level="entity_id")
            starts = [pd.Timestamp(s["start"], unit="ms", tz="UTC") for s in stats]
            # the same periods, stamped at the same instants (local midnights as UTC)
            assert starts == list(mine.index), (period, time_zone, statistic_id)
            for stat, (_, row) in zip(stats, mine.iterrows()):
                pairs = {"mean": (row["mean"], stat.get("mean")), "min": (row["min"], stat.get("min")),
                         "max": (row["max"], stat.get("max"))}
                if "change" in stat and stat.get("change") is not None:
                    pairs = {"change": (row["sum_increase"], stat["change"]), "state": (row["last"], stat.get("state"))}
                for field, (a, b) in pairs.items():
                    err = _rel_err(None if pd.isna(a) else float(a), b)
                    key = f"{period}/{field}"
                    worst[key] = max(worst.get(key, 0.0), err)
                    assert err <= REL, (time_zone, statistic_id, period, stat["start"], field, a, b)
                n += 1
        periods[period] = n
    return {"worst": worst, "periods": periods}


def _zone_as_the_product_reads_it(ha, data_dir: Path) -> str:
    """HA's get_config zone, recorded as discovery records it and read as the code location does."""
    with HomeAssistantClient(ha.url, ha.token) as client:
        record_ha_time_zone(client.config().time_zone, data_dir)
    return home_time_zone({"HA_PIPELINE_DATA_DIR": str(data_dir)})


def _wait_until_imported(ha, ids: list[str], expected: dict[str, int], end: datetime) -> dict[str, list[dict]]:
    """HA imports in its recorder thread: poll until every hourly row is readable."""
    deadline = time.monotonic() + 120
    while True:
        rows = _statistics(ha, ids, "hour", end)
        if {i: len(rows.get(i, [])) for i in ids} == expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_days_and_months_equal_home_assistants_reduction(real_ha, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    measurement, means, meter, sums = _hourly_inputs(suffix)
    for metadata, stats in ((measurement, means), (meter, sums)):
        real_ha.ws_command("recorder/import_statistics", timeout=60, metadata=metadata, stats=stats)
    ids = [measurement["statistic_id"], meter["statistic_id"]]
    end = FIRST_HOUR + timedelta(hours=HOURS)
    hourly_rows = _wait_until_imported(real_ha, ids, {ids[0]: len(means), ids[1]: len(sums)}, end)
    assert {i: len(hourly_rows[i]) for i in ids} == {ids[0]: len(means), ids[1]: len(sums)}
    hourly = _as_hourly_summaries(hourly_rows)

    original = real_ha.ws_command("get_config")["time_zone"]
    assert original == "Europe/Amsterdam"
    zone = _zone_as_the_product_reads_it(real_ha, tmp_path)
    assert zone == "Europe/Amsterdam"
    amsterdam = _compare(real_ha, ids, hourly, zone, end)
    days = reduce_hourly(hourly, "day", zone).set_index("time")
    hours_per_day = days[days["entity_id"] == ids[1]]["count"]
    assert hours_per_day[pd.Timestamp("2026-10-24T22:00Z")] == 25
    assert hours_per_day[pd.Timestamp("2026-03-28T23:00Z")] == 23

    try:
        real_ha.ws_command("config/core/update", time_zone="Asia/Kolkata")
        zone = _zone_as_the_product_reads_it(real_ha, tmp_path)
        assert zone == "Asia/Kolkata"
        kolkata = _compare(real_ha, ids, hourly, zone, end)
    finally:
        real_ha.ws_command("config/core/update", time_zone=original)
    assert real_ha.ws_command("get_config")["time_zone"] == original
    days = reduce_hourly(hourly, "day", "Asia/Kolkata")
    assert (days["time"].dt.strftime("%H:%M") == "18:30").all()
    print(f"\n[calendar] Europe/Amsterdam {amsterdam}\n[calendar] Asia/Kolkata {kolkata}")
    assert amsterdam["periods"]["month"] >= 2 * 8 and kolkata["periods"]["day"] >= 2 * 230
