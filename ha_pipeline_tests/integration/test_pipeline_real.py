"""The Dagster pipeline end to end against the real Home Assistant and the real InfluxDB 1.x.

History before HA's start is seeded into HA's own recorder database (rows of three entities
over the last 24 completed hours, the meter's on quarter hours, so exactly on every hour's start),
then read back through HA's WebSocket API like any other history: every count below is compared
with HA's own recorder database, read-only.
"""

import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from ha_pipeline.defs import checks
from ha_pipeline.defs.assets import history, inventory, summaries
from ha_pipeline.defs.resources import HomeAssistantResource, InfluxDBResource, MetadataStoreResource
from ha_pipeline.defs.sensors import registry_change_sensor
from ha_pipeline_tests.testbed.homeassistant import RealHomeAssistant, start_real_ha
from ha_pipeline_tests.testbed.influxdb import start_influxdb

pytestmark = [pytest.mark.real_ha, pytest.mark.real_influx, pytest.mark.usefixtures("live_dagster_instance")]

ASSETS = [
    *inventory.ha_registries,
    inventory.ha_history,
    inventory.discovery,
    history.events,
    history.hourly_summaries_asset,
    summaries.daily_summaries_asset,
    checks.inventory_integrity,
    checks.events_match_ha_rows,
    checks.hourly_counts_match_events,
    checks.hourly_summaries_finite,
    checks.daily_summaries_finite,
    checks.daily_mean_matches_hourly,
]
INVENTORY = dg.AssetSelection.assets(inventory.discovery)
INVENTORY_ASSETS = [*inventory.ha_registries, inventory.discovery, checks.inventory_integrity]
HOURLY = dg.AssetSelection.assets(history.events, history.hourly_summaries_asset)
SEEDED = {
    "sensor.kitchen_smart_plug_power": lambda i: f"{(i * 37) % 900 / 10:.1f}",
    "sensor.main_energy_meter_energy": lambda i: f"{1000 + i * 0.25 if i < 150 else (i - 150) * 0.25:.2f}",
    "binary_sensor.hallway_motion_motion": lambda i: "on" if i % 3 == 0 else "off",
}


# (first row after the window start, seconds between rows): the meter is back-filled on quarter
# hours, as imported history is, so a row stands exactly on every hour's start.
SEED_TIMES = {
    "sensor.kitchen_smart_plug_power": (90, 420),
    "sensor.main_energy_meter_energy": (0, 900),
    "binary_sensor.hallway_motion_motion": (124, 420),
}


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _seed_recorder(database: Path, start: datetime, end: datetime) -> None:
    """Add SEEDED rows every 7 minutes in [start, end) and a recorder run that covers them.

    HA answers history only after its first recorder run, which it reads at start-up: this
    runs while HA is stopped."""
    db = sqlite3.connect(database, timeout=30)
    try:
        meta = dict(db.execute("SELECT entity_id, metadata_id FROM states_meta").fetchall())
        assert set(SEEDED) <= meta.keys(), "the test bed home should record these entities"
        first_row = db.execute("SELECT min(last_updated_ts) FROM states").fetchone()[0]
        seed_until = min(first_row, end.timestamp()) - 60
        rows = []
        for entity_id, value in SEEDED.items():
            (phase, step), i = SEED_TIMES[entity_id], 0
            moment = start.timestamp() + phase
            while moment < seed_until:
                rows.append((value(i), moment, meta[entity_id]))
                moment, i = moment + step, i + 1
        sample = db.execute("SELECT start FROM recorder_runs ORDER BY run_id LIMIT 1").fetchone()[0]
        run_start = (start - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        assert len(sample) == len(run_start), f"unexpected recorder_runs.start format {sample!r}"
        with db:
            db.executemany(
                "INSERT INTO states (state, last_updated_ts, metadata_id, origin_idx) VALUES (?, ?, ?, 0)",
                rows,
            )
            db.execute(
                "INSERT INTO recorder_runs (start, \"end\", closed_incorrect, created) VALUES (?, ?, 0, ?)",
                (run_start, sample, run_start),
            )
    finally:
        db.close()


@pytest.fixture(scope="module")
def window() -> tuple[datetime, datetime]:
    """The 24 completed hours before now."""
    end = _hour_floor(datetime.now(timezone.utc))
    return end - timedelta(hours=24), end


@pytest.fixture(scope="module")
def seeded_ha(tmp_path_factory, window) -> Iterator[RealHomeAssistant]:
    """A dedicated real HA whose recorder holds seeded history for the 24 hours of `window`."""
    config_dir = tmp_path_factory.mktemp("seeded_ha") / "config"
    start_real_ha(config_dir).stop()
    _seed_recorder(config_dir / "home-assistant_v2.db", *window)
    ha = start_real_ha(config_dir)
    try:
        yield ha
    finally:
        ha.stop()


@pytest.fixture(scope="module")
def ha(real_ha) -> HomeAssistantResource:
    return HomeAssistantResource(url=real_ha.url, token=real_ha.token)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> MetadataStoreResource:
    return MetadataStoreResource(db_url=f"sqlite:///{tmp_path_factory.mktemp('meta') / 'ha.db'}")


@pytest.fixture(scope="module")
def bucket_env():
    with pytest.MonkeyPatch.context() as patch:
        for key in ("EVENTS", "EVENTS_HOURLY", "EVENTS_DAILY", "DEVICES", "ENTITIES"):
            patch.setenv(f"INFLUXDB_BUCKET_{key}", f"it_pipeline_{key.lower()}")
        yield


@pytest.fixture(scope="module")
def influx(influxdb_server, bucket_env) -> InfluxDBResource:
    return InfluxDBResource(url=influxdb_server.url, api_version=1)


def _range_tags(start: datetime, end: datetime) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": start.strftime("%Y-%m-%d-%H:%M"),
        "dagster/asset_partition_range_end": (end - timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M"),
    }


def _ha_rows(real_ha, start: datetime, end: datetime) -> int:
    """Rows HA's recorder holds for [start, end), every entity, read from its own database
    (read-only): the judge, not HA's API and not our client."""
    db = sqlite3.connect(f"file:{real_ha.config_dir / 'home-assistant_v2.db'}?mode=ro", uri=True, timeout=30)
    try:
        (rows,) = db.execute(
            "SELECT count(*) FROM states WHERE last_updated_ts >= ? AND last_updated_ts < ?",
            (start.timestamp(), end.timestamp()),
        ).fetchone()
    finally:
        db.close()
    return int(rows)


def _count(influx: InfluxDBResource, key: str, start: datetime, end: datetime) -> int:
    spec = influx.bucket_specs()[key]
    return influx.backend().count(spec.name, spec.measurement, start, end)


def _read(influx: InfluxDBResource, key: str, start: datetime, end: datetime):
    spec = influx.bucket_specs()[key]
    frame = influx.backend().read(spec.name, spec.measurement, start, end)
    return frame[sorted(frame.columns)].sort_values(["entity_id", "time"]).reset_index(drop=True)


def test_discovery_stores_exactly_what_ha_lists(real_ha, ha, store):
    result = dg.materialize(INVENTORY_ASSETS, resources={"ha": ha, "metadata_store": store})
    assert result.success
    s = store.store()
    ha_devices = {d["id"]: d for d in real_ha.ws_command("config/device_registry/list")}
    ha_entities = {e["entity_id"]: e for e in real_ha.ws_command("config/entity_registry/list")}
    ha_areas = {a["area_id"]: a for a in real_ha.ws_command("config/area_registry/list")}
    ha_entries = {c["entry_id"]: c for c in real_ha.ws_command("config_entries/get")}

    devices = {d["device_id"]: d for d in s.devices()}
    entities = {e["entity_id"]: e for e in s.entities()}
    assert devices.keys() == ha_devices.keys()
    assert entities.keys() == ha_entities.keys()
    counts = s.counts()
    assert counts["areas"] == len(ha_areas)
    assert counts["config_entries"] == len(ha_entries)
    for entry_id, entry in ha_entries.items():
        assert s.config_entry(entry_id)["domain"] == entry["domain"]
    for area_id, area in ha_areas.items():
        assert s.area(area_id)["name"] == area["name"]
    for device_id, d in ha_devices.items():
        stored = devices[device_id]
        for key in ("name", "name_by_user", "manufacturer", "model", "area_id", "via_device_id"):
            assert stored[key] == d.get(key), (device_id, key)
    for entity_id, e in ha_entities.items():
        stored = entities[entity_id]
        for key in ("platform", "unique_id", "device_id", "disabled_by"):
            assert stored[key] == e.get(key), (entity_id, key)


def test_registry_changes_reach_the_store_through_the_sensor(real_ha, ha, store):
    context = dg.build_sensor_context(cursor=None, resources={"ha": ha})
    first = registry_change_sensor.evaluate_tick(context)
    assert len(first.run_requests) == 1
    cursor = context.cursor
    resources = {"ha": ha, "metadata_store": store}
    assert dg.materialize(INVENTORY_ASSETS, resources=resources).success

    devices = [d for d in real_ha.ws_command("config/device_registry/list") if d.get("area_id")]
    device = devices[0]
    other_area = next(a["area_id"] for a in real_ha.ws_command("config/area_registry/list")
                      if a["area_id"] != device["area_id"])
    removed = "sensor.comfort_gap"
    assert removed in {e["entity_id"] for e in real_ha.ws_command("config/entity_registry/list")}
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    real_ha.ws_command("config/device_registry/update", device_id=device["id"],
                       name_by_user="Renamed by the pipeline test", area_id=other_area)
    real_ha.ws_command("config/entity_registry/remove", entity_id=removed)
    try:
        context = dg.build_sensor_context(cursor=cursor, resources={"ha": ha})
        changed = registry_change_sensor.evaluate_tick(context)
        assert len(changed.run_requests) == 1 and context.cursor != cursor
        assert dg.materialize(INVENTORY_ASSETS, resources=resources).success

        changes = store.store().registry_changes(since=since)
        kinds = {(c["table_name"], c["object_id"], c["change_type"]) for c in changes}
        assert ("devices", device["id"], "renamed") in kinds
        assert ("devices", device["id"], "area_changed") in kinds
        assert ("entities", removed, "removed") in kinds
        assert store.store().device(device["id"])["area_id"] == other_area
        assert store.store().entity(removed)["removed_at"] is not None
    finally:
        real_ha.ws_command("config/device_registry/update", device_id=device["id"],
                           name_by_user=device.get("name_by_user"), area_id=device["area_id"])
        real_ha.call_service("template", "reload")


def test_a_day_of_history_matches_ha_and_reruns_identically(seeded_ha, store, influx, window):
    start, end = window
    ha = HomeAssistantResource(url=seeded_ha.url, token=seeded_ha.token)
    resources = {"ha": ha, "metadata_store": store, "influxdb": influx}
    expected = _ha_rows(seeded_ha, start, end)
    assert expected >= 3 * 100, "the seeded history should be there"
    with dg.instance_for_test() as instance:
        assert dg.materialize(ASSETS, resources=resources, instance=instance,
                              selection=INVENTORY).success
        first = dg.materialize(ASSETS, resources=resources, instance=instance, selection=HOURLY,
                               tags=_range_tags(start, end))
        assert first.success
        assert len(first.asset_materializations_for_node("influxdb__events")) == 24
        events_md = first.asset_materializations_for_node("influxdb__events")[-1].metadata
        assert events_md["hours_with_kept_points"].value == 0 and events_md["points_removed"].value == 0
        # HA's start-time state of every entity it held a state for is archived for every hour
        assert events_md["start_states_written"].value > 0
        assert _count(influx, "events", start, end) == expected
        hourly = _read(influx, "events_hourly", start, end)
        assert int(hourly["count"].sum()) == expected
        assert all(e.passed for e in first.get_asset_check_evaluations())

        day = _hour_floor(start).replace(hour=0)
        day_end = day + timedelta(days=1)
        daily = dg.materialize(ASSETS, resources=resources, instance=instance,
                               selection=dg.AssetSelection.assets(summaries.daily_summaries_asset),
                               partition_key=day.strftime("%Y-%m-%d"))
        assert daily.success
        assert all(e.passed for e in daily.get_asset_check_evaluations())
        daily_rows = _read(influx, "events_daily", day, day_end)
        assert int(daily_rows["count"].sum()) == _count(influx, "events", day, day_end)

        again = dg.materialize(ASSETS, resources=resources, instance=instance, selection=HOURLY,
                               tags=_range_tags(start, end))
        assert again.success
        assert _count(influx, "events", start, end) == expected
        assert _read(influx, "events_hourly", start, end).equals(hourly)


class _OutageHomeAssistant(HomeAssistantResource):
    """The real HA, except that fetching the history of `outage_hour` first stops InfluxDB."""

    outage_hour: str

    def client(self, **timeouts: float):
        real = super().client(**timeouts)
        outage_at = datetime.fromisoformat(self.outage_hour)

        class Client:
            def __enter__(self):
                real.__enter__()
                return self

            def __exit__(self, *exc):
                return real.__exit__(*exc)

            def __getattr__(self, name):
                return getattr(real, name)

            def history_during_period(self, start, *args, **kwargs):
                # the archive fetches each hour from 1 µs before it (archive.fetch_start)
                if start + timedelta(microseconds=1) >= outage_at and _OUTAGE["server"] is not None:
                    _OUTAGE["server"].stop()
                    _OUTAGE["server"] = None
                return real.history_during_period(start, *args, **kwargs)

        return Client()


_OUTAGE: dict = {"server": None}


def test_influxdb_outage_mid_partition_fails_clearly_and_the_rerun_heals(
    seeded_ha, store, window, tmp_path, bucket_env
):
    _, end = window
    start = end - timedelta(hours=2)
    ha = HomeAssistantResource(url=seeded_ha.url, token=seeded_ha.token)
    expected = _ha_rows(seeded_ha, start, end)
    assert expected > 0
    server = start_influxdb(tmp_path / "influx")
    try:
        _OUTAGE["server"] = server
        influx = InfluxDBResource(url=server.url, api_version=1)
        flaky = _OutageHomeAssistant(url=seeded_ha.url, token=seeded_ha.token,
                                     outage_hour=(start + timedelta(hours=1)).isoformat())
        started = time.monotonic()
        failed = dg.materialize(ASSETS, resources={"ha": flaky, "metadata_store": store, "influxdb": influx},
                                selection=dg.AssetSelection.assets(history.events),
                                tags=_range_tags(start, end), raise_on_error=False)
        assert not failed.success
        failures = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failures, "the events step should have failed"
        message = failures[-1].step_failure_data.error.to_string()
        assert "InfluxDB" in message and server.url.split("//")[1] in message
        print(f"outage failure after {time.monotonic() - started:.0f}s: {message[:300]}")
    finally:
        if _OUTAGE["server"] is not None:
            _OUTAGE["server"].stop()
        _OUTAGE["server"] = None

    healed_server = start_influxdb(tmp_path / "influx")
    try:
        influx = InfluxDBResource(url=healed_server.url, api_version=1)
        healed = dg.materialize(ASSETS, resources={"ha": ha, "metadata_store": store, "influxdb": influx},
                                selection=dg.AssetSelection.assets(history.events),
                                tags=_range_tags(start, end))
        assert healed.success
        assert _count(influx, "events", start, end) == expected
    finally:
        healed_server.stop()


def test_archived_hours_survive_a_purge_of_has_recorder(seeded_ha, store, influx, window):
    """HA keeps about 10 days; re-running an archived partition after its recorder purged the
    hours must keep the archive, not replace it with the nothing HA now returns. Runs last in
    this module: it purges the seeded HA's recorder."""
    _, end = window
    start = end - timedelta(hours=3)
    ha = HomeAssistantResource(url=seeded_ha.url, token=seeded_ha.token)
    resources = {"ha": ha, "metadata_store": store, "influxdb": influx}
    selection = dg.AssetSelection.assets(history.events)
    with dg.instance_for_test() as instance:
        assert dg.materialize(ASSETS, resources=resources, instance=instance, selection=INVENTORY).success
        assert dg.materialize(ASSETS, resources=resources, instance=instance, selection=selection,
                              tags=_range_tags(start, end)).success
        archived = _count(influx, "events", start, end)
        assert archived == _ha_rows(seeded_ha, start, end) > 0

        with ha.client() as client:
            client.call_service("recorder", "purge", {"keep_days": 0})
        deadline = time.monotonic() + 60
        while _ha_rows(seeded_ha, start, end) > 0:
            assert time.monotonic() < deadline, "HA's recorder did not purge the seeded hours"
            time.sleep(0.5)

        again = dg.materialize(ASSETS, resources=resources, instance=instance, selection=selection,
                               tags=_range_tags(start, end))
        assert again.success
        assert _count(influx, "events", start, end) == archived
        metadata = again.asset_materializations_for_node("influxdb__events")[-1].metadata
        assert metadata["hours_with_kept_points"].value == 3 and metadata["points_removed"].value == 0
        assert metadata["points_kept_from_archive"].value == archived
        assert all(e.passed for e in again.get_asset_check_evaluations())
