"""hourly_summaries / reduce_hourly against hand-computed HA long-term statistics."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ha_pipeline.timeseries.rollups import (
    SUMMARY_COLUMNS,
    hourly_summaries,
    reduce_hourly,
    start_states_from_events,
)

WS = datetime(2024, 5, 1, 6, tzinfo=timezone.utc)
WE = WS + timedelta(hours=1)


def _events(rows: list[tuple], *, last_reset: bool = False) -> pd.DataFrame:
    """rows: (entity_id, seconds after WS, state[, last_reset])."""
    frame = pd.DataFrame(
        {
            "time": [WS + timedelta(seconds=r[1]) for r in rows],
            "entity_id": [r[0] for r in rows],
            "state_value": [r[2] for r in rows],
            "previous_state": [None] * len(rows),
        }
    )
    if last_reset:
        frame["last_reset"] = [r[3] if len(r) > 3 else None for r in rows]
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def _one(summary: pd.DataFrame, entity_id: str) -> pd.Series:
    rows = summary[summary["entity_id"] == entity_id]
    assert len(rows) == 1
    return rows.iloc[0]


def test_mean_holds_last_number_through_unavailable_within_a_period() -> None:
    events = _events([("sensor.t", 120, "unavailable"), ("sensor.t", 420, "20"), ("sensor.t", 1800, "5")])
    row = _one(hourly_summaries(events, WS, WE, {"sensor.t": {"state": "10"}}, {}), "sensor.t")
    # Periods: [0,300) 10 held through `unavailable`; [300,600) starts unavailable, so it
    # starts at 420 with 20; 20 for four more; the row at exactly 1800 opens six periods of 5.
    assert row["mean"] == pytest.approx((10 + 20 * 5 + 5 * 6) / 12)
    assert (row["min"], row["max"], row["last"], row["count"]) == (5.0, 20.0, 5.0, 3)
    assert row["unavailable_seconds"] == 300.0
    assert row["covered_seconds"] == 3600.0 - 120.0
    assert math.isnan(row["sum_increase"]) and math.isnan(row["on_seconds"])
    assert row["time"] == pd.Timestamp(WS)
    assert list(row.index) == list(SUMMARY_COLUMNS)


def test_first_row_mid_hour_and_mean_of_period_means() -> None:
    events = _events([("sensor.h", 1000, "10"), ("sensor.h", 1100, "20")])
    row = _one(hourly_summaries(events, WS, WE, {}, {}), "sensor.h")
    # Period [900,1200) starts at the first number: (10*100 + 20*100) / 200 = 15; then eight
    # periods of 20. HA averages period means (not a time-weighted mean over the hour).
    assert row["mean"] == pytest.approx((15 + 20 * 8) / 9)
    assert row["covered_seconds"] == 200 + 8 * 300
    assert row["min"] == 10.0


def test_min_max_include_state_replaced_exactly_at_window_start() -> None:
    events = _events([("sensor.m", 0, "10")])
    row = _one(hourly_summaries(events, WS, WE, {"sensor.m": {"state": "50"}}, {}), "sensor.m")
    assert row["mean"] == 10.0
    assert row["max"] == 50.0  # HA's first period includes the state in force before it


def test_entities_without_rows() -> None:
    starts = {"sensor.held": {"state": "7.5"}, "sensor.gone": {"state": "unavailable"}, "sensor.none": {"state": None}}
    summary = hourly_summaries(_events([]), WS, WE, starts, {})
    assert sorted(summary["entity_id"]) == ["sensor.gone", "sensor.held"]
    held = _one(summary, "sensor.held")
    assert (held["mean"], held["min"], held["max"], held["last"], held["count"]) == (7.5, 7.5, 7.5, 7.5, 0)
    assert held["covered_seconds"] == 3600.0
    gone = _one(summary, "sensor.gone")
    assert math.isnan(gone["mean"]) and gone["unavailable_seconds"] == 3600.0 and gone["covered_seconds"] == 0


def test_total_increasing_sum_survives_resets_dips_and_negatives() -> None:
    events = _events(
        [
            ("sensor.e", 600, "105"),
            ("sensor.e", 1200, "50"),  # < 90 % of 105: new cycle, counts 50 from zero
            ("sensor.e", 1800, "52"),
            ("sensor.e", 2400, "51"),  # dip within 10 %: not a reset, HA subtracts it
            ("sensor.e", 2500, "-3"),  # negative: HA skips the reading
            ("sensor.e", 3000, "60"),
        ]
    )
    meta = {"sensor.e": {"state_class": "total_increasing"}}
    row = _one(hourly_summaries(events, WS, WE, {"sensor.e": {"state": "100"}}, meta), "sensor.e")
    assert row["sum_increase"] == pytest.approx(5 + 50 + 2 - 1 + 9)


def test_sum_across_unavailable_start_uses_last_number() -> None:
    events = _events([("sensor.e", 100, "110"), ("sensor.e", 200, "115")])
    meta = {"sensor.e": {"state_class": "total_increasing"}}
    with_last = hourly_summaries(events, WS, WE, {"sensor.e": {"state": "unavailable", "last_numeric": 100.0}}, meta)
    without = hourly_summaries(events, WS, WE, {"sensor.e": {"state": "unavailable"}}, meta)
    assert _one(with_last, "sensor.e")["sum_increase"] == pytest.approx(15)
    # Nothing known before: the first number is the zero point, as in HA's first compile.
    assert _one(without, "sensor.e")["sum_increase"] == pytest.approx(5)


def test_total_new_cycle_on_last_reset_change() -> None:
    a, b, b_other_tz = "2024-05-01T00:00:00+00:00", "2024-05-01T06:10:00+00:00", "2024-05-01T08:10:00+02:00"
    events = _events(
        [
            ("sensor.c", 60, "4", a),
            ("sensor.c", 600, "0.5", b),  # new cycle: +0.5 from zero
            ("sensor.c", 900, "1.5", b_other_tz),  # same instant: same cycle, +1
            ("sensor.c", 1200, "1.0", None),  # total may decrease: -0.5
        ],
        last_reset=True,
    )
    meta = {"sensor.c": {"state_class": "total"}}
    row = _one(hourly_summaries(events, WS, WE, {"sensor.c": {"state": "3", "last_reset": a}}, meta), "sensor.c")
    assert row["sum_increase"] == pytest.approx(1 + 0.5 + 1 - 0.5)


def test_on_seconds_and_non_numeric_entities() -> None:
    events = _events([("binary_sensor.d", 600, "on"), ("binary_sensor.d", 900, "off"), ("binary_sensor.d", 3000, "on")])
    row = _one(hourly_summaries(events, WS, WE, {"binary_sensor.d": {"state": "off"}}, {}), "binary_sensor.d")
    assert row["on_seconds"] == 300 + 600
    assert math.isnan(row["mean"]) and row["covered_seconds"] == 0 and row["count"] == 3


def test_start_states_default_from_first_event() -> None:
    events = _events([("sensor.t", 1800, "20"), ("sensor.t", 2400, "30")])
    events["previous_state"] = ["10", "20"]
    assert start_states_from_events(events) == {"sensor.t": {"state": "10"}}
    row = _one(hourly_summaries(events, WS, WE, None, {}), "sensor.t")
    assert row["mean"] == pytest.approx((10 * 6 + 20 * 2 + 30 * 4) / 12)


def test_tags_from_meta_then_events() -> None:
    events = _events([("sensor.t", 10, "1")])
    events["area"] = ["Attic"]
    meta = {"sensor.t": {"device_class": "temperature", "unit_of_measurement": "°C", "integration": "zha"}}
    row = _one(hourly_summaries(events, WS, WE, {}, meta), "sensor.t")
    assert (row["domain"], row["area"], row["device_class"], row["unit_of_measurement"], row["integration"]) == (
        "sensor", "Attic", "temperature", "°C", "zha"
    )


def test_events_outside_window_are_ignored() -> None:
    events = _events([("sensor.t", -5, "99"), ("sensor.t", 3600, "99"), ("sensor.t", 10, "1")])
    row = _one(hourly_summaries(events, WS, WE, {}, {}), "sensor.t")
    assert row["count"] == 1 and row["max"] == 1.0


_TAGS = {"entity_id": "sensor.t", "domain": "sensor", "device_class": None, "area": "A",
         "device_name": None, "integration": None, "unit_of_measurement": "°C"}


def _hour_rows(first_hour: datetime, n: int, entity_id: str = "sensor.t") -> pd.DataFrame:
    """``n`` hourly rows from ``first_hour``, each field a different function of the hour index."""
    k = np.arange(n, dtype=float)
    return pd.DataFrame(
        {
            **{**_TAGS, "entity_id": entity_id},
            "time": pd.date_range(first_hour, periods=n, freq="h"),
            "mean": 20 + np.sin(k), "min": 10 + np.cos(k), "max": 30 + np.sin(2 * k), "last": k,
            "count": 2, "unavailable_seconds": 60.0, "on_seconds": np.nan, "sum_increase": 0.25 * (k % 5),
            "covered_seconds": 3540.0,
        }
    )[list(SUMMARY_COLUMNS)]


def _local_periods(hourly: pd.DataFrame, period: str, zone: str) -> dict[tuple[int, int, int], list[int]]:
    """Row positions per local period, by a plain loop over zoneinfo (apart from reduce_hourly)."""
    out: dict[tuple[int, int, int], list[int]] = {}
    for i, t in enumerate(hourly["time"]):
        local = t.to_pydatetime().astimezone(ZoneInfo(zone))
        out.setdefault((local.year, local.month, local.day if period == "day" else 1), []).append(i)
    return out


def test_a_day_is_the_plain_mean_of_its_hourly_means_not_weighted() -> None:
    day = datetime(2024, 5, 1, tzinfo=timezone.utc)
    hourly = pd.DataFrame(
        [
            {**_TAGS, "time": day, "mean": 10.0, "min": 8.0, "max": 12.0, "last": 11.0, "count": 4,
             "unavailable_seconds": 0.0, "on_seconds": np.nan, "sum_increase": 1.5, "covered_seconds": 3600.0},
            {**_TAGS, "time": day + timedelta(hours=5), "mean": 20.0, "min": 15.0, "max": 25.0, "last": np.nan,
             "count": 2, "unavailable_seconds": 2400.0, "on_seconds": np.nan, "sum_increase": np.nan,
             "covered_seconds": 1200.0},
            {**_TAGS, "time": day + timedelta(hours=24), "mean": 99.0, "min": 99.0, "max": 99.0, "last": 99.0,
             "count": 9, "unavailable_seconds": 0.0, "on_seconds": np.nan, "sum_increase": 9.0,
             "covered_seconds": 3600.0},
        ]
    )
    first, second = (row for _, row in reduce_hourly(hourly, "day", "UTC").iterrows())
    # HA's _reduce_statistics: mean(mean_values), not weighted by the time each hour covered
    assert first["mean"] == 15.0
    assert (first["min"], first["max"], first["last"], first["count"]) == (8.0, 25.0, 11.0, 6)
    assert (first["unavailable_seconds"], first["sum_increase"], first["covered_seconds"]) == (2400.0, 1.5, 4800.0)
    assert math.isnan(first["on_seconds"])
    assert first["time"] == pd.Timestamp(day) and first["area"] == "A"
    assert (second["time"], second["mean"], second["count"]) == (pd.Timestamp(day + timedelta(days=1)), 99.0, 9)


@pytest.mark.parametrize(
    ("zone", "local_day", "first_hour_utc", "hours"),
    [
        ("Europe/Amsterdam", "2026-10-25", "2026-10-24T22:00Z", 25),  # DST ends: 25 hours
        ("Europe/Amsterdam", "2026-03-29", "2026-03-28T23:00Z", 23),  # DST starts: 23 hours
        ("Europe/Amsterdam", "2026-06-01", "2026-05-31T22:00Z", 24),
        ("Asia/Kolkata", "2026-10-25", "2026-10-24T19:00Z", 24),  # day starts 18:30Z: hours 19:00Z … 18:00Z
        ("America/New_York", "2026-11-01", "2026-11-01T04:00Z", 25),
    ],
)
def test_a_local_day_is_the_hours_starting_on_that_date(zone, local_day, first_hour_utc, hours) -> None:
    hourly = _hour_rows(pd.Timestamp(first_hour_utc) - timedelta(hours=30), hours + 60)
    days = reduce_hourly(hourly, "day", zone).set_index("time")
    midnight = datetime.fromisoformat(local_day).replace(tzinfo=ZoneInfo(zone))
    row = days.loc[pd.Timestamp(midnight)]
    # stamped at local midnight, as a UTC instant (Kolkata: 18:30Z)
    assert pd.Timestamp(midnight).tz_convert("UTC") == pd.Timestamp(row.name)
    mine = hourly[(hourly["time"] >= pd.Timestamp(first_hour_utc))].head(hours)
    assert row["count"] == 2 * hours and row["covered_seconds"] == 3540.0 * hours
    assert row["mean"] == pytest.approx(mine["mean"].mean(), rel=1e-12)
    assert (row["min"], row["max"], row["last"]) == (mine["min"].min(), mine["max"].max(), mine["last"].iat[-1])
    assert row["sum_increase"] == pytest.approx(mine["sum_increase"].sum(), rel=1e-12)


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "Asia/Kolkata", "UTC", "America/St_Johns"])
@pytest.mark.parametrize("period", ["day", "month"])
def test_periods_match_a_plain_loop_over_zoneinfo(zone, period) -> None:
    hourly = pd.concat(
        [_hour_rows(datetime(2026, 2, 20, tzinfo=timezone.utc), 24 * 60),
         _hour_rows(datetime(2026, 9, 28, 5, tzinfo=timezone.utc), 24 * 40, entity_id="sensor.u")],
        ignore_index=True,
    )
    out = reduce_hourly(hourly, period, zone)
    expected = []
    for entity_id, rows in hourly.groupby("entity_id"):
        rows = rows.reset_index(drop=True)
        for (year, month, day), positions in sorted(_local_periods(rows, period, zone).items()):
            part = rows.iloc[positions]
            start = datetime(year, month, day, tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)
            expected.append((entity_id, pd.Timestamp(start), len(part), float(np.mean(part["mean"]))))
    got = [(r.entity_id, r.time, r.count // 2, r.mean) for r in out.itertuples()]
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    assert all(g[3] == pytest.approx(e[3], rel=1e-12) for g, e in zip(got, expected))
    if period == "month" and zone == "Europe/Amsterdam":
        hours = {t.tz_convert(zone).strftime("%Y-%m"): n for _, t, n, _ in expected}
        assert (hours["2026-03"], hours["2026-10"]) == (743, 745)


def test_daily_from_24_hourly_rollups_counts_add_up() -> None:
    rng = np.random.default_rng(3)
    day = datetime(2024, 5, 1, tzinfo=timezone.utc)
    hours, total = [], 0
    for h in range(24):
        start = day + timedelta(hours=h)
        n = int(rng.integers(0, 30))
        total += n
        offsets = np.sort(rng.uniform(0, 3600, n))
        frame = pd.DataFrame(
            {
                "time": pd.to_datetime([start + timedelta(seconds=float(o)) for o in offsets], utc=True),
                "entity_id": "sensor.r",
                "state_value": [f"{v:.2f}" for v in rng.normal(20, 3, n)],
                "previous_state": None,
            }
        )
        hours.append(hourly_summaries(frame, start, start + timedelta(hours=1), {"sensor.r": {"state": "20"}}, {}))
    hourly = pd.concat(hours, ignore_index=True)
    daily = reduce_hourly(hourly, "day", "UTC")
    assert daily["count"].iat[0] == total == hourly["count"].sum()
    assert daily["min"].iat[0] == hourly["min"].min() and daily["max"].iat[0] == hourly["max"].max()
    assert daily["covered_seconds"].iat[0] == pytest.approx(86400)
    assert daily["mean"].iat[0] == pytest.approx(hourly["mean"].mean())


def _reference(rows: list[tuple[float, str]], start: str | None, state_class: str | None) -> dict[str, float]:
    """A plain loop over HA's recipe for one entity-hour (written apart from the vectorised code)."""

    def num(state: str | None) -> float | None:
        try:
            value = float(state)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    timeline = [(-1.0, start)] + sorted(rows, key=lambda r: r[0])  # stable: same-time rows keep order
    means, mins, maxs = [], [], []
    for p in range(12):
        s, e = p * 300.0, p * 300.0 + 300.0
        before = [r for r in timeline if r[0] < s]
        history = before[-1:] + [r for r in timeline if s <= r[0] < e]
        floats = [(max(t, s), v) for t, st in history if (v := num(st)) is not None]
        if not floats:
            continue
        acc = sum(v * ((floats[i + 1][0] if i + 1 < len(floats) else e) - t) for i, (t, v) in enumerate(floats))
        means.append(acc / (e - floats[0][0]))
        mins.append(min(v for _, v in floats))
        maxs.append(max(v for _, v in floats))
    out = {"mean": sum(means) / len(means) if means else math.nan,
           "min": min(mins) if mins else math.nan, "max": max(maxs) if maxs else math.nan}
    if state_class == "total_increasing":
        prev, total = num(start), 0.0
        if prev is not None and prev < 0:
            prev = None  # HA skips negative readings, the start state included
        for _, st in sorted(rows, key=lambda r: r[0]):
            v = num(st)
            if v is None or v < 0:
                continue
            if prev is not None:
                total += v if v < 0.9 * prev else v - prev
            prev = v
        # No number at all: no sum (HA stores no statistic).
        out["sum_increase"] = total if prev is not None else math.nan
    return out


_STATE = st.one_of(
    st.sampled_from(["unavailable", "unknown", "on", "0", "1000"]),
    st.integers(min_value=-5, max_value=200).map(str),
    st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda v: f"{v:.3f}"),
)
_TIME = st.one_of(st.sampled_from([0.0, 300.0, 1800.0, 3599.0, 3599.999]), st.floats(min_value=0, max_value=3599.999))


@given(
    rows=st.lists(st.tuples(_TIME, _STATE), max_size=25),
    start=st.one_of(st.none(), _STATE),
    state_class=st.sampled_from(["measurement", "total_increasing"]),
)
@settings(max_examples=60, deadline=None)
def test_hourly_summaries_match_reference_loop(
    rows: list[tuple[float, str]], start: str | None, state_class: str
) -> None:
    # Event times are stored to the microsecond; the reference sees the same instants.
    rows = sorted(((round(t, 6), s) for t, s in rows), key=lambda r: r[0])
    frame = _events([("sensor.r", t, s) for t, s in rows])
    meta = {"sensor.r": {"state_class": state_class}}
    summary = hourly_summaries(frame, WS, WE, {"sensor.r": {"state": start}}, meta)
    want = _reference(rows, start, state_class)
    if summary.empty:
        assert not rows and start is None
        return
    got = _one(summary, "sensor.r")
    for field, value in want.items():
        if math.isnan(value):
            assert math.isnan(got[field]), field
        else:
            assert got[field] == pytest.approx(value, rel=1e-9, abs=1e-9), field
    assert got["count"] == len(rows)


def test_frame_read_back_with_string_dtype_and_nan_gives_same_result() -> None:
    events = _events([("sensor.t", 100, "1"), ("sensor.t", 700, "unavailable"), ("sensor.u", 50, "on")])
    events["previous_state"] = ["0", "1", None]
    # What a read from InfluxDB looks like: pandas string columns, NaN for missing values.
    read_back = events.astype({"entity_id": "str", "state_value": "str", "previous_state": "str"})
    assert pd.isna(read_back["previous_state"].iat[2])
    pd.testing.assert_frame_equal(hourly_summaries(events, WS, WE), hourly_summaries(read_back, WS, WE))


def test_empty_read_without_columns() -> None:
    summary = hourly_summaries(pd.DataFrame(), WS, WE, {"sensor.a": {"state": "4"}}, {})
    assert summary[["entity_id", "mean", "count"]].values.tolist() == [["sensor.a", 4.0, 0]]
    assert hourly_summaries(pd.DataFrame(), WS, WE).empty
