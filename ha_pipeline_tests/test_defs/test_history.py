"""History assets against the simulator and the test bed's real InfluxDB 1.x."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import pandas as pd
import pytest

from ha_pipeline.defs import checks
from ha_pipeline.defs.assets import history, inventory, summaries
from ha_pipeline.defs.resources import InfluxDBResource
from ha_pipeline.timeseries.backend import WriteReply, to_ns
from ha_pipeline.timeseries.buckets import BucketSpec, InfluxSettings
from ha_pipeline.timeseries.influx_v1 import InfluxV1Backend

pytestmark = pytest.mark.real_influx

HISTORY_ASSETS = [
    *inventory.ha_registries,
    inventory.ha_history,
    inventory.discovery,
    history.events,
    history.hourly_summaries_asset,
    summaries.daily_summaries_asset,
    checks.events_match_ha_rows,
    checks.hourly_counts_match_events,
    checks.hourly_summaries_finite,
    checks.daily_summaries_finite,
    checks.daily_mean_matches_hourly,
]


@pytest.fixture
def buckets(monkeypatch, request):
    """Bucket names of this test only, so tests sharing the server never see each other's points."""
    prefix = "t_" + request.node.name.replace("[", "_").replace("]", "")[:40]
    for key in ("EVENTS", "EVENTS_HOURLY", "EVENTS_DAILY", "DEVICES", "ENTITIES"):
        monkeypatch.setenv(f"INFLUXDB_BUCKET_{key}", f"{prefix}_{key.lower()}")


@pytest.fixture
def resources(simulator_ha, sqlite_store, influx_v1, buckets):
    return {"ha": simulator_ha, "metadata_store": sqlite_store, "influxdb": influx_v1}


def _day_ago() -> datetime:
    return (datetime.now(timezone.utc) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)


def _range_tags(start: datetime, hours: int) -> dict[str, str]:
    last = start + timedelta(hours=hours - 1)
    return {
        "dagster/asset_partition_range_start": start.strftime("%Y-%m-%d-%H:%M"),
        "dagster/asset_partition_range_end": last.strftime("%Y-%m-%d-%H:%M"),
    }


def _ha_rows(simulator_ha, start: datetime, end: datetime) -> int:
    """History rows HA holds for the window, counted independently of the asset."""
    with simulator_ha.client() as client:
        entity_ids = sorted(
            {state.entity_id for state in client.states()}
            | {entity.entity_id for entity in client.registry_snapshot().entities}
        )
        rows = client.history_during_period(start, end, entity_ids, include_start_time_state=False)
    return sum(1 for entity_rows in rows.values() for row in entity_rows if start.timestamp() < row["lu"] < end.timestamp())


def _run(assets, resources, instance, **kwargs):
    return dg.materialize(assets, resources=resources, instance=instance, **kwargs)


def _metadata(result, key: str) -> dict:
    events = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == key]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def _count(influx, key: str, start: datetime, end: datetime) -> int:
    spec = influx.bucket_specs()[key]
    return influx.backend().count(spec.name, spec.measurement, start, end)


def test_events_and_hourly_summaries_match_ha_and_rerun_identically(resources, simulator_ha, influx_v1):
    start = _day_ago() + timedelta(hours=10)
    end = start + timedelta(hours=3)
    with dg.instance_for_test() as instance:
        _run(HISTORY_ASSETS, resources, instance, selection=dg.AssetSelection.groups("inventory"))
        selection = dg.AssetSelection.assets(history.events, history.hourly_summaries_asset)
        first = _run(HISTORY_ASSETS, resources, instance, selection=selection, tags=_range_tags(start, 3))
        assert first.success

        expected = _ha_rows(simulator_ha, start, end)
        events_md = _metadata(first, "influxdb/events")
        assert expected > 0
        assert events_md["rows_kept"] == events_md["points_written"] == expected
        assert _count(influx_v1, "events", start, end) == expected
        assert events_md["entities"] > 10
        assert set(events_md["seconds_per_stage"]) == {"fetch", "normalise", "write", "verify"}
        partitions = {m.partition for m in first.asset_materializations_for_node("influxdb__events")}
        assert len(partitions) == 3

        evaluations = {e.check_name: e for e in first.get_asset_check_evaluations()}
        assert evaluations["events_match_ha_rows"].passed
        assert evaluations["hourly_counts_match_events"].passed
        assert evaluations["hourly_summaries_finite"].passed

        spec = influx_v1.bucket_specs()["events_hourly"]
        before = influx_v1.backend().read(spec.name, spec.measurement, start, end)
        assert len(before) > 0 and before["count"].sum() == expected

        again = _run(HISTORY_ASSETS, resources, instance, selection=selection, tags=_range_tags(start, 3))
        assert again.success
        assert _count(influx_v1, "events", start, end) == expected
        after = influx_v1.backend().read(spec.name, spec.measurement, start, end)
        columns = sorted(before.columns)
        key = ["entity_id", "time"]
        assert before[columns].sort_values(key).reset_index(drop=True).equals(
            after[columns].sort_values(key).reset_index(drop=True)
        )


def test_daily_summaries_from_24_hours(resources, simulator_ha, influx_v1):
    day = _day_ago()
    with dg.instance_for_test() as instance:
        hourly = dg.AssetSelection.assets(history.events, history.hourly_summaries_asset)
        assert _run(HISTORY_ASSETS, resources, instance, selection=hourly, tags=_range_tags(day, 24)).success
        daily = _run(
            HISTORY_ASSETS,
            resources,
            instance,
            selection=dg.AssetSelection.assets(summaries.daily_summaries_asset),
            partition_key=day.strftime("%Y-%m-%d"),
        )
        assert daily.success
        evaluations = {e.check_name: e for e in daily.get_asset_check_evaluations()}
        assert evaluations["daily_mean_matches_hourly"].passed
        assert evaluations["daily_summaries_finite"].passed
        spec = influx_v1.bucket_specs()["events_daily"]
        frame = influx_v1.backend().read(spec.name, spec.measurement, day, day + timedelta(days=1))
        assert frame["count"].sum() == _count(influx_v1, "events", day, day + timedelta(days=1))


def test_hours_older_than_the_retention_are_skipped_in_words(resources, influx_v1, monkeypatch):
    monkeypatch.setenv("RAW_DATA_RETENTION_DAYS", "1")
    hour = _day_ago() + timedelta(hours=5)
    with dg.instance_for_test() as instance:
        result = _run(
            HISTORY_ASSETS,
            resources,
            instance,
            selection=dg.AssetSelection.assets(history.events),
            partition_key=hour.strftime("%Y-%m-%d-%H:%M"),
        )
        assert result.success
        assert result.asset_materializations_for_node("influxdb__events") == []
        messages = [
            record.user_message for record in instance.all_logs(result.run_id) if record.level >= 30
        ]
        assert any("older than the 1-day retention" in message for message in messages)
    assert _count(influx_v1, "events", hour, hour + timedelta(hours=1)) == 0


_ATTEMPTS: list[int] = [0]  # step attempts (each ensures its bucket once), over retries


class _LossyV1Backend(InfluxV1Backend):
    """Acknowledges every batch but drops the lines of one hour, as a broken proxy would,
    during the step's first attempt only."""

    lost_us: tuple[int, int] = (0, 0)

    def ensure_bucket(self, spec):
        _ATTEMPTS[0] += 1
        return super().ensure_bucket(spec)

    def _post_lines(self, bucket: str, body: bytes, precision: str) -> WriteReply:
        lo, hi = self.lost_us
        if _ATTEMPTS[0] > 1:
            return super()._post_lines(bucket, body, precision)
        kept = [line for line in body.split(b"\n") if line and not lo <= int(line.rsplit(b" ", 1)[1]) < hi]
        if not kept:
            return WriteReply(204)
        return super()._post_lines(bucket, b"\n".join(kept) + b"\n", precision)


class _LossyInfluxDB(InfluxDBResource):
    lose_hour: str

    def backend(self):
        if self._backend is None:
            backend = _LossyV1Backend(InfluxSettings(url=self.url, api_version=1))
            lo = to_ns(datetime.fromisoformat(self.lose_hour)) // 1000
            backend.lost_us = (lo, lo + 3600 * 10**6)
            self._backend = backend
        return self._backend


def test_a_lost_hour_inside_a_multi_hour_write_fails_naming_it_and_the_retry_heals(resources, simulator_ha, influx_v1):
    start = _day_ago() + timedelta(hours=4)
    lost = start + timedelta(hours=1)
    _ATTEMPTS[0] = 0
    lossy = _LossyInfluxDB(url=influx_v1.url, api_version=1, lose_hour=lost.isoformat())
    with dg.instance_for_test() as instance:
        _run(HISTORY_ASSETS, resources, instance, selection=dg.AssetSelection.groups("inventory"))
        result = _run(HISTORY_ASSETS, {**resources, "influxdb": lossy}, instance,
                      selection=dg.AssetSelection.assets(history.events), tags=_range_tags(start, 3))
    [retry] = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    message = retry.event_specific_data.error.to_string()
    kept = _ha_rows(simulator_ha, lost, lost + timedelta(hours=1))
    assert kept > 0
    assert f"InfluxDB holds 0 points for {lost:%Y-%m-%d %H:00} UTC in bucket" in message
    assert f"but the rewrite left it {kept} ({kept} written from Home Assistant, 0 archived points kept)" in message
    assert result.success and _ATTEMPTS[0] == 2
    for hour in (start, lost, lost + timedelta(hours=1)):
        assert _count(influx_v1, "events", hour, hour + timedelta(hours=1)) == _ha_rows(simulator_ha, hour, hour + timedelta(hours=1))


class _PurgedHomeAssistant:
    """Wraps the simulator's resource: its history behaves as after HA's recorder purged every
    state older than `purged_before` (no rows before it, no start-time state for earlier windows)."""

    def __init__(self, inner, purged_before: datetime):
        self._inner, self._cut = inner, purged_before.timestamp()

    def client(self, **timeouts):
        real, cut = self._inner.client(**timeouts), self._cut

        class Client:
            def __enter__(self):
                real.__enter__()
                return self

            def __exit__(self, *exc):
                return real.__exit__(*exc)

            def __getattr__(self, name):
                return getattr(real, name)

            def history_during_period(self, start, *args, **kwargs):
                rows = real.history_during_period(start, *args, **kwargs)
                if start.timestamp() >= cut:
                    return rows
                kept = {e: [r for r in rs if r["lu"] >= cut and r["lu"] != start.timestamp()] for e, rs in rows.items()}
                return {e: rs for e, rs in kept.items() if rs}

        return Client()


def test_archived_hours_ha_has_purged_are_kept_not_replaced(resources, simulator_ha, influx_v1):
    start = _day_ago() + timedelta(hours=4)
    hour = timedelta(hours=1)
    selection = dg.AssetSelection.assets(history.events)
    with dg.instance_for_test() as instance:
        _run(HISTORY_ASSETS, resources, instance, selection=dg.AssetSelection.groups("inventory"))
        assert _run(HISTORY_ASSETS, resources, instance, selection=selection, tags=_range_tags(start, 3)).success
        archived = [_count(influx_v1, "events", start + i * hour, start + (i + 1) * hour) for i in range(3)]
        assert min(archived) > 0

        # HA's recorder has since purged everything before the middle of the second hour.
        class Purged(type(simulator_ha)):
            def client(self, **timeouts):
                return _PurgedHomeAssistant(simulator_ha, start + 1.5 * hour).client(**timeouts)

        purged = Purged(url=simulator_ha.url, token=simulator_ha.token)
        again = _run(HISTORY_ASSETS, {**resources, "ha": purged}, instance,
                     selection=selection, tags=_range_tags(start, 3))
        assert again.success
        # Hours 1 and 2 keep every archived point; hour 3, which HA still holds whole, is rewritten.
        assert [_count(influx_v1, "events", start + i * hour, start + (i + 1) * hour) for i in range(3)] == archived
        # What HA still sent was rewritten (hour 2's rows after the cut, all of hour 3); the rest kept.
        metadata = _metadata(again, "influxdb/events")
        assert metadata["hours_with_kept_points"] == 2
        assert 0 < metadata["points_kept_from_archive"] - archived[0] < archived[1]
        assert metadata["rows_kept"] + metadata["points_kept_from_archive"] == sum(archived)
        assert metadata["points_removed"] == 0
        assert "archived point(s) of 2 hour(s)" in metadata["kept_from_archive"]
        evaluations = {e.check_name: e for e in again.get_asset_check_evaluations()}
        assert evaluations["events_match_ha_rows"].passed

        # An hour HA holds whole again (the purge undone) is rewritten from HA as usual.
        healed = _run(HISTORY_ASSETS, resources, instance, selection=selection, tags=_range_tags(start, 3))
        assert _metadata(healed, "influxdb/events")["hours_with_kept_points"] == 0
        assert _count(influx_v1, "events", start, start + 3 * hour) == sum(archived)
