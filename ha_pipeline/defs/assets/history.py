"""History: HA's recorded states archived hourly into InfluxDB, with hourly and daily summaries."""

import os
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import dagster as dg

from ha_pipeline.defs.partitions import hourly_partitions
from ha_pipeline.defs.resources import (
    HomeAssistantResource,
    InfluxDBResource,
    MetadataStoreResource,
    fails_at_once,
)

# pandas, numpy and the plain layers they carry are imported by the functions that run them, so
# loading the definitions stays light (issue 16).
if TYPE_CHECKING:
    import pandas as pd

    from ha_pipeline.timeseries.archive import ArchiveResult, EntityRules, FetchPlan

HISTORY_RETRY = dg.RetryPolicy(max_retries=2, delay=20, backoff=dg.Backoff.EXPONENTIAL)
# One run per day of hours: a 30-day backfill is 30 runs, not 720.
HOURLY_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=24)


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

    def rules(self) -> "EntityRules":
        """The plain rules (timeseries/archive.py) this config stands for."""
        from ha_pipeline.timeseries.archive import EntityRules

        return EntityRules(**{name: tuple(getattr(self, name)) for name in EntityRules.__dataclass_fields__})

    def accepts(self, entity_id: str) -> bool:
        return self.rules().accepts(entity_id)


class EventsConfig(dg.Config):
    """Run configuration of `influxdb/events`."""

    entity_filter: EntityFilter = EntityFilter()
    entity_batch_size: int = 200


class SummariesConfig(dg.Config):
    """Run configuration of `influxdb/hourly_summaries`."""

    start_state_lookback_hours: int = 24


def hours(window: dg.TimeWindow) -> list[tuple[datetime, datetime]]:
    """The one-hour windows that make up a (possibly multi-partition) time window."""
    from ha_pipeline.timeseries.archive import hour_windows

    return hour_windows(window.start, window.end)


def _window_metadata(window: dg.TimeWindow) -> dict[str, dg.MetadataValue]:
    return {
        "window_start": dg.MetadataValue.text(window.start.astimezone(timezone.utc).isoformat()),
        "window_end": dg.MetadataValue.text(window.end.astimezone(timezone.utc).isoformat()),
    }


def _events_metadata(window: dg.TimeWindow, result: "ArchiveResult", plan: "FetchPlan", skipped: list[str],
                     spec, seconds: Counter[str]) -> dict[str, dg.MetadataValue]:
    """The run's figures as typed metadata (checks read `rows_kept` and `points_kept_from_archive`)."""
    from ha_pipeline.timeseries.archive import kept_sentence, retention_sentence

    return {
        **_window_metadata(window),
        "rows_fetched": dg.MetadataValue.int(result.rows_fetched),
        "rows_kept": dg.MetadataValue.int(result.total("written")),
        "points_written": dg.MetadataValue.int(result.total("written")),
        "start_states_written": dg.MetadataValue.int(result.start_states),
        "entities": dg.MetadataValue.int(len(result.entities)),
        "entities_requested": dg.MetadataValue.int(len(plan.entity_ids)),
        "rejects_by_reason": dg.MetadataValue.json(dict(result.rejects)),
        "rejected_rows": dg.MetadataValue.int(sum(result.rejects.values())),
        "points_with_encoded_tags": dg.MetadataValue.int(result.total("encoded")),
        "points_replaced": dg.MetadataValue.int(result.total("replaced")),
        "points_removed": dg.MetadataValue.int(result.total("removed")),
        "points_kept_from_archive": dg.MetadataValue.int(result.total("kept")),
        "hours_with_kept_points": dg.MetadataValue.int(sum(1 for hour in result.hours if hour.kept)),
        "kept_from_archive": dg.MetadataValue.text(kept_sentence(result, spec)),
        "hours_skipped": dg.MetadataValue.int(len(skipped)),
        "skipped": dg.MetadataValue.text(retention_sentence(skipped, spec)),
        "seconds_per_stage": dg.MetadataValue.json({stage: round(value, 3) for stage, value in seconds.items()}),
        "bucket": dg.MetadataValue.text(spec.name),
    }


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
    """Archives every state row HA recorded in each hour of the partition window (rows stamped
    exactly on the hour included) into the 365-day `events` bucket, one point per row, tagged from
    the SQL inventory, with HA's start-time state of each entity beside them. Every entity HA may
    hold rows of is asked for, including those that left HA but are in the inventory or the archive.
    The hours are written first and only then pruned of points HA's answer replaced or, for an hour
    HA still holds whole, no longer has, so no failure can leave an hour with fewer points than it
    had; every hour is then counted back. `seconds_per_stage` is the wall time of each stage."""
    from ha_pipeline.timeseries.archive import (
        ArchiveMismatch,
        archive_hours,
        archived_entities,
        fetch_hour,
        fetch_plan,
        inventory_for,
        kept_sentence,
        refused_sentence,
        retention_sentence,
        within_retention,
    )
    from ha_pipeline.timeseries.history_rejects import rejected_rows_sentence

    window = context.partition_time_window
    spec = influxdb.bucket_specs()["events"]
    backend = influxdb.backend()
    backend.ensure_bucket(spec)
    kept_hours, skipped = within_retention(hours(window), spec.retention_days)
    if not kept_hours:
        context.log.warning(f"{retention_sentence(skipped, spec)} First skipped hour: {skipped[0]}.")
        return
    span = (kept_hours[0][0], kept_hours[-1][1])
    inventory = inventory_for(metadata_store.store().entity_tags(include_removed=True), span[0])
    seconds: Counter[str] = Counter()
    with ha.client() as client:
        started = time.monotonic()
        current = [state.entity_id for state in client.states()]
        plan = fetch_plan(current, inventory, archived_entities(backend, spec, *span), config.entity_filter.rules())
        seconds["fetch"] += time.monotonic() - started

        def history(start: datetime, end: datetime, ids: list[str], no_attributes: bool):
            return client.history_during_period(
                start, end, ids, batch_size=config.entity_batch_size, no_attributes=no_attributes
            )

        fetched = (fetch_hour(history, start, end, plan, inventory, seconds) for start, end in kept_hours)
        try:
            result = archive_hours(backend, spec, span, fetched, set(plan.entity_ids), seconds)
        except ArchiveMismatch as exc:
            raise dg.Failure(str(exc)) from None
    skipped += [hour.start.isoformat() for hour in result.beyond_retention]
    if skipped:
        context.log.warning(f"{retention_sentence(skipped, spec)} First skipped hour: {skipped[0]}.")
    if result.total("kept"):
        context.log.warning(kept_sentence(result, spec))
    if sentence := rejected_rows_sentence(result.rejects):
        context.log.warning(sentence)
    if result.refused:
        raise dg.Failure(refused_sentence(result.refused, spec), allow_retries=False,
                         metadata=_events_metadata(window, result, plan, skipped, spec, seconds))
    if not any(hour.settled and (hour.written or hour.kept) for hour in result.hours):
        return
    yield dg.MaterializeResult(metadata=_events_metadata(window, result, plan, skipped, spec, seconds))


def _preview(frame: "pd.DataFrame") -> str:
    if frame.empty:
        return "No entity had a state in this window."
    return "```\n" + frame.head(10).to_string(index=False) + "\n```"


def _write_summaries(backend, spec, frame: "pd.DataFrame", start: datetime, end: datetime) -> int:
    from ha_pipeline.timeseries.rollups import FIELD_COLUMNS as SUMMARY_FIELDS
    from ha_pipeline.timeseries.rollups import TAG_COLUMNS as SUMMARY_TAGS

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
    each hour's start is HA's own start-time state, archived with the events (so a sensor that
    held its value for days has a row every hour, as in HA); for hours archived without it, the
    last event before the hour (looked back up to a day)."""
    import pandas as pd

    from ha_pipeline.timeseries.archive import START_STATES_MEASUREMENT
    from ha_pipeline.timeseries.events import empty_events
    from ha_pipeline.timeseries.rollups import hourly_summaries
    from ha_pipeline.timeseries.start_states import LastStates, ha_start_states, hour_start_states

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
    from_ha = ha_start_states(backend.read(raw.name, START_STATES_MEASUREMENT, window.start, window.end))

    written = 0
    summaries = []
    last = LastStates(rows)
    for start, end in hours(window):
        in_hour = rows[(rows["time"] >= start) & (rows["time"] < end)]
        states = hour_start_states(last, in_hour, start, lookback, from_ha.get(pd.Timestamp(start)))
        frame = hourly_summaries(in_hour, start, end, start_states=states, entity_meta=entity_meta)
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
