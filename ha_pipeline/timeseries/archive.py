"""The raw archive of a home: what an hour's fetch asks HA for, and a rewrite of hours that
never loses an archived point.

HA's rules this follows (``recorder/history/modern.py``, 2024.1):

* ``history/history_during_period`` returns the state in force at ``start_time`` (the last row
  with ``last_updated < start_time``, its ``lu`` set to ``start_time``) and the rows with
  ``start_time < last_updated < end_time``. A row stamped exactly on an hour's start would belong
  to neither hour, so each hour is fetched from one microsecond before its start
  (:func:`fetch_start`): HA stamps rows in whole microseconds, so every row lands in exactly one
  hour ``[start, end)``, and the rows HA sends at the fetch start are its start-time states.
* HA's recorder purges by one cut-off time: when HA sends a start-time state for some entity, it
  still holds rows from before the hour, hence the hour whole (:attr:`FetchedHour.holds_whole`).

The rewrite (:func:`archive_hours`) holds by construction, whatever fails when:

1. every hour's points are written first; writing is an upsert (InfluxDB overwrites the point of
   a series at a time), so a failure during the write leaves every archived point in place;
2. only once InfluxDB has acknowledged an hour are the archived points HA's answer does not
   contain removed: a point whose row HA now sends with other tags (its replacement is stored
   already) and, in an hour HA holds whole, a point of a requested entity that HA no longer has.
   Points HA may no longer have because it purged them, and points of entities the run did not
   ask for, are kept.

So an identical re-run rewrites the same points and deletes nothing, and a re-run after any
failure heals the hour.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd

from ha_pipeline.timeseries.backend import TimeseriesBackend
from ha_pipeline.timeseries.buckets import BucketSpec
from ha_pipeline.timeseries.events import (
    EVENT_TAGS,
    EXTRA_COLUMNS,
    history_to_events,
    start_states_from_history,
)
from ha_pipeline.timeseries.events import EVENT_FIELDS as POINT_FIELDS

HOUR = timedelta(hours=1)
# HA's window is (start, end): asking from 1 µs before the hour makes it [hour start, end).
FETCH_LEAD = timedelta(microseconds=1)

# What the events bucket stores per point: the schema's fields and the `last_reset` attribute.
EVENT_FIELDS: tuple[str, ...] = (*POINT_FIELDS, *EXTRA_COLUMNS)
# Every event has a state_value: counting that one field counts the points.
COUNT_FIELD = "state_value"

# HA's start-time state of each entity at each archived hour's start, beside the events in the
# events bucket: the state in force that summaries start from (it is not a row of the hour).
START_STATES_MEASUREMENT = "home_assistant_start_states"
START_STATE_TAGS: tuple[str, ...] = ("entity_id", "domain")
START_STATE_FIELDS: tuple[str, ...] = ("state", "last_reset")

HistoryFetch = Callable[[datetime, datetime, list[str], bool], Mapping[str, list[dict[str, Any]]]]


def hour_windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The one-hour windows ``[s, s + 1 h)`` that tile ``[start, end)`` (UTC)."""
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    windows = []
    while start < end:
        windows.append((start, start + HOUR))
        start += HOUR
    return windows


def fetch_start(hour_start: datetime) -> datetime:
    """The ``start_time`` to ask HA with, so that a row stamped exactly at ``hour_start`` is in the hour."""
    return hour_start - FETCH_LEAD


@dataclass(frozen=True)
class EntityRules:
    """Which entities are archived, with the precedence of HA's own influxdb ``include``/``exclude``
    (explicit entities first, then globs, then domains). No rule archives every entity."""

    include_domains: tuple[str, ...] = ()
    include_entity_globs: tuple[str, ...] = ()
    include_entities: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    exclude_entity_globs: tuple[str, ...] = ()
    exclude_entities: tuple[str, ...] = ()

    def accepts(self, entity_id: str) -> bool:
        """True when ``entity_id`` is archived."""
        domain = entity_id.split(".", 1)[0]
        if entity_id in self.include_entities:
            return True
        if entity_id in self.exclude_entities:
            return False
        if any(fnmatchcase(entity_id, glob) for glob in self.include_entity_globs):
            return True
        if any(fnmatchcase(entity_id, glob) for glob in self.exclude_entity_globs):
            return False
        if domain in self.include_domains:
            return True
        if domain in self.exclude_domains:
            return False
        # Any include rule makes the filter an allow-list (HA's cases 2, 4 and 6).
        return not (self.include_domains or self.include_entity_globs or self.include_entities)


@dataclass(frozen=True)
class FetchPlan:
    """The entities one run asks HA about, and which of them need their attributes."""

    entity_ids: list[str]
    attribute_ids: list[str]
    plain_ids: list[str]


def fetch_plan(
    current: Iterable[str],
    inventory: Mapping[str, Mapping[str, Any]],
    archived: Iterable[str],
    rules: EntityRules,
) -> FetchPlan:
    """Every entity HA may hold rows of for the window: those with a state now, those of the
    inventory (removed ones included: HA keeps their recorded rows), and those the archive
    already holds for the window (so a re-run never drops an entity that left HA), less those
    ``rules`` exclude. Attributes cost bandwidth: only ``total`` meters (their ``last_reset``)
    and entities the inventory does not describe (unit, device class) are fetched with them."""
    known = {e for e in (*current, *inventory, *archived) if isinstance(e, str) and e}
    entity_ids = sorted(e for e in known if rules.accepts(e))
    attribute_ids = [
        e for e in entity_ids if e not in inventory or (inventory[e] or {}).get("state_class") == "total"
    ]
    wanted = set(attribute_ids)
    return FetchPlan(entity_ids, attribute_ids, [e for e in entity_ids if e not in wanted])


def inventory_for(tags: Iterable[Mapping[str, Any]], since: datetime) -> dict[str, Mapping[str, Any]]:
    """The inventory's entities that may hold rows from ``since`` on: current ones and those HA
    removed at or after it (``removed_at``: when discovery saw it gone), keyed by entity id."""
    out: dict[str, Mapping[str, Any]] = {}
    for tag in tags:
        removed = tag.get("removed_at")
        if removed is not None:
            removed = removed if removed.tzinfo else removed.replace(tzinfo=timezone.utc)
            if removed < since:
                continue
        out[tag["entity_id"]] = tag
    return out


@dataclass
class FetchedHour:
    """One hour as HA answered it: its events, HA's start-time states, and what was refused."""

    start: datetime
    end: datetime
    events: pd.DataFrame
    start_states: pd.DataFrame
    rows_fetched: int
    rejects: dict[str, int]

    @property
    def holds_whole(self) -> bool:
        """HA sent a start-time state: it holds rows from before the hour, so the whole hour."""
        return not self.start_states.empty


def fetch_hour(
    history: HistoryFetch,
    start: datetime,
    end: datetime,
    plan: FetchPlan,
    tags_by_entity: Mapping[str, Mapping[str, Any]],
    seconds: Counter[str] | None = None,
) -> FetchedHour:
    """Fetch ``[start, end)`` from HA (``history(start, end, ids, no_attributes)``) and normalise
    it; the wall time of both goes to ``seconds["fetch"]`` and ``seconds["normalise"]``."""
    seconds = seconds if seconds is not None else Counter()
    since = fetch_start(start)
    rows: dict[str, list[dict[str, Any]]] = {}
    with _timed(seconds, "fetch"):
        for ids, no_attributes in ((plan.plain_ids, True), (plan.attribute_ids, False)):
            if ids:
                rows |= history(since, end, ids, no_attributes)
    with _timed(seconds, "normalise"):
        events, rejects = history_to_events(rows, start, end, tags_by_entity, fetched_from=since)
        starts = start_states_from_history(rows, since, start)
        fetched = sum(len(r) for r in rows.values())
        del rows
    return FetchedHour(start, end, events, starts, fetched, rejects)


def within_retention(
    hours: list[tuple[datetime, datetime]], retention_days: int, now: datetime | None = None
) -> tuple[list[tuple[datetime, datetime]], list[str]]:
    """The hours a bucket of ``retention_days`` still keeps (0 = forever), and the others' starts."""
    if retention_days <= 0:
        return hours, []
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=retention_days)
    return [h for h in hours if h[0] >= cutoff], [h[0].isoformat() for h in hours if h[0] < cutoff]


@dataclass
class HourOutcome:
    """What the rewrite did to one hour (``expected`` is what the hour must hold afterwards)."""

    start: datetime
    archived_before: int
    rows: int = 0  # events HA's answer gave for the hour
    written: int = 0  # points InfluxDB acknowledged
    encoded: int = 0  # points with a tag value stored encoded
    refused: int = 0  # points InfluxDB refused (e.g. a field type conflict): the hour is left unpruned
    refused_reason: str | None = None
    beyond_retention: bool = False
    replaced: int = 0  # archived points rewritten with other tags, the old copy removed
    removed: int = 0  # archived points HA no longer has (hour held whole), removed
    kept: int = 0  # archived points HA did not send, kept (HA purged the hour, or not asked for)
    stored: int | None = None  # counted after the rewrite

    @property
    def expected(self) -> int:
        return self.written + self.kept

    @property
    def settled(self) -> bool:
        """Written and pruned, so its count must equal ``expected``."""
        return not self.beyond_retention and not self.refused


@dataclass
class ArchiveResult:
    """A run's rewrite, hour by hour, and its totals."""

    hours: list[HourOutcome] = field(default_factory=list)
    rows_fetched: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    entities: set[str] = field(default_factory=set)
    start_states: int = 0

    def total(self, name: str) -> int:
        return sum(getattr(hour, name) for hour in self.hours)

    @property
    def beyond_retention(self) -> list[HourOutcome]:
        return [hour for hour in self.hours if hour.beyond_retention]

    @property
    def refused(self) -> list[HourOutcome]:
        return [hour for hour in self.hours if hour.refused]

    @property
    def mismatched(self) -> list[HourOutcome]:
        return [hour for hour in self.hours if hour.settled and hour.stored != hour.expected]


class ArchiveMismatch(Exception):
    """After the rewrite, an hour holds another number of points than it must."""


def archived_entities(backend: TimeseriesBackend, spec: BucketSpec, start: datetime, end: datetime) -> set[str]:
    """Entities with points in the events of ``[start, end)``."""
    return set(backend.series_counts(spec.name, spec.measurement, start, end, "entity_id", COUNT_FIELD))


def _tag_keys(frame: pd.DataFrame, tags: Iterable[str]) -> np.ndarray:
    """One string per row naming its series by ``tags`` (absent and empty are the same)."""
    joined = np.full(len(frame), "", dtype=object)
    for tag in tags:
        if tag in frame.columns:
            values = frame[tag].astype(object)
            values = values.where(values.notna() & (values != ""), "\x00").astype(str).to_numpy(dtype=object)
        else:
            values = np.full(len(frame), "\x00", dtype=object)
        joined = joined + values + "\x1f"
    return joined


def _micros(times: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(pd.to_datetime(times, utc=True)).as_unit("us").asi8


@dataclass
class _NewKeys:
    """The points written for an hour that already held points: what the prune compares against."""

    short: set[tuple[int, str]]
    full: set[tuple[int, str, str]]


def _new_keys(events: pd.DataFrame) -> _NewKeys:
    times = _micros(events["time"]).tolist()
    ids = events["entity_id"].astype(object).tolist()
    series = _tag_keys(events, EVENT_TAGS).tolist()
    return _NewKeys(set(zip(times, ids)), set(zip(times, ids, series)))


def _prune(
    backend: TimeseriesBackend,
    spec: BucketSpec,
    hour: HourOutcome,
    new: _NewKeys,
    holds_whole: bool,
    requested: set[str],
) -> None:
    """Remove the hour's archived points that HA's answer replaced or, held whole, no longer has."""
    archived = backend.read(spec.name, spec.measurement, hour.start, hour.start + HOUR, fields=[COUNT_FIELD])
    if archived.empty:
        return
    # Tags the schema no longer writes (an older version's) make a point of another series.
    extra = sorted(c for c in archived.columns if c not in ("time", COUNT_FIELD, *EVENT_TAGS))
    tags = [*EVENT_TAGS, *extra]
    times = _micros(archived["time"]).tolist()
    ids = archived["entity_id"].astype(object).tolist()
    series = _tag_keys(archived, EVENT_TAGS).tolist()
    old_schema = archived[extra].notna().any(axis=1).to_numpy() if extra else np.zeros(len(ids), bool)
    same = ~old_schema & np.fromiter(((t, e, k) in new.full for t, e, k in zip(times, ids, series)), bool, len(ids))
    replaced = ~same & np.fromiter(((t, e) in new.short for t, e in zip(times, ids)), bool, len(ids))
    vanished = ~same & ~replaced
    gone = vanished & holds_whole & np.fromiter((e in requested for e in ids), bool, len(ids))
    hour.replaced, hour.removed = int(replaced.sum()), int(gone.sum())
    hour.kept = int((vanished & ~gone).sum())
    stale = replaced | gone
    if not stale.any():
        return
    frame = archived.assign(_series=_tag_keys(archived, tags), _stale=stale, _us=times)
    deletes: list[tuple[datetime, datetime, dict[str, str]]] = []
    for _, points in frame.groupby("_series", sort=False):
        if not points["_stale"].any():
            continue
        first = points.iloc[0]
        match = {t: ("" if pd.isna(first.get(t)) else str(first.get(t))) for t in tags}
        if points["_stale"].all():
            deletes.append((hour.start, hour.start + HOUR, match))
            continue
        for us in points.loc[points["_stale"], "_us"].tolist():
            at = pd.Timestamp(us, unit="us", tz="UTC")
            deletes.append((at, at + pd.Timedelta(microseconds=1), match))
    backend.delete_many(spec.name, spec.measurement, deletes)


def archive_hours(
    backend: TimeseriesBackend,
    spec: BucketSpec,
    window: tuple[datetime, datetime],
    fetched: Iterator[FetchedHour],
    requested: set[str],
    seconds: Counter[str] | None = None,
) -> ArchiveResult:
    """Rewrite the hours ``fetched`` yields (in order, inside ``window``) as the module docstring
    says, then count every hour back.

    Hours the archive does not hold yet go into one pipelined write (InfluxDB stores hour h while
    h+1 is fetched). An hour that holds points already closes the write, so that its points are
    acknowledged before it is pruned; only one such hour's keys are held at a time, and only when
    it holds more points than were written.

    Raises the write's error when the write could not finish (nothing more is pruned then), and
    :class:`ArchiveMismatch` when a settled hour holds another count than it must."""
    seconds = seconds if seconds is not None else Counter()
    result = ArchiveResult()
    with _timed(seconds, "verify"):
        before = backend.count_by_window(spec.name, spec.measurement, *window, HOUR, field=COUNT_FIELD)
    start_states: list[pd.DataFrame] = []
    stream: Any = None
    in_stream: list[tuple[HourOutcome, Any]] = []

    def settle() -> None:
        """Wait for every queued point; raise what stopped the write (nothing is pruned then)."""
        nonlocal stream
        if stream is not None:
            with _timed(seconds, "write"):
                current, stream = stream, None
                with current:
                    pass  # leaving the block closes the stream, raising its failure
            for outcome, part in in_stream:
                outcome.written, outcome.encoded = part.accepted, part.encoded_rows
                outcome.beyond_retention = part.rejected is not None
                if part.refused is not None:
                    outcome.refused, outcome.refused_reason = part.refused_points, str(part.refused)
            in_stream.clear()

    try:
        for hour in fetched:  # the producer counts its own fetch and normalise time
            outcome = HourOutcome(hour.start, before.get(pd.Timestamp(hour.start), 0), rows=len(hour.events))
            result.hours.append(outcome)
            result.rows_fetched += hour.rows_fetched
            result.rejects.update(hour.rejects)
            result.entities.update(hour.events["entity_id"].unique().tolist())
            start_states.append(hour.start_states)
            with _timed(seconds, "write"):
                if stream is None:
                    stream = backend.write_stream(
                        spec.name, spec.measurement, EVENT_TAGS, EVENT_FIELDS, precision="us"
                    )
                in_stream.append((outcome, stream.add(hour.events)))
            if outcome.archived_before:
                settle()
                if outcome.settled:
                    with _timed(seconds, "prune"):
                        # Every written point is stored now, so the hour holds at least `written`:
                        # exactly that many means nothing else is left (an identical re-run), and
                        # only otherwise are the archived keys read (a 1M-row re-run: 26 s -> 12 s).
                        held = backend.count(
                            spec.name, spec.measurement, hour.start, hour.end, field=COUNT_FIELD
                        )
                        if held != outcome.written:
                            _prune(backend, spec, outcome, _new_keys(hour.events), hour.holds_whole, requested)
        settle()
    finally:
        if stream is not None:
            stream.__exit__(RuntimeError, RuntimeError("run stopped"), None)  # settle quietly, then re-raise
    with _timed(seconds, "write"):
        states = [frame for frame in start_states if not frame.empty]
        if states:
            result.start_states = backend.write(
                spec.name, pd.concat(states, ignore_index=True), START_STATES_MEASUREMENT,
                START_STATE_TAGS, START_STATE_FIELDS, precision="us",
            )
    with _timed(seconds, "verify"):
        after = backend.count_by_window(spec.name, spec.measurement, *window, HOUR, field=COUNT_FIELD)
    for outcome in result.hours:
        outcome.stored = after.get(pd.Timestamp(outcome.start), 0)
    if result.mismatched:
        raise ArchiveMismatch(mismatch_sentence(result.mismatched, spec))
    return result


def mismatch_sentence(wrong: list[HourOutcome], spec: BucketSpec) -> str:
    """One sentence for hours whose count is off after the rewrite."""
    hour = wrong[0]
    others = f" ({len(wrong) - 1} more hour(s) of the run differ too)" if len(wrong) > 1 else ""
    return (
        f"InfluxDB holds {hour.stored} points for {hour.start:%Y-%m-%d %H:00} UTC in bucket '{spec.name}', "
        f"but the rewrite left it {hour.expected} ({hour.written} written from Home Assistant, {hour.kept} "
        f"archived points kept){others}. Re-run the partition to rewrite the hour."
    )


def refused_sentence(refused: list[HourOutcome], spec: BucketSpec) -> str:
    """One sentence for points InfluxDB would not store."""
    points = sum(hour.refused for hour in refused)
    first = refused[0]
    return (
        f"InfluxDB refused {points} point(s) of {len(refused)} hour(s) in bucket '{spec.name}' "
        f"(first: {first.start:%Y-%m-%d %H:00} UTC: {first.refused_reason}); every other point was stored "
        "and no archived point was removed from those hours. Fix the bucket's schema (or drop the "
        "conflicting measurement) and re-run the partition."
    )


def retention_sentence(skipped: list[str], spec: BucketSpec) -> str:
    """One sentence for hours older than the bucket's retention."""
    if not skipped:
        return "No hour was skipped."
    return (
        f"Skipped {len(skipped)} hour(s) older than the {spec.retention_days}-day retention of "
        f"bucket '{spec.name}': InfluxDB would drop their points, so nothing was written for them."
    )


def kept_sentence(result: ArchiveResult, spec: BucketSpec) -> str:
    """One sentence for archived points kept although HA did not send them."""
    kept = [hour for hour in result.hours if hour.kept]
    if not kept:
        return "No archived point was kept in place of HA's history."
    return (
        f"Kept {sum(h.kept for h in kept)} archived point(s) of {len(kept)} hour(s) in bucket "
        f"'{spec.name}' that Home Assistant did not send again: it no longer holds those hours whole "
        f"(its recorder purged them) or the run did not ask for those entities. First such hour: "
        f"{kept[0].start:%Y-%m-%d %H:00} UTC ({kept[0].kept} points)."
    )


@contextmanager
def _timed(seconds: Counter[str], stage: str) -> Iterator[None]:
    """Add the wall time of the block to ``seconds[stage]``."""
    started = time.monotonic()
    try:
        yield
    finally:
        seconds[stage] += time.monotonic() - started
