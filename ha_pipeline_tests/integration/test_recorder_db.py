"""The judge itself (testbed/recorder_db.py) on a hand-made recorder file and a real InfluxDB."""

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
import requests

from ha_pipeline_tests.testbed.recorder_db import (
    HOUR_US,
    RecorderDB,
    Row,
    differences,
    influx_hour_counts,
    influx_points,
    per_hour,
    to_us,
    ts_to_us,
)

HOUR = datetime(2024, 1, 10, 12, tzinfo=timezone.utc)

# HA 2024.1's tables, reduced to the columns the judge reads and a few it must not trip over.
SCHEMA = """
CREATE TABLE states_meta (metadata_id INTEGER PRIMARY KEY, entity_id VARCHAR(255) UNIQUE);
CREATE TABLE state_attributes (attributes_id INTEGER PRIMARY KEY, hash BIGINT, shared_attrs TEXT);
CREATE TABLE states (
    state_id INTEGER PRIMARY KEY, entity_id CHAR(0), state VARCHAR(255), attributes CHAR(0),
    last_changed_ts FLOAT, last_updated_ts FLOAT, old_state_id INTEGER, attributes_id INTEGER,
    origin_idx SMALLINT, metadata_id INTEGER REFERENCES states_meta(metadata_id));
CREATE TABLE recorder_runs (run_id INTEGER PRIMARY KEY, start DATETIME, "end" DATETIME,
    closed_incorrect BOOLEAN, created DATETIME);
"""


@pytest.fixture
def recorder(tmp_path) -> RecorderDB:
    path = tmp_path / "home-assistant_v2.db"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO states_meta VALUES (?, ?)", [(1, "sensor.a"), (2, "sensor.b"), (3, "sensor.idle")])
    h = HOUR.timestamp()
    rows = [
        ("10.0", h - 0.000001, 1),  # the microsecond before the hour: the previous hour's
        ("11.0", h, 1),  # exactly on the hour: this hour's
        ("12.0", h + 0.000001, 1),
        ("13.0", h + 3599.999999, 1),  # the last microsecond of the hour
        ("14.0", h + 3600, 1),  # the next hour's start
        ("on", h + 900.25, 2),
        (None, h + 1800.5, 2),  # a removal row (state NULL) is a row too
    ]
    db.executemany("INSERT INTO states (state, last_updated_ts, metadata_id, origin_idx) VALUES (?, ?, ?, 0)", rows)
    db.commit()
    db.close()
    return RecorderDB(path)


def test_rows_of_an_hour_include_the_row_on_its_start_and_not_the_next_hours(recorder):
    rows = recorder.rows(HOUR, HOUR + timedelta(hours=1))
    start = to_us(HOUR)
    assert rows == [
        Row("sensor.a", start, "11.0"),
        Row("sensor.a", start + 1, "12.0"),
        Row("sensor.a", start + HOUR_US - 1, "13.0"),
        Row("sensor.b", start + 900_250_000, "on"),
        Row("sensor.b", start + 1_800_500_000, None),
    ]
    assert recorder.rows(HOUR, HOUR + timedelta(hours=1), ["sensor.b"]) == rows[3:]


def test_hour_counts_per_entity_and_hour(recorder):
    counts = recorder.hour_counts(HOUR - timedelta(hours=1), HOUR + timedelta(hours=2))
    start = to_us(HOUR)
    assert counts == {
        ("sensor.a", start - HOUR_US): 1,
        ("sensor.a", start): 3,
        ("sensor.a", start + HOUR_US): 1,
        ("sensor.b", start): 2,
    }
    assert per_hour(counts) == {start - HOUR_US: 1, start: 5, start + HOUR_US: 1}
    assert recorder.entity_ids() == {"sensor.a", "sensor.b", "sensor.idle"}
    assert recorder.metadata_id("sensor.b") == 2 and recorder.metadata_id("sensor.gone") is None


def test_the_recorder_file_is_opened_read_only(recorder):
    db = recorder._connect()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.execute("DELETE FROM states")
    finally:
        db.close()
    with pytest.raises(FileNotFoundError):
        RecorderDB(recorder.path.with_name("missing.db")).rows(HOUR, HOUR)


def test_float_timestamps_round_to_the_microsecond_like_ha():
    assert ts_to_us(HOUR.timestamp() + 3599.999999) == to_us(HOUR) + HOUR_US - 1
    assert ts_to_us(1_700_000_000.123456) == 1_700_000_000_123_456


def test_differences_name_entity_and_hour():
    start = to_us(HOUR)
    assert differences({("a", start): 2}, {("a", start): 1, ("b", start): 1}) == {
        ("a", HOUR.isoformat()): (2, 1),
        ("b", HOUR.isoformat()): (0, 1),
    }


def test_influx_counts_and_points_read_the_raw_database(influxdb_server):
    database = "judge_unit_test"
    url = influxdb_server.url
    requests.post(f"{url}/query", params={"q": f'CREATE DATABASE "{database}"'}, timeout=10).raise_for_status()
    start = to_us(HOUR)
    lines = [
        f'home_assistant_events,entity_id=sensor.a,domain=sensor state_value="11.0" {start}',
        f'home_assistant_events,entity_id=sensor.a,domain=sensor state_value="13.0" {start + HOUR_US - 1}',
        f'home_assistant_events,entity_id=sensor.a,domain=sensor state_value="14.0" {start + HOUR_US}',
        # another series (other tags) of the same entity at another time is another point
        f'home_assistant_events,entity_id=sensor.b,domain=sensor,device_name=x state_value="on" {start + 5}',
        # another measurement of the same database is not counted
        f'home_assistant_start_states,entity_id=sensor.a state="9" {start}',
    ]
    resp = requests.post(f"{url}/write", params={"db": database, "precision": "u"}, data="\n".join(lines), timeout=10)
    resp.raise_for_status()
    counts = influx_hour_counts(url, database, HOUR, HOUR + timedelta(hours=2))
    assert counts == {("sensor.a", start): 2, ("sensor.a", start + HOUR_US): 1, ("sensor.b", start): 1}
    assert influx_points(url, database, HOUR, HOUR + timedelta(hours=1)) == [
        Row("sensor.a", start, "11.0"), Row("sensor.a", start + HOUR_US - 1, "13.0"), Row("sensor.b", start + 5, "on"),
    ]
    assert influx_hour_counts(url, "no_such_database", HOUR, HOUR + timedelta(hours=1)) == {}
