"""History and statistics semantics of the simulated recorder (HA 2024.1's rules)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ha_pipeline.simulator import SimulatedHome
from ha_pipeline.simulator.recorder import (
    history_during_period,
    history_json,
    list_statistic_ids,
    statistics_during_period,
)

from .conftest import NOW

DAY = 86400.0


def _first(home: SimulatedHome, prefix: str, contains: str = "") -> str:
    return next(e for e in home.states if e.startswith(prefix) and contains in e and e in home.entities)


def test_start_time_row_is_clamped_and_rows_follow(home: SimulatedHome) -> None:
    eid = _first(home, "sensor.", "temperature")
    start = NOW - 6 * 3600 + 0.25
    rows = history_during_period(home, start, NOW, [eid])[eid]
    assert rows[0]["lu"] == start and "lc" not in rows[0]
    assert all(start < r["lu"] < NOW for r in rows[1:])
    assert [r["lu"] for r in rows] == sorted(r["lu"] for r in rows)
    assert set(rows[0]) == {"s", "a", "lu"}
    without = history_during_period(home, start, NOW, [eid], include_start_time_state=False)[eid]
    assert without == rows[1:]


def test_window_start_state_matches_previous_window(home: SimulatedHome) -> None:
    ids = [e for e in home.states if e in home.entities][:40]
    cut = NOW - 5 * 3600 - 123.456
    early = history_during_period(home, NOW - 9 * 3600, cut, ids, significant_changes_only=False)
    late = history_during_period(home, cut, NOW, ids, significant_changes_only=False)
    for eid in ids:
        assert late[eid][0]["s"] == early[eid][-1]["s"], eid
    # and the rows of a long window split anywhere are the rows of the two halves
    whole = history_during_period(home, NOW - 9 * 3600, NOW, ids, significant_changes_only=False,
                                  include_start_time_state=False)
    halves = history_during_period(home, NOW - 9 * 3600, cut, ids, significant_changes_only=False,
                                   include_start_time_state=False)
    rest = history_during_period(home, cut, NOW, ids, significant_changes_only=False,
                                 include_start_time_state=False)
    for eid in ids:
        assert whole.get(eid, []) == halves.get(eid, []) + rest.get(eid, []), eid


def test_lc_only_on_attribute_only_rows_and_dropped_when_significant_only(home: SimulatedHome) -> None:
    lights = [e for e in home.states if e.startswith("light.")]
    full = history_during_period(home, NOW - 2 * DAY, NOW, lights, significant_changes_only=False)
    with_lc = [(e, i) for e, rows in full.items() for i, r in enumerate(rows) if "lc" in r]
    assert with_lc, "lights change brightness while on"
    for eid, i in with_lc:
        row, prev = full[eid][i], full[eid][i - 1]
        assert row["lc"] != row["lu"] and row["s"] == prev["s"] == "on"
        assert row["a"]["brightness"] != prev["a"]["brightness"]
    significant = history_during_period(home, NOW - 2 * DAY, NOW, lights, significant_changes_only=True)
    for eid, rows in significant.items():
        assert all("lc" not in r for r in rows)
        assert len(rows) == len(full[eid]) - sum(1 for e, _ in with_lc if e == eid)


def test_minimal_response_and_no_attributes(home: SimulatedHome) -> None:
    ids = [_first(home, "sensor.", "temperature"), _first(home, "light.")]
    minimal = history_during_period(home, NOW - DAY, NOW, ids, minimal_response=True)
    for rows in minimal.values():
        assert set(rows[0]) == {"s", "a", "lu"}
        assert all(set(r) == {"s", "lu"} for r in rows[1:])
        assert all(a["s"] != b["s"] for a, b in zip(rows, rows[1:]))
    bare = history_during_period(home, NOW - DAY, NOW, ids, no_attributes=True)
    assert all("a" not in r for rows in bare.values() for r in rows)


def test_unknown_entities_are_absent_and_future_windows_hold_only_the_start_state(home: SimulatedHome) -> None:
    eid = _first(home, "sensor.")
    assert history_during_period(home, NOW - 3600, NOW, ["sensor.does_not_exist"]) == {}
    later = history_during_period(home, NOW + 10, NOW + 20, [eid])
    assert len(later[eid]) == 1 and later[eid][0]["s"] == home.states[eid]["state"]


def test_runtime_state_appears_in_later_history(home: SimulatedHome) -> None:
    eid = _first(home, "switch.")
    old = home.states[eid]["state"]
    new_state = "off" if old == "on" else "on"
    home.set_state(eid, new_state)
    rows = history_during_period(home, NOW - 3600, NOW + 10 * 365 * DAY, [eid])[eid]
    assert rows[-1]["s"] == new_state and rows[-1]["lu"] > NOW


def test_meters_increase_reset_and_gaps_exist() -> None:
    home = SimulatedHome.generate(seed=11, devices=60, now=NOW)
    meters = [e for e, s in home.states.items() if s["attributes"].get("state_class") == "total_increasing"]
    hist = history_during_period(home, NOW - 60 * DAY, NOW, meters, minimal_response=True, no_attributes=True)
    resets = 0
    for rows in hist.values():
        values = [float(r["s"]) for r in rows if r["s"] != "unavailable"]
        drops = [(a, b) for a, b in zip(values, values[1:]) if b < a]
        resets += len(drops)
        assert all(b < 0.9 * a and b < 1.0 for a, b in drops), "only resets to ~0 ever go down"
    assert resets > 0
    everything = history_during_period(home, NOW - 7 * DAY, NOW, list(home.states), minimal_response=True)
    assert any(r["s"] == "unavailable" for rows in everything.values() for r in rows)


def test_event_rate_scales_rows() -> None:
    slow = SimulatedHome.generate(seed=5, event_rate=1.0, now=NOW)
    fast = SimulatedHome.generate(seed=5, event_rate=8.0, now=NOW)
    ids = [e for e in slow.states if e.startswith("sensor.")]
    count = lambda h: sum(len(r) for r in history_during_period(h, NOW - DAY, NOW, ids).values())  # noqa: E731
    assert count(fast) > 4 * count(slow)


def test_hourly_statistics_are_time_weighted(home: SimulatedHome) -> None:
    eid = _first(home, "sensor.", "temperature")
    start, end = NOW - 6 * 3600, NOW
    stats = statistics_during_period(home, start, end, [eid], "hour", types=["mean", "min", "max"])[eid]
    assert [set(r) for r in stats] == [{"start", "end", "mean", "min", "max"}] * len(stats)
    first = stats[0]
    assert isinstance(first["start"], int) and first["end"] - first["start"] == 3_600_000
    assert first["start"] % 3_600_000 == 0 and first["start"] >= start * 1000
    # recompute the first hour by hand from history
    a, b = first["start"] / 1000, first["end"] / 1000
    rows = history_during_period(home, a, b, [eid], significant_changes_only=False)[eid]
    times = [r["lu"] for r in rows] + [b]
    values = [float(r["s"]) for r in rows]
    mean = sum(v * (t2 - t1) for v, t1, t2 in zip(values, times, times[1:])) / (b - a)
    assert first["mean"] == pytest.approx(mean)
    assert first["min"] == min(values) and first["max"] == max(values)


def test_meter_statistics_sum_and_units(home: SimulatedHome) -> None:
    eid = next(e for e, s in home.states.items() if s["attributes"].get("device_class") == "energy")
    kwh = statistics_during_period(home, NOW - 3 * DAY, NOW, [eid], "day")[eid]
    assert set(kwh[0]) == {"start", "end", "mean", "min", "max", "last_reset", "state", "sum", "change"}
    assert kwh[0]["mean"] is None and kwh[0]["last_reset"] is None
    sums = [r["sum"] for r in kwh]
    assert sums == sorted(sums)
    assert kwh[1]["change"] == pytest.approx(sums[1] - sums[0])
    wh = statistics_during_period(home, NOW - 3 * DAY, NOW, [eid], "day", units={"energy": "Wh"})[eid]
    assert wh[0]["sum"] == pytest.approx(kwh[0]["sum"] * 1000)
    five = statistics_during_period(home, NOW - 3600, NOW, [eid], "5minute")[eid]
    assert all(r["end"] - r["start"] == 300_000 for r in five)
    assert statistics_during_period(home, NOW - 3600, NOW, ["sensor.nope"], "hour") == {}


def test_list_statistic_ids(home: SimulatedHome) -> None:
    items = list_statistic_ids(home)
    assert items and all(i["has_mean"] != i["has_sum"] for i in items)
    assert all(i["statistic_id"].startswith("sensor.") for i in items)
    sums = list_statistic_ids(home, "sum")
    assert sums and all(i["has_sum"] and not i["has_mean"] for i in sums)


@pytest.mark.parametrize("flags", [{}, {"minimal_response": True}, {"minimal_response": True, "no_attributes": True},
                                   {"significant_changes_only": False}, {"include_start_time_state": False}])
def test_json_fast_path_equals_the_dicts(home: SimulatedHome, flags: dict[str, bool]) -> None:
    home.set_state("sensor.odd_state", 'we"ird","st\\ate\n ½', {"friendly_name": 'A "quoted", name'})
    home.set_state("sensor.odd_state", "plain")
    ids = list(home.states)
    end = NOW + 10 * 365 * DAY
    assert json.loads(history_json(home, NOW - DAY, end, ids, **flags)) == history_during_period(
        home, NOW - DAY, end, ids, **flags)


_SMALL = SimulatedHome.generate(seed=21, devices=12, now=NOW)


@settings(max_examples=25, deadline=None)
@given(start=st.floats(0, 72 * 3600), length=st.floats(1, 30 * 3600), cut=st.floats(0.01, 0.99))
def test_any_window_split_anywhere_gives_the_same_rows(start: float, length: float, cut: float) -> None:
    ids = list(_SMALL.states)
    t0 = NOW - 80 * 3600 + start
    t1 = min(t0 + length, NOW)
    tc = t0 + (t1 - t0) * cut
    flags = {"significant_changes_only": False, "include_start_time_state": False}
    whole = history_during_period(_SMALL, t0, t1, ids, **flags)
    first = history_during_period(_SMALL, t0, tc, ids, **flags)
    second = history_during_period(_SMALL, tc, t1, ids, **flags)
    at_cut = history_during_period(_SMALL, tc, t1, ids, significant_changes_only=False)
    for eid in ids:
        assert whole.get(eid, []) == first.get(eid, []) + second.get(eid, []), eid
        rows_before = history_during_period(_SMALL, t0 - 30 * 3600, tc, [eid], **flags).get(eid)
        if rows_before:
            # the state in force at the cut is the last row before it
            assert at_cut[eid][0]["s"] == rows_before[-1]["s"]
            assert at_cut[eid][0]["lu"] == tc


def test_first_bucket_change_does_not_depend_on_the_query_start(home: SimulatedHome) -> None:
    eid = next(e for e, s in home.states.items() if s["attributes"].get("device_class") == "energy")
    short = statistics_during_period(home, NOW - 6 * 3600, NOW, [eid], "hour")[eid]
    long = statistics_during_period(home, NOW - 12 * 3600, NOW, [eid], "hour")[eid]
    by_start = {r["start"]: r for r in long}
    for row in short:
        assert row["sum"] == by_start[row["start"]]["sum"]
        assert row["change"] == pytest.approx(by_start[row["start"]]["change"])
