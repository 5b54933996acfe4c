"""Our hourly summaries against Home Assistant's own statistics code (HA 2024.1.6 venv).

The same state rows go (a) through HA's sensor/recorder statistics functions in the HA venv
(``ha_statistics_probe.py``) and (b) through history_to_events + hourly_summaries, hour by
hour, as the pipeline runs them. Every entity-hour must agree on mean, min, max and the
increase of HA's sum to a relative error of 1e-6.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ha_pipeline.timeseries.events import history_to_events
from ha_pipeline.timeseries.rollups import hourly_summaries

PROBE = Path(__file__).with_name("ha_statistics_probe.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
HOURS = 6
REL = 1e-6

pytestmark = pytest.mark.real_ha


@pytest.fixture(scope="session")
def ha_venv_python() -> Path:
    """The real-HA interpreter, found the way the test bed finds it (``HA_VENV`` or ``.ha-venv``)."""
    try:
        from ha_pipeline_tests.testbed.homeassistant import ha_python
    except ImportError:
        python = Path(os.environ.get("HA_VENV", REPO_ROOT / ".ha-venv")) / "bin" / "python"
    else:
        try:
            python = ha_python()
        except FileNotFoundError as exc:
            pytest.fail(str(exc), pytrace=False)
    if not python.exists():
        pytest.fail(f"{python} missing: build the HA venv with scripts/install_ha.sh", pytrace=False)
    check = subprocess.run(
        [str(python), "-c", "import homeassistant.components.sensor.recorder"],
        capture_output=True, text=True, timeout=120,
    )
    if check.returncode != 0:
        pytest.fail(
            f"{python} cannot import Home Assistant's sensor recorder (is the HA venv complete? "
            f"re-run scripts/install_ha.sh): {check.stderr.strip().splitlines()[-1:]}",
            pytrace=False,
        )
    return python


def _at(hours: float = 0, minutes: float = 0, seconds: float = 0) -> float:
    return (T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)).timestamp()


def _dataset() -> list[dict[str, Any]]:
    """Entities covering the edge cases the issue names, rows in time order."""
    temp = [{"s": "20.0", "lu": _at(minutes=-10), "a": {"unit_of_measurement": "°C"}}]
    value = 20.0
    # Irregular steps with sub-second stamps through hours 0-3; hour 4 has no rows (held).
    for i in range(1, 60):
        t = _at(minutes=i * 4.1, seconds=(i * 7) % 13 + 0.123456)
        if _at(hours=2, minutes=13) <= t < _at(hours=2, minutes=42) or t >= _at(hours=4):
            continue
        value = round(value + ((i * 37) % 11 - 5) * 0.3, 2)
        temp.append({"s": f"{value}", "lu": t, "a": {"unit_of_measurement": "°C"}})
    temp += [
        {"s": "unknown", "lu": _at(hours=1, minutes=20, seconds=1), "a": {"unit_of_measurement": "°C"}},
        {"s": "unavailable", "lu": _at(hours=2, minutes=13, seconds=20), "a": {}},
        {"s": "19.5", "lu": _at(hours=2, minutes=41, seconds=5), "a": {"unit_of_measurement": "°C"}},
        # Attribute-only update: same state, new attributes.
        {"s": "19.5", "lu": _at(hours=2, minutes=44), "a": {"unit_of_measurement": "°C", "battery": 80}},
        # Exactly on the hour and on a 5-minute boundary.
        {"s": "18.0", "lu": _at(hours=5), "a": {"unit_of_measurement": "°C"}},
        {"s": "18.5", "lu": _at(hours=5, minutes=10), "a": {"unit_of_measurement": "°C"}},
    ]
    temp.sort(key=lambda r: r["lu"])

    energy = [{"s": "100.0", "lu": _at(minutes=-5), "a": {"unit_of_measurement": "kWh"}}]
    reading = 100.0
    for i in range(1, 97):
        t = _at(minutes=i * 3.7, seconds=0.5)
        if _at(hours=4, minutes=20) <= t < _at(hours=4, minutes=50):
            continue
        if t >= _at(hours=1, minutes=31, seconds=10) and reading > 50:
            reading = 0.4  # meter reset: below 90 % of the previous reading
        elif _at(hours=3) <= t < _at(hours=3, minutes=4):
            reading = round(reading * 0.96, 3)  # small dip: not a reset, HA subtracts it
        elif _at(hours=5, minutes=15) <= t < _at(hours=5, minutes=18.7):
            reading = round(reading * 0.7, 3)  # new meter reading 70 %: a reset (< 90 %)
        else:
            reading = round(reading + 0.1 + (i % 5) * 0.1, 3)
        energy.append({"s": f"{reading}", "lu": t, "a": {"unit_of_measurement": "kWh"}})
    energy += [
        {"s": "unavailable", "lu": _at(hours=4, minutes=20), "a": {}},
    ]
    energy.sort(key=lambda r: r["lu"])

    cycle_a = {"unit_of_measurement": "EUR", "last_reset": "2023-12-31T00:00:00+00:00"}
    cycle_b = {"unit_of_measurement": "EUR", "last_reset": "2024-01-01T03:00:00+00:00"}
    # The same instant written in another offset is the same cycle for HA.
    cycle_b_other_tz = {"unit_of_measurement": "EUR", "last_reset": "2024-01-01T04:00:00+01:00"}
    cost = [{"s": "3.0", "lu": _at(minutes=-1), "a": cycle_a}]
    amount = 3.0
    for i in range(1, 40):
        t = _at(minutes=i * 8.3, seconds=0.25)
        if t >= _at(hours=3, seconds=30) and cost[-1]["a"] is cycle_a:
            amount = 0.1
            attrs = cycle_b
        else:
            amount = round(amount + 0.05 * (i % 4), 3)
            attrs = cost[-1]["a"] if cost[-1]["a"] is cycle_a else cycle_b_other_tz
        cost.append({"s": f"{amount}", "lu": t, "a": attrs})

    late = [
        {"s": f"{40 + i * 1.5}", "lu": _at(hours=1, minutes=37 + i * 6, seconds=12), "a": {"unit_of_measurement": "%"}}
        for i in range(12)
    ]
    door = [
        {"s": "off", "lu": _at(minutes=-30), "a": {"device_class": "door"}},
        {"s": "on", "lu": _at(minutes=12), "a": {"device_class": "door"}},
        {"s": "off", "lu": _at(minutes=14, seconds=30), "a": {"device_class": "door"}},
        {"s": "on", "lu": _at(hours=3, minutes=1), "a": {"device_class": "door"}},
    ]
    flaky = [
        {"s": "5", "lu": _at(minutes=-1), "a": {}},
        {"s": "6", "lu": _at(minutes=7), "a": {}},
        {"s": "unavailable", "lu": _at(minutes=20), "a": {}},
        {"s": "7", "lu": _at(hours=2, minutes=50), "a": {}},
    ]
    return [
        {"entity_id": "sensor.temperature", "state_class": "measurement", "rows": temp},
        {"entity_id": "sensor.energy", "state_class": "total_increasing", "rows": energy},
        {"entity_id": "sensor.gas_cost", "state_class": "total", "rows": cost},
        {"entity_id": "sensor.late_humidity", "state_class": "measurement", "rows": late},
        {"entity_id": "binary_sensor.door", "state_class": None, "rows": door},
        {"entity_id": "sensor.flaky", "state_class": "measurement", "rows": flaky},
    ]


def _ha_hours(python: Path, entities: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    payload = {"start": _at(), "end": _at(hours=HOURS), "entities": entities}
    done = subprocess.run(
        [str(python), str(PROBE)], input=json.dumps(payload), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {(h["entity_id"], int(h["start"])): h for h in json.loads(done.stdout)["hours"]}


def _our_hours(entities: list[dict[str, Any]]) -> tuple[pd.DataFrame, int]:
    """Run the pipeline's path hour by hour: HA-shaped history -> events -> hourly summaries."""
    meta = {e["entity_id"]: {"state_class": e["state_class"]} for e in entities}
    last_numeric: dict[str, float] = {}
    frames, events_total = [], 0
    for hour in range(HOURS):
        ws, we = T0 + timedelta(hours=hour), T0 + timedelta(hours=hour + 1)
        history: dict[str, list[dict[str, Any]]] = {}
        start_states: dict[str, dict[str, Any]] = {}
        for e in entities:
            eid, rows = e["entity_id"], e["rows"]
            before = [r for r in rows if r["lu"] < ws.timestamp()]
            inside = [r for r in rows if ws.timestamp() <= r["lu"] < we.timestamp()]
            hist = []
            if before:
                # HA's start-time row: lu clamped to the window start, lc the real change.
                start = before[-1]
                hist.append({"s": start["s"], "a": start["a"], "lu": ws.timestamp(), "lc": start["lu"]})
                start_states[eid] = {
                    "state": start["s"],
                    "last_reset": start["a"].get("last_reset"),
                    "last_numeric": last_numeric.get(eid),
                }
            hist += [{"s": r["s"], "a": r["a"], "lu": r["lu"]} for r in inside]
            if hist:
                history[eid] = hist
        events, rejects = history_to_events(history, ws, we, {})
        assert rejects == {}
        assert len(events) == sum(
            1 for e in entities for r in e["rows"] if ws.timestamp() <= r["lu"] < we.timestamp()
        )
        events_total += len(events)
        hourly = hourly_summaries(events, ws, we, start_states, meta)
        for eid, last in zip(hourly["entity_id"], hourly["last"]):
            if not math.isnan(last):
                last_numeric[eid] = last
        frames.append(hourly)
    return pd.concat(frames, ignore_index=True), events_total


def _close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=REL, abs_tol=1e-9)


def test_hourly_summaries_match_home_assistant_statistics(ha_venv_python: Path) -> None:
    entities = _dataset()
    theirs = _ha_hours(ha_venv_python, entities)
    ours, events_total = _our_hours(entities)
    assert ours["count"].sum() == events_total

    checked_means = checked_sums = 0
    last_sum: dict[str, float] = {}
    mismatches: list[str] = []
    for row in ours.sort_values(["entity_id", "time"]).itertuples(index=False):
        key = (row.entity_id, int(row.time.timestamp()))
        ha = theirs.pop(key, None)
        label = f"{row.entity_id} @ {row.time:%H:%M}"
        if ha is None:
            if not math.isnan(row.mean):
                mismatches.append(f"{label}: HA has no statistic, we have mean {row.mean}")
            if not (math.isnan(row.sum_increase) or row.sum_increase == 0):
                mismatches.append(f"{label}: HA has no sum, we have increase {row.sum_increase}")
            continue
        for field in ("mean", "min", "max"):
            if not _close(getattr(row, field), ha[field]):
                mismatches.append(f"{label}: {field} ours {getattr(row, field)} HA {ha[field]}")
        checked_means += 1
        if ha["sum"] is not None:
            increase = ha["sum"] - last_sum.get(row.entity_id, 0.0)
            last_sum[row.entity_id] = ha["sum"]
            if not _close(row.sum_increase, increase):
                mismatches.append(f"{label}: sum_increase ours {row.sum_increase} HA {increase}")
            checked_sums += 1
    assert not mismatches, "\n".join(mismatches)
    assert not theirs, f"HA has statistics we did not produce: {sorted(theirs)}"
    # The data really exercises what it claims to.
    assert checked_means >= 20 and checked_sums >= 10
    assert ("binary_sensor.door", int(_at(hours=1))) not in theirs
    late = ours[ours["entity_id"] == "sensor.late_humidity"]
    assert late["time"].min() == T0 + timedelta(hours=1)
    held = ours[(ours["entity_id"] == "sensor.temperature") & (ours["time"] == T0 + timedelta(hours=4))]
    assert held["count"].iat[0] == 0 and held["min"].iat[0] == held["max"].iat[0]
    energy = ours[ours["entity_id"] == "sensor.energy"].set_index("time")
    assert energy.loc[T0 + timedelta(hours=1), "sum_increase"] > 0
