"""The archive's fetch plan, its reading of HA's window edges, and its rewrite against a real InfluxDB 1.x."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from ha_pipeline.timeseries.archive import (
    COUNT_FIELD,
    START_STATES_MEASUREMENT,
    ArchiveMismatch,
    EntityRules,
    FetchedHour,
    archive_hours,
    archived_entities,
    fetch_hour,
    fetch_plan,
    fetch_start,
    inventory_for,
    within_retention,
)
from ha_pipeline.timeseries.backend import InfluxWriteError
from ha_pipeline.timeseries.buckets import BucketSpec, InfluxSettings
from ha_pipeline.timeseries.events import history_to_events, start_states_from_history
from ha_pipeline.timeseries.influx_v1 import InfluxV1Backend

HOUR = timedelta(hours=1)
# Recent enough for any retention, on the hour as partitions are.
H0 = (datetime.now(timezone.utc) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
M = "home_assistant_events"


def _s(moment: datetime) -> float:
    return moment.timestamp()


def test_a_fetch_starts_one_microsecond_early_so_rows_on_the_hour_are_the_hours() -> None:
    since = fetch_start(H0)
    assert H0 - since == timedelta(microseconds=1)
    # what HA answers for start_time=since: the start-time row at `since` (twice after an entity-id
    # rename), then rows with since < last_updated < end, among them one exactly on the hour
    history = {
        "sensor.backfilled": [{"s": "1.0", "lu": _s(since)}, {"s": "1.0", "lu": _s(since)},
                              {"s": "2.0", "lu": _s(H0)}, {"s": "3.0", "lu": _s(H0 + timedelta(minutes=15))}],
        "sensor.steady": [{"s": "7.5", "lu": _s(since), "a": {"last_reset": "2024-01-01T00:00:00+00:00"}}],
    }
    events, rejects = history_to_events(history, H0, H0 + HOUR, fetched_from=since)
    assert rejects == {}
    assert events["entity_id"].tolist() == ["sensor.backfilled", "sensor.backfilled"]
    assert events["time"].tolist() == [pd.Timestamp(H0), pd.Timestamp(H0 + timedelta(minutes=15))]
    assert events["previous_state"].tolist() == ["1.0", "2.0"]
    assert events["duration_seconds"].tolist() == [0.0, 900.0]  # from the window start, not the fetch start
    starts = start_states_from_history(history, since, H0)
    assert starts[["entity_id", "state", "last_reset"]].values.tolist() == [
        ["sensor.backfilled", "1.0", None],
        ["sensor.steady", "7.5", "2024-01-01T00:00:00+00:00"],
    ]
    assert (starts["time"] == pd.Timestamp(H0)).all()
    # without fetched_from (a fetch from the window start), the first row on the hour is the start row
    plain, _ = history_to_events({"sensor.a": [{"s": "1", "lu": _s(H0)}, {"s": "2", "lu": _s(H0)}]}, H0, H0 + HOUR)
    assert plain["state_value"].tolist() == ["2"]


def test_fetch_plan_covers_current_inventory_and_archived_entities_less_excluded() -> None:
    inventory = {"sensor.meter": {"state_class": "total"}, "sensor.kept": {"state_class": "measurement"},
                 "sensor.removed_from_ha": {}}
    plan = fetch_plan(["sensor.kept", "light.x", "sensor.noisy"], inventory, ["sensor.gone_long_ago"],
                      EntityRules(exclude_entities=("sensor.noisy",)))
    assert plan.entity_ids == ["light.x", "sensor.gone_long_ago", "sensor.kept", "sensor.meter", "sensor.removed_from_ha"]
    # total meters (last_reset) and entities the inventory does not describe come with attributes
    assert plan.attribute_ids == ["light.x", "sensor.gone_long_ago", "sensor.meter"]
    assert sorted(plan.plain_ids + plan.attribute_ids) == plan.entity_ids


def test_inventory_for_keeps_entities_removed_during_or_after_the_window() -> None:
    tags = [{"entity_id": "sensor.now", "removed_at": None},
            {"entity_id": "sensor.left_later", "removed_at": (H0 + HOUR).replace(tzinfo=None)},
            {"entity_id": "sensor.left_before", "removed_at": H0 - HOUR}]
    assert sorted(inventory_for(tags, H0)) == ["sensor.left_later", "sensor.now"]


def test_within_retention_splits_hours_and_zero_keeps_all() -> None:
    now = H0 + timedelta(days=2)
    hours = [(H0, H0 + HOUR), (H0 + timedelta(days=1), H0 + timedelta(days=1, hours=1))]
    assert within_retention(hours, 1, now) == ([hours[1]], [H0.isoformat()])
    assert within_retention(hours, 0, now) == (hours, [])


@pytest.fixture
def spec(backend: InfluxV1Backend) -> BucketSpec:
    spec = BucketSpec(f"arch_{uuid.uuid4().hex[:8]}", M, 30, 1)
    backend.ensure_bucket(spec)
    return spec


def _hour(start: datetime, rows: dict[str, list[tuple[int, str]]], *, whole: bool = True,
          tags: dict | None = None) -> FetchedHour:
    """A FetchedHour as fetch_hour builds it: rows per entity as (minute, state)."""
    since = fetch_start(start)
    history = {e: ([{"s": "0", "lu": _s(since)}] if whole else [])
               + [{"s": s, "lu": _s(start + timedelta(minutes=m))} for m, s in r] for e, r in rows.items()}
    return fetch_hour(lambda a, b, ids, no_attributes: {e: history[e] for e in ids if e in history},
                      start, start + HOUR, fetch_plan(history, tags or {}, [], EntityRules()), tags or {})


def _counts(backend: InfluxV1Backend, spec: BucketSpec, start: datetime, hours: int = 1) -> list[int]:
    counts = backend.count_by_window(spec.name, M, start, start + hours * HOUR, HOUR, field=COUNT_FIELD)
    return [counts[pd.Timestamp(start + i * HOUR)] for i in range(hours)]


def _archive(backend, spec, hours: list[FetchedHour], requested: set[str] | None = None):
    window = (hours[0].start, hours[-1].end)
    requested = requested if requested is not None else {e for h in hours for e in h.events["entity_id"]}
    return archive_hours(backend, spec, window, iter(hours), requested)


def test_first_write_then_identical_rerun_deletes_nothing(backend, spec) -> None:
    hours = [_hour(H0, {"sensor.a": [(0, "1"), (30, "2")], "sensor.b": [(59, "x")]}),
             _hour(H0 + HOUR, {"sensor.a": [(10, "3")]})]
    result = _archive(backend, spec, hours)
    assert [h.stored for h in result.hours] == [3, 1] and result.start_states == 3
    again = _archive(backend, spec, hours)
    assert [(h.archived_before, h.written, h.replaced, h.removed, h.kept) for h in again.hours] == [
        (3, 3, 0, 0, 0), (1, 1, 0, 0, 0)]
    states = backend.read(spec.name, START_STATES_MEASUREMENT, H0, H0 + 2 * HOUR)
    assert sorted(zip(states["entity_id"], states["time"])) == [
        ("sensor.a", pd.Timestamp(H0)), ("sensor.a", pd.Timestamp(H0 + HOUR)), ("sensor.b", pd.Timestamp(H0))]


def test_changed_tags_replace_the_old_points_and_vanished_rows_go_only_when_ha_holds_the_hour(backend, spec) -> None:
    _archive(backend, spec, [_hour(H0, {"sensor.a": [(0, "1"), (30, "2")], "sensor.left": [(5, "9")]},
                                   tags={"sensor.a": {"area": "Kitchen"}})])
    # the entity moved area, and HA no longer sends its second row nor sensor.left's for the hour,
    # which it holds whole: the moved point is replaced, the two vanished ones removed (both asked for)
    moved = _hour(H0, {"sensor.a": [(0, "1")], "sensor.left": []}, tags={"sensor.a": {"area": "Hall"}})
    result = _archive(backend, spec, [moved], requested={"sensor.a", "sensor.left"})
    [hour] = result.hours
    assert (hour.written, hour.replaced, hour.removed, hour.kept, hour.stored) == (1, 1, 2, 0, 1)
    stored = backend.read(spec.name, M, H0, H0 + HOUR)
    assert stored[["entity_id", "area", "state_value"]].values.tolist() == [["sensor.a", "Hall", "1"]]


def test_an_hour_ha_no_longer_holds_whole_keeps_every_archived_point(backend, spec) -> None:
    _archive(backend, spec, [_hour(H0, {"sensor.a": [(0, "1"), (30, "2"), (40, "3")]})])
    purged = _hour(H0, {"sensor.a": [(40, "3")]}, whole=False)  # HA purged up to 00:35
    result = _archive(backend, spec, [purged])
    [hour] = result.hours
    assert (hour.written, hour.kept, hour.removed, hour.stored) == (1, 2, 0, 3)
    # entities the run did not ask for are kept too, even in an hour HA holds whole
    result = _archive(backend, spec, [_hour(H0, {"sensor.b": [(1, "x")]})], requested={"sensor.b"})
    assert (result.hours[0].kept, result.hours[0].stored) == (3, 4)


def test_a_write_that_fails_leaves_every_archived_point(backend, spec) -> None:
    _archive(backend, spec, [_hour(H0, {"sensor.a": [(0, "1"), (30, "2")]}, tags={"sensor.a": {"area": "A"}})])

    class Broken(InfluxV1Backend):
        def _post_lines(self, bucket, body, precision):
            from ha_pipeline.timeseries.backend import WriteReply
            return WriteReply(404, "database not found")

    with Broken(InfluxSettings(url=backend.settings.url, api_version=1), backoff_seconds=0.01) as broken:
        moved = _hour(H0, {"sensor.a": [(0, "1")]}, tags={"sensor.a": {"area": "B"}})
        with pytest.raises(InfluxWriteError, match="has no bucket/database"):
            _archive(broken, spec, [moved])
    assert _counts(backend, spec, H0) == [2]
    assert set(backend.read(spec.name, M, H0, H0 + HOUR)["area"]) == {"A"}


def test_refused_points_are_counted_the_rest_stored_and_the_hour_not_pruned(backend, spec) -> None:
    _archive(backend, spec, [_hour(H0, {"sensor.a": [(0, "1"), (30, "2")]})])
    # a conflicting type in the bucket (as an older tool could have left it) for one later point
    backend.write(spec.name, pd.DataFrame({"time": [pd.Timestamp(H0 + timedelta(minutes=50))],
                                           "entity_id": ["sensor.z"], "unit_of_measurement": [1.5]}),
                  M, ["entity_id"], ["unit_of_measurement"], precision="us")
    hour = _hour(H0, {"sensor.a": [(0, "1")], "sensor.c": [(10, "5")]}, tags={"sensor.c": {"unit_of_measurement": "W"}})
    result = _archive(backend, spec, [hour], requested={"sensor.a", "sensor.c"})
    [outcome] = result.hours
    assert outcome.refused == 1 and "field type conflict" in outcome.refused_reason
    # sensor.a's second row vanished but the hour is not pruned; sensor.z has no state_value to count
    assert outcome.removed == 0 and _counts(backend, spec, H0) == [2]


def test_a_count_that_differs_after_the_rewrite_names_the_hour(backend, spec) -> None:
    class Lossy(InfluxV1Backend):
        def _post_lines(self, bucket, body, precision):
            kept = b"\n".join(line for line in body.split(b"\n") if b"sensor.lost" not in line) + b"\n"
            return super()._post_lines(bucket, kept, precision)

    with Lossy(InfluxSettings(url=backend.settings.url, api_version=1)) as lossy:
        with pytest.raises(ArchiveMismatch, match=f"InfluxDB holds 1 points for {H0:%Y-%m-%d %H:00} UTC"):
            _archive(lossy, spec, [_hour(H0, {"sensor.lost": [(1, "1")], "sensor.ok": [(2, "2")]})])


def test_archived_entities_and_odd_tag_values_round_trip(backend, spec) -> None:
    odd = "sensor.x\n"
    tags = {odd: {"device_name": "Printer C:\\"}}
    result = _archive(backend, spec, [_hour(H0, {odd: [(1, "1")], "sensor.y": [(2, "2")]}, tags=tags)])
    assert result.total("encoded") == 1
    assert archived_entities(backend, spec, H0, H0 + HOUR) == {odd, "sensor.y"}
    stored = backend.read(spec.name, M, H0, H0 + HOUR).set_index("entity_id")
    assert stored.loc[odd, "device_name"] == "Printer C:\\"
    again = _archive(backend, spec, [_hour(H0, {odd: [(1, "1")], "sensor.y": [(2, "2")]}, tags=tags)])
    assert (again.hours[0].replaced, again.hours[0].removed, again.hours[0].stored) == (0, 0, 2)
