"""History: HA's recorded states archived hourly into InfluxDB, with hourly and daily summaries."""

import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase

import dagster as dg
import numpy as np
import pandas as pd

from ha_pipeline.defs.partitions import daily_partitions, hourly_partitions
from ha_pipeline.defs.resources import (
    HomeAssistantResource,
    InfluxDBResource,
    MetadataStoreResource,
    fails_at_once,
)
from ha_pipeline.timeseries.backend import FrameWrite
from ha_pipeline.timeseries.events import empty_events, history_to_events, parse_numbers
from ha_pipeline.timeseries.rollups import FIELD_COLUMNS as SUMMARY_FIELDS
from ha_pipeline.timeseries.rollups import SUMMARY_COLUMNS
from ha_pipeline.timeseries.rollups import TAG_COLUMNS as SUMMARY_TAGS
from ha_pipeline.timeseries.rollups import (
    StartState,
    daily_from_hourly,
    hourly_summaries,
    start_states_from_events,
)

EVENT_TAGS = ["entity_id", "domain", "device_class", "area", "device_name", "integration"]
EVENT_FIELDS = [
    "state_value",
    "normalized_value",
    "previous_state",
    "duration_seconds",
    "unit_of_measurement",
    # Not in DESIGN.md's schema: kept so rollups can see `total` meters' new cycles.
    "last_reset",
]

HISTORY_RETRY = dg.RetryPolicy(max_retries=2, delay=20, backoff=dg.Backoff.EXPONENTIAL)
# One run per day of hours: a 30-day backfill is 30 runs, not 720.
HOURLY_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=24)
DAILY_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)


def _env_list(name: str) -> list[str]:
    """A comma-separated env var as a list: the filter's defaults, so scheduled runs use them too."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


class EntityFilter(dg.Config):
    """Which entities are archived, with the precedence of HA's own influxdb `include`/`exclude`
    (explicit entities first, then globs, then domains). No filter archives every entity."""

    include_domains: list[str] = _env_list("HA_PIPELINE_INCLUDE_DOMAINS")
    include_entity_globs: list[str] = _env_list("HA_PIPELINE_INCLUDE_ENTITY_GLOBS")
    include_entities: list[str] = _env_list("HA_PIPELINE_INCLUDE_ENTITIES")
    exclude_domains: list[str] = _env_list("HA_PIPELINE_EXCLUDE_DOMAINS")
    exclude_entity_globs: list[str] = _env_list("HA_PIPELINE_EXCLUDE_ENTITY_GLOBS")
    exclude_entities: list[str] = _env_list("HA_PIPELINE_EXCLUDE_ENTITIES")

    def accepts(self, entity_id: str) -> bool:
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


class EventsConfig(dg.Config):
    """Run configuration of `influxdb/events`."""

    entity_filter: EntityFilter = EntityFilter()
    entity_batch_size: int = 200


class SummariesConfig(dg.Config):
    """Run configuration of `influxdb/hourly_summaries`."""

    start_state_lookback_hours: int = 24


def hours(window: dg.TimeWindow) -> Iterator[tuple[datetime, datetime]]:
    """The one-hour windows that make up a (possibly multi-partition) time window."""
    start = window.start.astimezone(timezone.utc)
    end = window.end.astimezone(timezone.utc)
    while start < end:
        yield start, start + timedelta(hours=1)
        start += timedelta(hours=1)


def _retention_cutoff(retention_days: int) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=retention_days)


def _window_metadata(window: dg.TimeWindow) -> dict[str, dg.MetadataValue]:
    return {
        "window_start": dg.MetadataValue.text(window.start.astimezone(timezone.utc).isoformat()),
        "window_end": dg.MetadataValue.text(window.end.astimezone(timezone.utc).isoformat()),
    }


def _fetch_hour(
    client, start: datetime, end: datetime, plain_ids: list[str], attribute_ids: list[str], batch_size: int
) -> dict[str, list[dict]]:
    history: dict[str, list[dict]] = {}
    for ids, no_attributes in ((plain_ids, True), (attribute_ids, False)):
        if ids:
            history |= client.history_during_period(
                start, end, ids, batch_size=batch_size, no_attributes=no_attributes
            )
    return history


def _skipped_sentence(skipped: list[str], spec) -> str:
    if not skipped:
        return "No hour was skipped."
    return (
        f"Skipped {len(skipped)} hour(s) older than the {spec.retention_days}-day retention of "
        f"bucket '{spec.name}': InfluxDB would drop their points, so nothing was written for them."
    )


class HourlyRewrite:
    """The events of consecutive hours rewritten as one pipelined write: the range is deleted
    once, each hour's frame is queued as soon as it is normalised (so InfluxDB stores hour h
    while hour h+1 is fetched and normalised), and every hour is counted back by one query."""

    def __init__(self, backend, spec, start: datetime, end: datetime) -> None:
        self._backend, self._spec, self._start, self._end = backend, spec, start, end
        backend.delete(spec.name, spec.measurement, start, end)
        # HA stamps rows in microseconds; coarser precision would merge rows of one second.
        self._stream = backend.write_stream(spec.name, spec.measurement, EVENT_TAGS, EVENT_FIELDS, precision="us")
        self._hours: dict[datetime, tuple[FrameWrite, np.ndarray]] = {}

    def add(self, start: datetime, frame: pd.DataFrame) -> None:
        """Queue one hour's points (raises at once if an earlier batch stopped the write)."""
        self._hours[start] = (self._stream.add(frame), frame["entity_id"].unique())

    def close(self) -> None:
        """Wait until InfluxDB has answered every batch; raise the error that stopped the write."""
        self._stream.close()

    def __enter__(self) -> "HourlyRewrite":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._stream.__exit__(exc_type, exc, tb)

    @property
    def rejected(self) -> list[datetime]:
        """Hours whose points InfluxDB dropped as older than the bucket's retention."""
        return [start for start, (part, _) in self._hours.items() if part.rejected is not None]

    @property
    def stored(self) -> dict[datetime, tuple[FrameWrite, np.ndarray]]:
        """Every other hour: its write and the entities it holds."""
        return {start: hour for start, hour in self._hours.items() if hour[0].rejected is None}

    def verify(self) -> None:
        """The points stored per hour equal the rows kept and acknowledged, else a failure naming the hour."""
        # Every event has a state_value: counting that one field counts the points, without
        # reading the other five fields' blocks as count(*) would.
        counts = self._backend.count_by_window(
            self._spec.name, self._spec.measurement, self._start, self._end, timedelta(hours=1),
            field="state_value",
        )
        wrong = [
            (start, counts.get(pd.Timestamp(start), 0), part)
            for start, (part, _) in self.stored.items()
            if counts.get(pd.Timestamp(start), 0) != part.rows or part.accepted != part.rows
        ]
        if wrong:
            start, stored, part = wrong[0]
            others = f" ({len(wrong) - 1} more hour(s) of the run differ too)" if len(wrong) > 1 else ""
            raise dg.Failure(
                f"InfluxDB holds {stored} points for {start:%Y-%m-%d %H:00} UTC in bucket "
                f"'{self._spec.name}', but {part.rows} rows were kept from Home Assistant "
                f"({part.accepted} acknowledged){others}. Re-run the partition to rewrite the hour."
            )


def _ha_has_older_states(history: dict[str, list[dict]], start: datetime) -> bool:
    """True when HA sent a start-time state for some entity: it still holds rows from before
    `start`, so (its recorder purges by one cut-off time) it has this hour and every later one whole."""
    start_s = start.timestamp()
    return any(
        rows and isinstance(rows[0], dict) and isinstance(rows[0].get("lu"), (int, float))
        and abs(rows[0]["lu"] - start_s) < 5e-7
        for rows in history.values()
    )


def _archive_sentence(kept: dict[str, tuple[int, int]], spec) -> str:
    if not kept:
        return "No archived hour was kept in place of HA's history."
    points = sum(archived for archived, _ in kept.values())
    return (
        f"Kept {len(kept)} archived hour(s) ({points} points) in bucket '{spec.name}' as they were: "
        "Home Assistant no longer holds all of their history (its recorder purged everything before "
        "a point in or after them), so rewriting them would have lost points. First kept hour: "
        f"{min(kept)} ({kept[min(kept)][0]} archived points, {kept[min(kept)][1]} rows from HA)."
    )


@dg.asset(
    key=["influxdb", "events"],
    deps=[["homeassistant", "history"], ["sqlite", "entities"]],
    partitions_def=hourly_partitions,
    backfill_policy=HOURLY_BACKFILL,
    group_name="history",
    kinds={"influxdb", "homeassistant"},
    pool="influxdb",
    retry_policy=HISTORY_RETRY,
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2)),
    output_required=False,
)
@fails_at_once
def events(
    context: dg.AssetExecutionContext,
    config: EventsConfig,
    ha: HomeAssistantResource,
    metadata_store: MetadataStoreResource,
    influxdb: InfluxDBResource,
):
    """Archives every state row HA recorded in each hour of the partition window into the
    365-day `events` bucket, one point per row, tagged with area, device, integration and device
    class from the SQL inventory. The run's hours are deleted, then rewritten by one pipelined
    write that stores each hour while the next is fetched and normalised, then counted back per
    hour; a count that differs fails the run, naming the hour. Hours older than the bucket's
    retention are skipped and said so. An archived hour HA no longer holds whole (its recorder
    purged it) is kept as archived, never replaced by less, and said so. `seconds_per_stage` is the run's wall time spent in each
    stage (they add up to the run): `write` is the delete plus the time spent formatting points
    and waiting for InfluxDB, not InfluxDB's own time, most of which overlaps fetch and normalise."""
    window = context.partition_time_window
    spec = influxdb.bucket_specs()["events"]
    cutoff = _retention_cutoff(spec.retention_days)
    kept_hours = [(start, end) for start, end in hours(window) if start >= cutoff]
    skipped = [start.isoformat() for start, _ in hours(window) if start < cutoff]
    backend = influxdb.backend()
    backend.ensure_bucket(spec)
    if not kept_hours:
        context.log.warning(f"{_skipped_sentence(skipped, spec)} First skipped hour: {skipped[0]}.")
        return
    tags_by_entity = {tag["entity_id"]: tag for tag in metadata_store.store().entity_tags()}

    seconds: Counter[str] = Counter()
    rejects: Counter[str] = Counter()
    rows_fetched = rows_kept = points_written = 0
    entities: set[str] = set()
    with ha.client() as client:
        started = time.monotonic()
        known = {state.entity_id for state in client.states()} | tags_by_entity.keys()
        entity_ids = sorted(e for e in known if config.entity_filter.accepts(e))
        # Attributes cost bandwidth; only `total` meters (last_reset) and entities the inventory
        # does not describe (unit, device_class) need them.
        attribute_ids = [
            e
            for e in entity_ids
            if e not in tags_by_entity or tags_by_entity[e].get("state_class") == "total"
        ]
        plain_ids = sorted(set(entity_ids) - set(attribute_ids))
        seconds["fetch"] += time.monotonic() - started

        def fetched() -> Iterator[tuple[datetime, datetime, pd.DataFrame, bool]]:
            """Each kept hour fetched and normalised, and whether HA holds states from before it."""
            nonlocal rows_fetched
            for start, end in kept_hours:
                started = time.monotonic()
                history = _fetch_hour(client, start, end, plain_ids, attribute_ids, config.entity_batch_size)
                seconds["fetch"] += time.monotonic() - started
                rows_fetched += sum(len(rows) for rows in history.values())
                started = time.monotonic()
                older = _ha_has_older_states(history, start)
                frame, hour_rejects = history_to_events(history, start, end, tags_by_entity)
                del history
                rejects.update(hour_rejects)
                seconds["normalise"] += time.monotonic() - started
                yield start, end, frame, older

        def rewrite(start: datetime, end: datetime, frame: pd.DataFrame, more: Iterator) -> None:
            """Delete [start, end), then write `frame` and every frame `more` yields, in one stream."""
            started = time.monotonic()
            with HourlyRewrite(backend, spec, start, end) as hourly:
                hourly.add(start, frame)
                seconds["write"] += time.monotonic() - started
                for hour_start, _, hour_frame, _ in more:
                    started = time.monotonic()
                    hourly.add(hour_start, hour_frame)
                    seconds["write"] += time.monotonic() - started
                started = time.monotonic()
                hourly.close()
                seconds["write"] += time.monotonic() - started
            rewrites.append(hourly)

        # HA's recorder keeps about 10 days: an archived hour older than that must not be replaced
        # by the little (or nothing) HA still returns for it. While HA holds nothing from before
        # an hour, that hour is rewritten alone, and only when HA returns at least as many rows as
        # the archive holds; from the first hour HA has whole, the rest is one delete and one write.
        rewrites: list[HourlyRewrite] = []
        archived: dict[pd.Timestamp, int] | None = None
        kept_archive: dict[str, tuple[int, int]] = {}
        hours_alone = 0
        hours_left = fetched()
        for start, end, frame, older in hours_left:
            if older:
                rewrite(start, kept_hours[-1][1], frame, hours_left)
                break
            if archived is None:  # counted before anything of the run is deleted
                started = time.monotonic()
                archived = backend.count_by_window(
                    spec.name, spec.measurement, kept_hours[0][0], kept_hours[-1][1], timedelta(hours=1),
                    field="state_value",
                )
                seconds["verify"] += time.monotonic() - started
            in_archive = archived.get(pd.Timestamp(start), 0)
            if len(frame) < in_archive:
                kept_archive[start.isoformat()] = (in_archive, len(frame))
                continue
            rewrite(start, end, frame, iter(()))
            hours_alone += 1

    started = time.monotonic()
    for hourly in rewrites:
        hourly.verify()
    seconds["verify"] += time.monotonic() - started
    for hourly in rewrites:
        for part, hour_entities in hourly.stored.values():
            rows_kept += part.rows
            points_written += part.accepted
            entities.update(hour_entities)
        skipped += [start.isoformat() for start in hourly.rejected]
    if skipped:
        context.log.warning(f"{_skipped_sentence(skipped, spec)} First skipped hour: {skipped[0]}.")
    if kept_archive:
        context.log.warning(_archive_sentence(kept_archive, spec))
    if not kept_archive and not any(hourly.stored for hourly in rewrites):
        return
    yield dg.MaterializeResult(
        metadata={
            **_window_metadata(window),
            "rows_fetched": dg.MetadataValue.int(rows_fetched),
            "rows_kept": dg.MetadataValue.int(rows_kept),
            "points_written": dg.MetadataValue.int(points_written),
            "entities": dg.MetadataValue.int(len(entities)),
            "entities_requested": dg.MetadataValue.int(len(entity_ids)),
            "rejects_by_reason": dg.MetadataValue.json(dict(rejects)),
            "rejected_rows": dg.MetadataValue.int(sum(rejects.values())),
            "seconds_per_stage": dg.MetadataValue.json(
                {stage: round(value, 3) for stage, value in seconds.items()}
            ),
            "hours_skipped": dg.MetadataValue.int(len(skipped)),
            "skipped": dg.MetadataValue.text(_skipped_sentence(skipped, spec)),
            "hours_kept_from_archive": dg.MetadataValue.int(len(kept_archive)),
            # Hours HA held nothing from before (a new or purged recorder): rewritten one by one.
            "hours_rewritten_alone": dg.MetadataValue.int(hours_alone),
            "points_kept_from_archive": dg.MetadataValue.int(sum(a for a, _ in kept_archive.values())),
            "kept_from_archive": dg.MetadataValue.text(_archive_sentence(kept_archive, spec)),
            "bucket": dg.MetadataValue.text(spec.name),
        }
    )


class LastStates:
    """Per-row facts of an event frame, computed once, so the state in force at each hour's
    start is found by binary search over the lookback instead of re-grouping it every hour."""

    def __init__(self, rows: pd.DataFrame) -> None:
        rows = rows.sort_values("time", kind="stable").reset_index(drop=True)
        self._time = rows["time"]
        self._codes, self._ids = pd.factorize(rows["entity_id"])
        self._states = rows["state_value"].to_numpy(dtype=object)
        self._has_state = rows["state_value"].notna().to_numpy() & (self._codes >= 0)
        self._numbers = parse_numbers(rows["state_value"]).to_numpy()
        self._has_number = ~np.isnan(self._numbers) & (self._codes >= 0)
        resets = rows["last_reset"] if "last_reset" in rows.columns else pd.Series(None, index=rows.index, dtype=object)
        self._resets = resets.to_numpy(dtype=object)
        self._has_reset = resets.notna().to_numpy() & (self._codes >= 0)

    def at(self, since: datetime | None = None, until: datetime | None = None) -> dict[str, StartState]:
        """Per entity, its last state, last number and last `last_reset` in [since, until)."""
        lo = 0 if since is None else int(self._time.searchsorted(pd.Timestamp(since), side="left"))
        hi = len(self._time) if until is None else int(self._time.searchsorted(pd.Timestamp(until), side="left"))
        last_state, last_number, last_reset = (
            self._last_index(mask, lo, hi) for mask in (self._has_state, self._has_number, self._has_reset)
        )
        states: dict[str, StartState] = {}
        for code, i in last_state.items():
            j, k = last_number.get(code), last_reset.get(code)
            states[self._ids[code]] = {
                "state": self._states[i],
                "last_numeric": None if j is None else float(self._numbers[j]),
                "last_reset": None if k is None else self._resets[k],
            }
        return states

    def _last_index(self, mask: np.ndarray, lo: int, hi: int) -> dict[int, int]:
        """Entity code -> index of its last row in [lo, hi) where `mask` holds."""
        idx = lo + np.flatnonzero(mask[lo:hi])
        if not len(idx):
            return {}
        newest_first = idx[::-1]
        codes, first = np.unique(self._codes[newest_first], return_index=True)
        return dict(zip(codes.tolist(), newest_first[first].tolist()))


def hour_start_states(last: LastStates, in_hour: pd.DataFrame, start: datetime,
                      lookback: timedelta) -> dict[str, StartState]:
    """The state in force at an hour's start per entity: the last stored event in the lookback,
    else the first event's `previous_state` (for states older than the lookback)."""
    states = start_states_from_events(in_hour)
    states.update(last.at(start - lookback, start))
    return states


def start_states(before: pd.DataFrame, in_window: pd.DataFrame) -> dict[str, StartState]:
    """`hour_start_states` over a `before` frame that is exactly the lookback."""
    states = start_states_from_events(in_window)
    if not before.empty:
        states.update(LastStates(before).at())
    return states


def _preview(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "No entity had a state in this window."
    return "```\n" + frame.head(10).to_string(index=False) + "\n```"


def _write_summaries(backend, spec, frame: pd.DataFrame, start: datetime, end: datetime) -> int:
    backend.delete(spec.name, spec.measurement, start, end)
    if frame.empty:
        return 0
    tags = [c for c in SUMMARY_TAGS if c in frame.columns]
    fields = [c for c in SUMMARY_FIELDS if c in frame.columns]
    return backend.write(spec.name, frame, spec.measurement, tags, fields)


@dg.asset(
    key=["influxdb", "hourly_summaries"],
    deps=[events],
    partitions_def=hourly_partitions,
    backfill_policy=HOURLY_BACKFILL,
    group_name="history",
    kinds={"influxdb"},
    pool="influxdb",
    retry_policy=HISTORY_RETRY,
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2)),
)
@fails_at_once
def hourly_summaries_asset(
    context: dg.AssetExecutionContext,
    config: SummariesConfig,
    metadata_store: MetadataStoreResource,
    influxdb: InfluxDBResource,
) -> dg.MaterializeResult:
    """Per entity and hour, what HA's long-term statistics would store: time-weighted mean,
    min, max, last, row count, unavailable and on seconds, and the metered sum increase, read
    from the raw events and written to the 730-day `events_hourly` bucket. The state in force at
    each hour's start comes from the last event before it (looked back up to a day)."""
    window = context.partition_time_window
    specs = influxdb.bucket_specs()
    raw, spec = specs["events"], specs["events_hourly"]
    backend = influxdb.backend()
    backend.ensure_bucket(spec)
    entity_meta = {tag["entity_id"]: tag for tag in metadata_store.store().entity_tags()}
    lookback = timedelta(hours=config.start_state_lookback_hours)
    rows = backend.read(raw.name, raw.measurement, window.start - lookback, window.end)
    if rows.empty:
        rows = empty_events()

    written = 0
    summaries = []
    last = LastStates(rows)
    for start, end in hours(window):
        in_hour = rows[(rows["time"] >= start) & (rows["time"] < end)]
        frame = hourly_summaries(
            in_hour, start, end, start_states=hour_start_states(last, in_hour, start, lookback),
            entity_meta=entity_meta,
        )
        written += _write_summaries(backend, spec, frame, start, end)
        summaries.append(frame)
    everything = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
    return dg.MaterializeResult(
        metadata={
            **_window_metadata(window),
            "raw_points_read": dg.MetadataValue.int(len(rows)),
            "entity_hours": dg.MetadataValue.int(len(everything)),
            "points_written": dg.MetadataValue.int(written),
            "bucket": dg.MetadataValue.text(spec.name),
            "preview": dg.MetadataValue.md(_preview(everything)),
        }
    )


@dg.asset(
    key=["influxdb", "daily_summaries"],
    deps=[hourly_summaries_asset],
    partitions_def=daily_partitions,
    backfill_policy=DAILY_BACKFILL,
    group_name="history",
    kinds={"influxdb"},
    pool="influxdb",
    retry_policy=HISTORY_RETRY,
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26)),
)
@fails_at_once
def daily_summaries_asset(
    context: dg.AssetExecutionContext, influxdb: InfluxDBResource
) -> dg.MaterializeResult:
    """Per entity and UTC day, the 24 hourly summaries combined, each weighted by the seconds
    it covered, written to the 2555-day `events_daily` bucket. Each day is deleted and rewritten,
    so re-running a day after its hours were re-run gives the same result."""
    window = context.partition_time_window
    specs = influxdb.bucket_specs()
    hourly, spec = specs["events_hourly"], specs["events_daily"]
    backend = influxdb.backend()
    backend.ensure_bucket(spec)

    written = hourly_rows = entity_days = 0
    day = window.start.astimezone(timezone.utc)
    while day < window.end:
        next_day = day + timedelta(days=1)
        # InfluxDB returns only the fields it holds; rollups expect every summary column.
        hourly_frame = backend.read(hourly.name, hourly.measurement, day, next_day).reindex(
            columns=list(SUMMARY_COLUMNS)
        )
        frame = daily_from_hourly(hourly_frame, day)
        written += _write_summaries(backend, spec, frame, day, next_day)
        hourly_rows += len(hourly_frame)
        entity_days += len(frame)
        day = next_day
    return dg.MaterializeResult(
        metadata={
            **_window_metadata(window),
            "hourly_rows_read": dg.MetadataValue.int(hourly_rows),
            "entity_days": dg.MetadataValue.int(entity_days),
            "points_written": dg.MetadataValue.int(written),
            "bucket": dg.MetadataValue.text(spec.name),
        }
    )
