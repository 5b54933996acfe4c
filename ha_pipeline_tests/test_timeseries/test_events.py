"""history_to_events and state_as_number: hand-computed expectations and edge cases."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ha_pipeline.timeseries.events import (
    EVENT_COLUMNS,
    history_to_events,
    state_as_number,
    states_as_numbers,
)

WS = datetime(2024, 3, 1, 10, tzinfo=timezone.utc)
WE = WS + timedelta(hours=1)
S = WS.timestamp()


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("on", 1.0), ("open", 1.0), ("home", 1.0), ("locked", 1.0), ("above_horizon", 1.0),
        ("off", 0.0), ("closed", 0.0), ("not_home", 0.0), ("unlocked", 0.0), ("below_horizon", 0.0),
        ("21.5", 21.5), ("-3", -3.0), (" 7 ", 7.0), ("1e3", 1000.0), ("1_000", 1000.0),
        ("unknown", None), ("unavailable", None), ("", None), ("heat", None),
        ("nan", None), ("inf", None), ("-Infinity", None), (None, None),
    ],
)
def test_state_as_number(state: str | None, expected: float | None) -> None:
    assert state_as_number(state) == expected


def test_states_as_numbers_matches_scalar() -> None:
    states = pd.Series(["on", "off", "21.5", "unknown", None, "1_000", "nan", "closed", "٣"], dtype=object)
    expected = [state_as_number(s) for s in states]
    got = states_as_numbers(states).tolist()
    assert [None if math.isnan(g) else g for g in got] == expected
    # Python's float() accepts Arabic-Indic digits, so HA does too.
    assert got[-1] == 3.0


@given(st.lists(st.one_of(st.sampled_from(["on", "off", "unknown", "unavailable", "inf", "x"]),
                          st.floats(allow_nan=True).map(repr), st.text(max_size=5)), max_size=30))
@settings(max_examples=60, deadline=None)
def test_states_as_numbers_property(states: list[str]) -> None:
    got = states_as_numbers(pd.Series(states, dtype=object)).to_numpy()
    want = np.array([np.nan if (v := state_as_number(s)) is None else v for s in states], dtype=float)
    np.testing.assert_array_equal(got, want)


def _row(state: str, offset: float, *, lc: float | None = None, **attrs: object) -> dict:
    row: dict = {"s": state, "lu": S + offset}
    if attrs:
        row["a"] = dict(attrs)
    if lc is not None:
        row["lc"] = S + lc
    return row


def test_start_row_is_context_not_event() -> None:
    history = {
        "sensor.t": [
            _row("20.5", 0, lc=-600, unit_of_measurement="°C"),  # start-time row, changed 10 min ago
            _row("21", 60, unit_of_measurement="°C"),
            _row("21", 90, lc=60, unit_of_measurement="°C", battery=3),  # attribute-only update
            _row("unavailable", 300),
        ]
    }
    events, rejects = history_to_events(history, WS, WE, {})
    assert rejects == {}
    assert list(events.columns[: len(EVENT_COLUMNS)]) == list(EVENT_COLUMNS)
    assert events["state_value"].tolist() == ["21", "21", "unavailable"]
    assert events["previous_state"].tolist() == ["20.5", "21", "21"]
    # 20.5 held from its real last_changed (-600 s) to +60 s; then row to row.
    assert events["duration_seconds"].tolist() == [660.0, 30.0, 210.0]
    assert events["normalized_value"].tolist()[:2] == [21.0, 21.0]
    assert math.isnan(events["normalized_value"].iat[2])
    assert events["time"].iat[0] == WS + timedelta(seconds=60)
    assert str(events["time"].dt.tz) == "UTC"
    assert events["domain"].unique().tolist() == ["sensor"]
    # The unavailable row has no attributes at all, so it inherits the previous row's unit.
    assert events["unit_of_measurement"].tolist() == ["°C", "°C", "°C"]


def test_start_row_without_last_changed_counts_from_window_start() -> None:
    history = {"light.k": [_row("off", 0), _row("on", 42)]}
    events, _ = history_to_events(history, WS, WE, {})
    assert events["duration_seconds"].tolist() == [42.0]
    assert events["previous_state"].tolist() == ["off"]
    assert events["normalized_value"].tolist() == [1.0]


def test_entity_without_earlier_state_has_no_previous() -> None:
    events, _ = history_to_events({"sensor.new": [_row("5", 100), _row("6", 200)]}, WS, WE, {})
    assert pd.isna(events["previous_state"].iat[0])
    assert math.isnan(events["duration_seconds"].iat[0])
    assert events["duration_seconds"].iat[1] == 100.0


def test_genuine_event_at_window_start_after_start_row() -> None:
    history = {"switch.p": [_row("off", 0, lc=-50), _row("on", 0), _row("off", 30)]}
    events, _ = history_to_events(history, WS, WE, {})
    assert events["state_value"].tolist() == ["on", "off"]
    assert events["time"].iat[0] == WS
    assert events["previous_state"].tolist() == ["off", "on"]
    assert events["duration_seconds"].tolist() == [50.0, 30.0]


def test_rejects_are_counted_by_reason_and_never_crash() -> None:
    history = {
        "sensor.x": [
            _row("1", 0),
            {"s": "2"},  # no lu
            {"s": "3", "lu": "yesterday"},
            {"s": "4", "lu": True},
            _row("5", -10),  # before the window (and not the start row)
            _row("6", 3600),  # end is exclusive
            {"lu": S + 5},
            {"s": 7, "lu": S + 6},
            _row("x" * 256, 7),
            "not a row",
            _row("ok", 8),
        ]
    }
    events, rejects = history_to_events(history, WS, WE, {})
    assert rejects == {
        "missing_lu": 1,
        "invalid_lu": 2,
        "outside_window": 2,
        "missing_state": 1,
        "non_string_state": 1,
        "state_too_long": 1,
        "malformed_row": 1,
    }
    assert events["state_value"].tolist() == ["ok"]
    assert events["previous_state"].tolist() == ["1"]


def test_tags_from_inventory_with_attribute_fallback() -> None:
    tags = {
        "sensor.p": {"area": "Kitchen", "device_name": "Plug", "integration": "shelly",
                     "device_class": "power", "unit_of_measurement": "W", "state_class": "measurement"},
        "sensor.q": {"area": "Hall", "device_name": None, "integration": "zha"},
    }
    history = {
        "sensor.p": [_row("3", 10, unit_of_measurement="kW", device_class="energy")],
        "sensor.q": [_row("4", 11, unit_of_measurement="lx", device_class="illuminance"),
                     {"s": "5", "lu": S + 12}],  # minimal_response row: inherits attributes
    }
    events, _ = history_to_events(history, WS, WE, tags)
    p = events[events["entity_id"] == "sensor.p"].iloc[0]
    assert (p["area"], p["device_name"], p["integration"], p["device_class"], p["unit_of_measurement"]) == (
        "Kitchen", "Plug", "shelly", "power", "W"
    )
    q = events[events["entity_id"] == "sensor.q"]
    assert q["device_class"].tolist() == ["illuminance", "illuminance"]
    assert q["unit_of_measurement"].tolist() == ["lx", "lx"]
    assert q["device_name"].isna().all()


def test_last_reset_attribute_is_carried() -> None:
    history = {"sensor.cost": [_row("1", 10, last_reset="2024-03-01T00:00:00+00:00"), _row("2", 20, x=1)]}
    events, _ = history_to_events(history, WS, WE, {"sensor.cost": {"state_class": "total"}})
    assert events["last_reset"].iat[0] == "2024-03-01T00:00:00+00:00"
    # The second row has attributes without last_reset: absent, not inherited.
    assert pd.isna(events["last_reset"].iat[1])


def test_odd_entity_ids_pass_through_untouched() -> None:
    odd = ['sensor.a "quoted", with spaces', "sensor.température_ü", "sensor.x=y\\z"]
    history = {e: [_row("1", i + 1)] for i, e in enumerate(odd)}
    events, _ = history_to_events(history, WS, WE, {})
    assert sorted(events["entity_id"]) == sorted(odd)


def test_unsorted_rows_are_put_in_time_order() -> None:
    history = {"sensor.u": [_row("0", 0), _row("2", 20), _row("1", 10)]}
    events, _ = history_to_events(history, WS, WE, {})
    assert events["state_value"].tolist() == ["1", "2"]
    assert events["duration_seconds"].tolist() == [10.0, 10.0]


def test_empty_history() -> None:
    events, rejects = history_to_events({}, WS, WE, {})
    assert events.empty and rejects == {}
    assert set(EVENT_COLUMNS) <= set(events.columns)
    events, _ = history_to_events({"sensor.a": [_row("1", 0)]}, WS, WE, {})
    assert events.empty


def test_event_count_equals_rows_kept() -> None:
    rng = np.random.default_rng(1)
    history = {}
    expected = 0
    for e in range(20):
        n = int(rng.integers(0, 50))
        times = np.sort(rng.uniform(1, 3599, n))
        history[f"sensor.e{e}"] = [_row("1", 0)] + [_row(str(v), float(t)) for v, t in zip(range(n), times)]
        expected += n
    events, _ = history_to_events(history, WS, WE, {})
    assert len(events) == expected
    assert (events["duration_seconds"] >= 0).all()


def test_times_are_whole_microseconds_as_ha_stamps_them() -> None:
    # float epochs are never exact: 0.36174 s is stored as 0.361739999… and must not lose 1 µs
    offsets = [0.36174, 12.000001, 1799.999999, 3599.7]
    events, _ = history_to_events({"sensor.t": [{"s": str(i), "lu": S + o} for i, o in enumerate(offsets)]}, WS, WE, {})
    micros = [(t - WS) // timedelta(microseconds=1) for t in events["time"]]
    assert micros == [round(o * 1e6) for o in offsets]


def test_two_rows_at_one_instant_keep_has_later_row_and_are_counted() -> None:
    history = {
        "sensor.a": [_row("1", 10), _row("2", 20), _row("3", 20), _row("4", 30)],
        "sensor.b": [_row("x", 20)],
    }
    events, rejects = history_to_events(history, WS, WE, {})
    assert rejects == {"duplicate_time": 1}
    a = events[events["entity_id"] == "sensor.a"]
    assert list(a["state_value"]) == ["1", "3", "4"]
    assert not events.duplicated(["entity_id", "time"]).any()
    assert len(events) == 4
