"""The judge of the archive: HA's own recorder database and the raw InfluxDB, each read directly.

`RecorderDB` opens HA's recorder SQLite file read-only (HA keeps writing it, so with a busy
timeout) and gives, per entity_id and UTC hour, the count of `states` rows (joined to
`states_meta`, `last_updated_ts` in [hour, hour + 1 h)) and the rows themselves to the
microsecond. `influx_hour_counts` / `influx_points` read the events measurement of an InfluxDB
1.x database over plain HTTP InfluxQL, so a comparison of the two uses neither ha_pipeline's
client, nor its backend, nor its reader.

Times are whole microseconds since the epoch (UTC): HA stores `last_updated_ts` as a float and
turns it into a datetime with `datetime.fromtimestamp` (rounded to the microsecond); so do we.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

HOUR_US = 3_600_000_000
EVENTS_MEASUREMENT = "home_assistant_events"
COUNT_FIELD = "state_value"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# (entity_id, UTC hour start in µs) -> rows / points
HourCounts = Counter


@dataclass(frozen=True, order=True)
class Row:
    """One recorded state: entity_id, state, last_updated in µs since the epoch (UTC)."""

    entity_id: str
    last_updated_us: int
    state: str | None

    @property
    def hour_us(self) -> int:
        return self.last_updated_us - self.last_updated_us % HOUR_US


def to_us(moment: datetime) -> int:
    """A timezone-aware datetime as whole µs since the epoch."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def ts_to_us(ts: float) -> int:
    """HA's float `last_updated_ts` as whole µs, rounded as HA's `utc_from_timestamp` rounds."""
    return to_us(datetime.fromtimestamp(ts, timezone.utc))


def us_to_datetime(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class RecorderDB:
    """HA's recorder SQLite file, opened read-only for each query."""

    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout

    def _connect(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise FileNotFoundError(f"no recorder database at {self.path}")
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.busy_timeout)
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        return db

    def rows(self, start: datetime, end: datetime, entity_ids: Iterable[str] | None = None) -> list[Row]:
        """Every `states` row with `start <= last_updated < end`, sorted by entity and time."""
        wanted = None if entity_ids is None else set(entity_ids)
        # A little slack on the float bounds, then the exact cut on whole microseconds.
        lo, hi = to_us(start), to_us(end)
        db = self._connect()
        try:
            found = db.execute(
                "SELECT m.entity_id, s.state, s.last_updated_ts FROM states s "
                "JOIN states_meta m ON m.metadata_id = s.metadata_id "
                "WHERE s.last_updated_ts >= ? AND s.last_updated_ts < ?",
                (start.timestamp() - 1, end.timestamp() + 1),
            ).fetchall()
        finally:
            db.close()
        rows = []
        for entity_id, state, ts in found:
            us = ts_to_us(ts)
            if lo <= us < hi and (wanted is None or entity_id in wanted):
                rows.append(Row(entity_id, us, state))
        return sorted(rows)

    def hour_counts(self, start: datetime, end: datetime, entity_ids: Iterable[str] | None = None) -> HourCounts:
        """(entity_id, hour start µs) -> number of `states` rows in that hour."""
        return Counter((row.entity_id, row.hour_us) for row in self.rows(start, end, entity_ids))

    def entity_ids(self) -> set[str]:
        """Every entity_id in `states_meta` (HA renames it there when an entity id changes)."""
        db = self._connect()
        try:
            return {e for (e,) in db.execute("SELECT entity_id FROM states_meta") if e}
        finally:
            db.close()

    def metadata_id(self, entity_id: str) -> int | None:
        db = self._connect()
        try:
            found = db.execute("SELECT metadata_id FROM states_meta WHERE entity_id = ?", (entity_id,)).fetchone()
        finally:
            db.close()
        return None if found is None else int(found[0])


def _influxql(url: str, database: str, query: str, auth: tuple[str, str] | None = None) -> list[dict]:
    """Run one InfluxQL query (epoch in µs); its series. Raises on HTTP or statement errors."""
    resp = requests.post(f"{url}/query", params={"db": database, "q": query, "epoch": "u"}, auth=auth, timeout=60)
    resp.raise_for_status()
    series = []
    for result in resp.json().get("results", []):
        if "error" in result:
            if "database not found" in result["error"]:
                return []
            raise RuntimeError(f"InfluxQL error: {result['error']}")
        series.extend(result.get("series", []))
    return series


def _time_clause(start: datetime, end: datetime) -> str:
    return f"time >= {to_us(start)}u AND time < {to_us(end)}u"


def influx_hour_counts(
    url: str, database: str, start: datetime, end: datetime, measurement: str = EVENTS_MEASUREMENT,
    auth: tuple[str, str] | None = None,
) -> HourCounts:
    """(entity_id tag, UTC hour start µs) -> points of `measurement` in `database` (1.x)."""
    series = _influxql(url, database, (
        f'SELECT count("{COUNT_FIELD}") FROM "{measurement}" WHERE {_time_clause(start, end)} '
        'GROUP BY time(1h), "entity_id" fill(none)'
    ), auth)
    counts: Counter = Counter()
    for s in series:
        entity_id = (s.get("tags") or {}).get("entity_id", "")
        for at, count in s["values"]:
            if count:
                counts[(entity_id, int(at))] += int(count)
    return counts


def influx_points(
    url: str, database: str, start: datetime, end: datetime, measurement: str = EVENTS_MEASUREMENT,
    auth: tuple[str, str] | None = None,
) -> list[Row]:
    """Every point of `measurement` in [start, end) as (entity_id tag, time µs, state_value)."""
    series = _influxql(url, database, (
        f'SELECT "{COUNT_FIELD}" FROM "{measurement}" WHERE {_time_clause(start, end)} GROUP BY "entity_id"'
    ), auth)
    rows = []
    for s in series:
        entity_id = (s.get("tags") or {}).get("entity_id", "")
        for at, state in s["values"]:
            rows.append(Row(entity_id, int(at), state))
    return sorted(rows)


def per_hour(counts: HourCounts) -> Counter:
    """Entity-hour counts summed per hour (µs)."""
    totals: Counter = Counter()
    for (_, hour), n in counts.items():
        totals[hour] += n
    return totals


def differences(expected: HourCounts, actual: HourCounts) -> dict[tuple[str, str], tuple[int, int]]:
    """(entity_id, ISO hour) -> (expected, actual) where they differ."""
    keys = set(expected) | set(actual)
    return {
        (entity_id, us_to_datetime(hour).isoformat()): (expected.get((entity_id, hour), 0), actual.get((entity_id, hour), 0))
        for entity_id, hour in sorted(keys)
        if expected.get((entity_id, hour), 0) != actual.get((entity_id, hour), 0)
    }
