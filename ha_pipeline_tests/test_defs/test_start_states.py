"""The state in force at an hour's start, from the lookback read or the first event."""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from ha_pipeline.defs.assets.history import hours, start_states


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
