"""A realistic history for the test bed home, back-filled into HA's own recorder database.

`start_realistic_ha(config_dir, start, end)` starts the test bed HA once (so its recorder creates
its schema and registries), stops it, writes the history below into `states` / `states_meta` /
`state_attributes` with a `recorder_runs` row covering it (HA answers history only inside its
recorder runs, read at start-up), and starts it again. The home's zone is Europe/Amsterdam
(ha_config/configuration.yaml), so its hours are UTC hours but its days are not UTC days.

The history, from two hours before `start` to just before HA's first own row, is what imported
or back-filled history looks like, on round timestamps:

* `sensor.kitchen_smart_plug_power`: every quarter hour (a row at exactly HH:00:00.000000).
* `sensor.main_energy_meter_energy` (total_increasing, with attributes): every quarter hour,
  a reset to near 0 and one reading exactly 90 % of the one before (a meter glitch HA's
  statistics take as a reset).
* `sensor.main_energy_meter_power`: every 10 s at odd microseconds (most rows, as in real homes).
* `sensor.kitchen_smart_plug_energy` (total_increasing): every half hour, a reset to 0.010;
  the entity `RENAMED` renames.
* `binary_sensor.hallway_motion_motion`: every 7 minutes at odd microseconds, and around every
  sixth hour's start rows at HH:59:59.999999 and HH:00:00.000001.
* `sensor.living_room_climate_humidity`: steady, one row 30 h before `end`, nothing since
  (and one before `start`).
* `sensor.living_room_climate_battery`: every two hours at HH:30; the entity `REMOVED` removes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .homeassistant import RealHomeAssistant, start_real_ha

PLUG_POWER = "sensor.kitchen_smart_plug_power"
MAIN_ENERGY = "sensor.main_energy_meter_energy"
MAIN_POWER = "sensor.main_energy_meter_power"
PLUG_ENERGY = "sensor.kitchen_smart_plug_energy"
MOTION = "binary_sensor.hallway_motion_motion"
HUMIDITY = "sensor.living_room_climate_humidity"
BATTERY = "sensor.living_room_climate_battery"

REMOVED = BATTERY
RENAMED = (PLUG_ENERGY, "sensor.kitchen_plug_energy_renamed")
# Set over HA's WebSocket API between two runs of the same hours.
ODD_DEVICE_NAME = "Printer C:\\"  # a trailing backslash: line protocol cannot end a tag with it
ODD_ENTITY_NAME = "Line1\nLine2"
ODD_DEVICE_ENTITY = PLUG_POWER  # whose device gets ODD_DEVICE_NAME
ODD_NAMED_ENTITY = PLUG_POWER

ATTRIBUTES = {
    PLUG_POWER: {"state_class": "measurement", "unit_of_measurement": "W", "device_class": "power",
                 "friendly_name": "Kitchen Smart Plug Power"},
    MAIN_ENERGY: {"state_class": "total_increasing", "unit_of_measurement": "kWh", "device_class": "energy",
                  "friendly_name": "Main Energy Meter Energy"},
    PLUG_ENERGY: {"state_class": "total_increasing", "unit_of_measurement": "kWh", "device_class": "energy",
                  "friendly_name": "Kitchen Smart Plug Energy"},
    MAIN_POWER: {"state_class": "measurement", "unit_of_measurement": "W", "device_class": "power",
                 "friendly_name": "Main Energy Meter Power"},
    MOTION: {"device_class": "motion", "friendly_name": "Hallway Motion Motion"},
    HUMIDITY: {"state_class": "measurement", "unit_of_measurement": "%", "device_class": "humidity",
               "friendly_name": "Living Room Climate Humidity"},
    BATTERY: {"state_class": "measurement", "unit_of_measurement": "%", "device_class": "battery",
              "friendly_name": "Living Room Climate Battery", "entity_category": "diagnostic"},
}
LEAD_IN = timedelta(hours=2)  # history before `start`, so HA holds every hour of the window whole


@dataclass(frozen=True)
class Seeded:
    """What was written: rows per entity, and the notable instants (epoch seconds)."""

    rows: dict[str, list[tuple[str, float]]]
    meter_reset_at: float
    meter_ninety_percent_at: float
    steady_at: float


def _fnv1a_32(data: bytes) -> int:
    """The hash HA keeps beside `shared_attrs` (fnv1a 32-bit)."""
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def _every(first: float, step: float, until: float, value: Callable[[int], str]) -> list[tuple[str, float]]:
    rows, i, moment = [], 0, first
    while moment < until:
        rows.append((value(i), moment))
        i, moment = i + 1, moment + step
    return rows


def _meter(first: float, step: float, until: float, start_kwh: float, reset_step: int,
           ninety_step: int | None) -> tuple[list[tuple[str, float]], float, float | None]:
    """A total_increasing meter: +0.25 kWh per row, back to 0.010 at `reset_step`, one reading of
    exactly 90 % of the previous at `ninety_step` (whole Wh, multiples of 10: exact in decimal)."""
    rows, wh, moment, i = [], round(start_kwh * 1000), first, 0
    reset_at = ninety_at = None
    while moment < until:
        if i == reset_step:
            wh, reset_at = 10, moment
        elif i == ninety_step:
            wh, ninety_at = wh * 9 // 10, moment
        elif i:
            wh += 250
        rows.append((f"{wh / 1000:.3f}", moment))
        i, moment = i + 1, moment + step
    assert reset_at is not None
    return rows, reset_at, ninety_at


def history(start: datetime, end: datetime, until: float) -> Seeded:
    """The seeded rows of each entity, all before `until` (HA's own first row)."""
    t0 = (start - LEAD_IN).timestamp()
    quarter, limit = 900.0, min(until, end.timestamp())
    rows: dict[str, list[tuple[str, float]]] = {}
    rows[PLUG_POWER] = _every(t0, quarter, limit, lambda i: f"{(i * 37) % 900 / 10:.1f}")
    # 250 Wh steps from a multiple of 10 Wh keep every reading one, so 90 % of it is exact.
    rows[MAIN_ENERGY], reset_at, ninety_at = _meter(t0, quarter, limit, 1000.0, reset_step=70, ninety_step=150)
    assert ninety_at is not None
    # a busy meter: every 10 s at odd microseconds (most of the home's rows, as in real homes)
    rows[MAIN_POWER] = _every(t0 + 3.000417, 10.0, limit, lambda i: f"{800 + (i * 53) % 400 / 10:.1f}")
    rows[PLUG_ENERGY], _, _ = _meter(t0, 1800.0, limit, 12.0, reset_step=40, ninety_step=None)
    motion = _every(t0 + 124.123456, 420.0, limit, lambda i: "on" if i % 2 == 0 else "off")
    hour = t0 + 3600
    edges = []
    while hour + 3600 < limit:
        if int(hour) // 3600 % 6 == 0:
            edges += [("on", hour - 0.000001), ("off", hour + 0.000001)]
        hour += 3600
    rows[MOTION] = sorted(motion + edges, key=lambda row: row[1])
    steady_at = (end - timedelta(hours=30)).timestamp()
    rows[HUMIDITY] = [("44.0", t0), ("47.5", steady_at)]
    rows[BATTERY] = _every(t0 + 1800, 7200.0, limit, lambda i: f"{90 - i * 0.5:.1f}")
    for entity_id, entity_rows in rows.items():
        assert all(ts < until for _, ts in entity_rows), f"{entity_id}: seeded rows must precede HA's own"
    return Seeded(rows, reset_at, ninety_at, steady_at)


def seed_recorder(database: Path, start: datetime, end: datetime) -> Seeded:
    """Write `history(start, end, ...)` into HA's recorder database (HA must be stopped)."""
    db = sqlite3.connect(database, timeout=30)
    try:
        meta = dict(db.execute("SELECT entity_id, metadata_id FROM states_meta").fetchall())
        missing = set(ATTRIBUTES) - meta.keys()
        assert not missing, f"the test bed home should record {sorted(missing)}"
        first_row = db.execute("SELECT min(last_updated_ts) FROM states").fetchone()[0]
        seeded = history(start, end, first_row - 60)
        sample = db.execute("SELECT start FROM recorder_runs ORDER BY run_id LIMIT 1").fetchone()[0]
        run_start = (start - LEAD_IN - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        assert len(sample) == len(run_start), f"unexpected recorder_runs.start format {sample!r}"
        with db:
            for entity_id, entity_rows in seeded.rows.items():
                shared = json.dumps(ATTRIBUTES[entity_id], separators=(",", ":"))
                attributes_id = db.execute(
                    "INSERT INTO state_attributes (hash, shared_attrs) VALUES (?, ?)",
                    (_fnv1a_32(shared.encode()), shared),
                ).lastrowid
                old_state_id, last_state, last_changed = None, None, None
                for state, ts in entity_rows:
                    # HA stores last_changed_ts only when it differs from last_updated_ts.
                    last_changed = ts if state != last_state else last_changed
                    old_state_id = db.execute(
                        "INSERT INTO states (state, last_changed_ts, last_updated_ts, old_state_id, attributes_id,"
                        " origin_idx, context_id_bin, metadata_id) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                        (state, None if last_changed == ts else last_changed, ts, old_state_id, attributes_id,
                         os.urandom(16), meta[entity_id]),
                    ).lastrowid
                    last_state = state
            db.execute(
                'INSERT INTO recorder_runs (start, "end", closed_incorrect, created) VALUES (?, ?, 0, ?)',
                (run_start, sample, run_start),
            )
    finally:
        db.close()
    return seeded


def start_realistic_ha(config_dir: Path, start: datetime, end: datetime) -> tuple[RealHomeAssistant, Seeded]:
    """A real HA whose recorder holds the realistic history of [start - LEAD_IN, end)."""
    start_real_ha(config_dir).stop()
    seeded = seed_recorder(config_dir / "home-assistant_v2.db", start, end)
    return start_real_ha(config_dir), seeded
