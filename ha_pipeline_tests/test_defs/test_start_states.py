"""The state in force at an hour's start, from the lookback read or the first event."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import numpy as np
import pandas as pd

from ha_pipeline.defs.assets.history import hours
from ha_pipeline.timeseries.start_states import LastStates, hour_start_states, start_states
from ha_pipeline.timeseries.events import parse_numbers
from ha_pipeline.timeseries.rollups import start_states_from_events


def _events(rows: list[tuple[str, str, str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"time": pd.Timestamp(t, tz="UTC"), "entity_id": e, "state_value": s, "previous_state": p}
            for t, e, s, p in rows
        ]
    )


def test_last_event_before_wins_and_keeps_the_last_number():
    before = _events(
        [
            ("2025-03-01 09:10", "sensor.power", "12.5", None),
            ("2025-03-01 09:50", "sensor.power", "unavailable", "12.5"),
            ("2025-03-01 09:20", "light.desk", "on", "off"),
        ]
    )
    in_hour = _events([("2025-03-01 10:05", "sensor.temp", "20.1", "19.8")])
    states = start_states(before, in_hour)
    assert states["sensor.power"] == {"state": "unavailable", "last_numeric": 12.5, "last_reset": None}
    assert states["light.desk"]["state"] == "on" and states["light.desk"]["last_numeric"] is None
    # Older than the lookback: the first event's previous_state says what held.
    assert states["sensor.temp"] == {"state": "19.8"}


def test_hours_split_a_multi_partition_window():
    window = dg.TimeWindow(
        datetime(2025, 3, 1, 22, tzinfo=timezone.utc), datetime(2025, 3, 2, 1, tzinfo=timezone.utc)
    )
    starts = [start.hour for start, _ in hours(window)]
    assert starts == [22, 23, 0]


def _reference(before: pd.DataFrame, in_window: pd.DataFrame) -> dict:
    """The plain group-by over the lookback that `LastStates` replaces."""
    states = start_states_from_events(in_window)
    if before.empty:
        return states
    before = before.sort_values("time", kind="stable")
    numbers = before.assign(number=parse_numbers(before["state_value"])).groupby("entity_id")["number"].last()
    resets = before.groupby("entity_id")["last_reset"].last()
    for entity_id, state in before.groupby("entity_id", sort=False)["state_value"].last().items():
        number, reset = numbers.get(entity_id), resets.get(entity_id)
        states[entity_id] = {"state": state, "last_numeric": None if pd.isna(number) else float(number),
                             "last_reset": None if pd.isna(reset) else reset}
    return states


def test_hour_start_states_equal_a_group_by_over_each_hours_lookback():
    rng = np.random.default_rng(7)
    n = 4000
    day = pd.Timestamp("2025-03-01", tz="UTC")
    # whole minutes make ties (several rows of one entity at one time) common
    times = day + pd.to_timedelta(rng.integers(0, 30 * 60, n), unit="min")
    choices = np.array(["1.5", "2", "unavailable", "on", "off", None, "7e1", "nan"], dtype=object)
    rows = pd.DataFrame({
        "time": times,
        "entity_id": rng.choice(np.array(["sensor.a", "sensor.b", "light.c", "sensor.d", None], dtype=object), n),
        "state_value": rng.choice(choices, n),
        "previous_state": rng.choice(choices, n),
        "last_reset": rng.choice(np.array([None, "2025-01-01T00:00:00+00:00", "2025-02-01T00:00:00+00:00"],
                                          dtype=object), n),
    })  # deliberately not sorted by time
    last = LastStates(rows)
    lookback = timedelta(hours=5)
    for hour in range(6, 30):
        start = (day + timedelta(hours=hour)).to_pydatetime()
        in_hour = rows[(rows["time"] >= start) & (rows["time"] < start + timedelta(hours=1))]
        before = rows[(rows["time"] >= start - lookback) & (rows["time"] < start)]
        assert hour_start_states(last, in_hour, start, lookback) == _reference(before, in_hour), hour
