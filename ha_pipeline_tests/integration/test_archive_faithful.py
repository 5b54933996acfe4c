"""The archive is faithful to a real home (issue 10): judged by HA's own recorder database.

A dedicated real HA (Europe/Amsterdam) holds 48 completed hours of back-filled history on round
timestamps (testbed/realistic_home.py). `influxdb/events` is backfilled for them; then, for every
entity and UTC hour, the points of the events measurement (read over raw InfluxQL) must equal the
rows of HA's `states` table (read from its SQLite file, read-only), to the microsecond.

Scope: every entity HA recorded a row for in the window, none excluded: the run's entity filter
is the default (archive everything), so the fetch must ask for each of them, including an
entity HA's registry no longer has and an entity whose id was renamed.

Then, for each fault of item 2, the hours are archived, counted, re-run with the fault (a real run:
the asset's own retry policy retries it, 20 s then 60 s later, as in production), counted
again (no hour may hold fewer points than before), and re-run without it (points = HA's rows).
The counts per fault are printed (run with -s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest

from ha_pipeline.defs.assets import history, inventory
from ha_pipeline.defs.resources import HomeAssistantResource, InfluxDBResource, MetadataStoreResource
from ha_pipeline_tests.integration.archive_faults import (
    FaultyHomeAssistant,
    TcpProxy,
    arm,
    fill_disk,
)
from ha_pipeline_tests.testbed import realistic_home as home
from ha_pipeline_tests.testbed.homeassistant import RealHomeAssistant
from ha_pipeline_tests.testbed.influxdb import InfluxServer, start_influxdb
from ha_pipeline_tests.testbed.recorder_db import (
    HOUR_US,
    RecorderDB,
    differences,
    influx_hour_counts,
    influx_points,
    per_hour,
    to_us,
    us_to_datetime,
)

pytestmark = [pytest.mark.real_ha, pytest.mark.real_influx, pytest.mark.usefixtures("live_dagster_instance")]

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENTS_DB = "faithful_events"
ASSETS = [*inventory.ha_registries, inventory.ha_history, inventory.discovery, history.events]
INVENTORY = dg.AssetSelection.assets(inventory.discovery)
EVENTS = dg.AssetSelection.assets(history.events)
FAULT_HOURS = 6  # the last hours of the window, re-run under each fault
FAULT_AFTER = 3  # the fault fires when the run fetches the 4th of them


@pytest.fixture(scope="module")
def window() -> tuple[datetime, datetime]:
    """The 48 completed UTC hours before now."""
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=48), end


@pytest.fixture(scope="module")
def bucket_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for key in ("EVENTS", "EVENTS_HOURLY", "EVENTS_DAILY", "DEVICES", "ENTITIES"):
            patch.setenv(f"INFLUXDB_BUCKET_{key}", f"faithful_{key.lower()}")
        yield


@pytest.fixture(scope="module")
def faithful(tmp_path_factory, window) -> Iterator[tuple[RealHomeAssistant, home.Seeded]]:
    """The real HA with the realistic home's history (one per module: it is changed by the tests)."""
    ha, seeded = home.start_realistic_ha(tmp_path_factory.mktemp("faithful_ha") / "config", *window)
    try:
        yield ha, seeded
    finally:
        ha.stop()


@pytest.fixture(scope="module")
def real(faithful) -> RealHomeAssistant:
    return faithful[0]


@pytest.fixture(scope="module")
def recorder(real) -> RecorderDB:
    return RecorderDB(real.config_dir / "home-assistant_v2.db")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> MetadataStoreResource:
    return MetadataStoreResource(db_url=f"sqlite:///{tmp_path_factory.mktemp('faithful_meta') / 'ha.db'}")


@pytest.fixture(scope="module")
def influx_url(influxdb_server, bucket_env) -> str:
    return influxdb_server.url


def _range_tags(start: datetime, end: datetime) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": start.strftime("%Y-%m-%d-%H:%M"),
        "dagster/asset_partition_range_end": (end - timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M"),
    }


def _resources(ha: HomeAssistantResource, store, influx_url: str) -> dict:
    return {"ha": ha, "metadata_store": store, "influxdb": InfluxDBResource(url=influx_url, api_version=1)}


def _ha(real: RealHomeAssistant) -> HomeAssistantResource:
    return HomeAssistantResource(url=real.url, token=real.token)


def _discover(real, store, influx_url) -> None:
    assert dg.materialize(ASSETS, selection=INVENTORY, resources=_resources(_ha(real), store, influx_url)).success


def _events(resources: dict, start: datetime, end: datetime, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(ASSETS, selection=EVENTS, resources=resources, tags=_range_tags(start, end), **kwargs)


def _backfill(real, store, influx_url, start: datetime, end: datetime) -> None:
    """`influxdb/events` for [start, end) as runs of at most 24 partitions (its backfill policy)."""
    while start < end:
        stop = min(end, start + timedelta(hours=24))
        result = _events(_resources(_ha(real), store, influx_url), start, stop, raise_on_error=False)
        assert result.success, _failure(result)
        start = stop


def _failure(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failures[-1].step_failure_data.error.to_string()[:2000] if failures else "(no step failure)"


def _hour(us: int) -> str:
    return us_to_datetime(us).strftime("%m-%d %H:00")


def _assert_points_are_has_rows(recorder: RecorderDB, influx_url: str, start: datetime, end: datetime) -> Counter:
    """Points per entity-hour = HA's rows, and every point is HA's row (time µs, state)."""
    expected = recorder.hour_counts(start, end)
    actual = influx_hour_counts(influx_url, EVENTS_DB, start, end)
    wrong = differences(expected, actual)
    assert not wrong, (
        f"{len(wrong)} entity-hour(s) differ from HA's recorder (expected, archived), first 15: "
        f"{dict(list(wrong.items())[:15])}"
    )
    rows, points = recorder.rows(start, end), influx_points(influx_url, EVENTS_DB, start, end)
    missing, extra = sorted(set(rows) - set(points)), sorted(set(points) - set(rows))
    assert not missing and not extra, f"rows not archived: {missing[:5]}; points HA has not: {extra[:5]}"
    return expected


def test_seeded_home_is_the_realistic_one(faithful, recorder, window):
    """The test bed itself: the history HA's database holds is the one the issue describes."""
    real, seeded = faithful
    start, end = window
    assert real.ws_command("get_config")["time_zone"] == "Europe/Amsterdam"
    rows = recorder.rows(start, end)
    on_the_hour = [r for r in rows if r.last_updated_us % HOUR_US == 0]
    on_quarters = [r for r in rows if r.last_updated_us % (HOUR_US // 4) == 0]
    assert len(on_the_hour) >= 3 * 48 and len(on_quarters) >= 8 * 48
    steady = [r for r in rows if r.entity_id == home.HUMIDITY]
    assert [(r.last_updated_us, r.state) for r in steady] == [(to_us(end - timedelta(hours=30)), "47.5")]
    meter = [float(r.state) for r in rows if r.entity_id == home.MAIN_ENERGY]
    drops = [(a, b) for a, b in zip(meter, meter[1:]) if b < a]
    assert any(b < 0.1 for _, b in drops) and any(abs(b - 0.9 * a) < 1e-9 for a, b in drops)
    print(f"\n[faithful] HA's recorder holds {len(rows)} rows of {len({r.entity_id for r in rows})} entities "
          f"in the 48 h; {len(on_the_hour)} exactly on an hour's start, {len(on_quarters)} on quarter hours")


def test_a_48_hour_backfill_equals_has_recorded_rows(real, recorder, store, influx_url, window):
    start, end = window
    _discover(real, store, influx_url)
    _backfill(real, store, influx_url, start, end)
    expected = _assert_points_are_has_rows(recorder, influx_url, start, end)
    print(f"\n[faithful] 48 h backfill: {sum(expected.values())} points = HA's rows over "
          f"{len(expected)} entity-hours of {len({e for e, _ in expected})} entities")


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def _plug_device(real) -> str:
    entity = next(e for e in real.ws_command("config/entity_registry/list") if e["entity_id"] == home.ODD_DEVICE_ENTITY)
    return entity["device_id"]


# --- item 2: faults ---------------------------------------------------------------------------


@pytest.fixture
def plain_names(real):
    """The odd names of the test above reset, so each fault test tests its own fault only."""
    def reset():
        real.ws_command("config/device_registry/update", device_id=_plug_device(real), name_by_user=None)
        real.ws_command("config/entity_registry/update", entity_id=home.ODD_NAMED_ENTITY, name=None)
    reset()
    yield
    reset()


@pytest.fixture
def fault_window(window) -> tuple[datetime, datetime, datetime]:
    _, end = window
    start = end - timedelta(hours=FAULT_HOURS)
    return start, end, start + timedelta(hours=FAULT_AFTER)


def _counts(url: str, start: datetime, end: datetime) -> Counter:
    return influx_hour_counts(url, EVENTS_DB, start, end)


def _archive_first(real, store, url: str, start: datetime, end: datetime) -> Counter:
    _discover(real, store, url)
    first = _events(_resources(_ha(real), store, url), start, end, raise_on_error=False)
    assert first.success, _failure(first)
    before = _counts(url, start, end)
    assert sum(before.values()) > 0
    return before


def _judge_fault(name: str, recorder, start, end, before: Counter, during: Counter, healed: Counter,
                 fault_run_ok: bool) -> None:
    """Print the counts per hour; assert no hour lost points and the healed run equals HA."""
    expected = recorder.hour_counts(start, end)
    b, d, h, e = per_hour(before), per_hour(during), per_hour(healed), per_hour(expected)
    hours = sorted(set(b) | set(e))
    print(f"\n[fault] {name}: fault run {'succeeded' if fault_run_ok else 'failed'}; points per hour "
          "(before / after the fault / after the re-run / HA's rows):")
    for hour in hours:
        print(f"[fault]   {_hour(hour)}Z  {b.get(hour, 0):4d} / {d.get(hour, 0):4d} / {h.get(hour, 0):4d} / {e.get(hour, 0):4d}")
    print(f"[fault]   total {sum(b.values())} / {sum(d.values())} / {sum(h.values())} / {sum(e.values())}")
    lost = {_hour(hour): (b[hour], d.get(hour, 0)) for hour in hours if d.get(hour, 0) < b.get(hour, 0)}
    assert not lost, f"{name}: hours left with fewer points than before the run (before, after): {lost}"
    lost_entities = {k: (n, during.get(k, 0)) for k, n in before.items() if during.get(k, 0) < n}
    assert not lost_entities, f"{name}: entity-hours that lost points (before, after): {dict(list(lost_entities.items())[:10])}"
    wrong = differences(expected, healed)
    assert not wrong, f"{name}: after the re-run, entity-hours differ from HA (expected, archived): {dict(list(wrong.items())[:10])}"


def _kill(server: InfluxServer) -> None:
    os.kill(server.pid, signal.SIGKILL)
    server.process.popen.wait(10)


def test_fault_influxdb_killed_mid_write(real, recorder, store, bucket_env, fault_window, tmp_path, plain_names):
    start, end, at = fault_window
    server = start_influxdb(tmp_path / "influx")
    try:
        before = _archive_first(real, store, server.url, start, end)
        arm("kill_influxdb", lambda: _kill(server))
        faulty = FaultyHomeAssistant(url=real.url, token=real.token, fault="kill_influxdb", fault_at=at.isoformat())
        failed = _events(_resources(faulty, store, server.url), start, end, raise_on_error=False)
        server.stop()
        server = start_influxdb(tmp_path / "influx")  # the same data and WAL, after a crash
        during = _counts(server.url, start, end)
        healed_run = _events(_resources(_ha(real), store, server.url), start, end, raise_on_error=False)
        assert healed_run.success, _failure(healed_run)
        healed = _counts(server.url, start, end)
    finally:
        server.stop()
    _judge_fault("InfluxDB killed mid-write", recorder, start, end, before, during, healed, failed.success)


def test_fault_disk_full_mid_write(real, recorder, store, bucket_env, fault_window, tmp_path, plain_names):
    start, end, at = fault_window
    base = tmp_path / "influx"
    base.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(base)], check=True)
    server = None
    try:
        server = start_influxdb(base)
        url = server.url
        before = _archive_first(real, store, url, start, end)
        filled = {}
        arm("disk_full", lambda: filled.setdefault("bytes", fill_disk(base)))
        faulty = FaultyHomeAssistant(url=real.url, token=real.token, fault="disk_full", fault_at=at.isoformat())
        failed = _events(_resources(faulty, store, url), start, end, raise_on_error=False)
        assert filled.get("bytes", 0) > 0, "the fault should have filled the disk"
        # as an operator would: free the disk, restart InfluxDB (its WAL writer keeps the error)
        (base / "filler").unlink()
        server.stop()
        server = start_influxdb(base)
        url = server.url
        during = _counts(url, start, end)
        healed_run = _events(_resources(_ha(real), store, url), start, end, raise_on_error=False)
        assert healed_run.success, _failure(healed_run)
        healed = _counts(url, start, end)
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["umount", str(base)], check=False)
    _judge_fault("disk full mid-write", recorder, start, end, before, during, healed, failed.success)


def test_fault_unwritable_tag_value(real, recorder, store, bucket_env, fault_window, tmp_path, plain_names):
    """A device renamed to a value line protocol cannot carry as it is (a newline, a trailing
    backslash), between two runs: the re-run must store it (encoded) and lose nothing."""
    start, end, _ = fault_window
    server = start_influxdb(tmp_path / "influx")
    try:
        before = _archive_first(real, store, server.url, start, end)
        real.ws_command("config/device_registry/update", device_id=_plug_device(real), name_by_user="Scanner\nD:\\")
        _discover(real, store, server.url)
        odd = _events(_resources(_ha(real), store, server.url), start, end, raise_on_error=False)
        during = _counts(server.url, start, end)
        odd_ok = odd.success
        real.ws_command("config/device_registry/update", device_id=_plug_device(real), name_by_user=None)
        _discover(real, store, server.url)
        healed_run = _events(_resources(_ha(real), store, server.url), start, end, raise_on_error=False)
        assert healed_run.success, _failure(healed_run)
        healed = _counts(server.url, start, end)
    finally:
        server.stop()
    _judge_fault("unwritable tag value (device 'Scanner\\nD:\\')", recorder, start, end, before, during, healed, odd_ok)
    assert odd_ok, f"a value HA accepts must not fail the hour: {_failure(odd)}"


def test_fault_ha_gone_mid_fetch(real, recorder, store, bucket_env, fault_window, tmp_path, plain_names):
    start, end, at = fault_window
    server = start_influxdb(tmp_path / "influx")
    port = int(real.url.rsplit(":", 1)[1])
    proxy = TcpProxy("127.0.0.1", port)
    try:
        before = _archive_first(real, store, server.url, start, end)
        arm("ha_gone", proxy.cut)
        faulty = FaultyHomeAssistant(url=proxy.url, token=real.token, fault="ha_gone", fault_at=at.isoformat(),
                                     retry_budget_seconds=2.0, connect_timeout=2.0)
        failed = _events(_resources(faulty, store, server.url), start, end, raise_on_error=False)
        assert proxy.cut_at is not None, "the fault should have cut HA off"
        during = _counts(server.url, start, end)
        healed_run = _events(_resources(_ha(real), store, server.url), start, end, raise_on_error=False)
        assert healed_run.success, _failure(healed_run)
        healed = _counts(server.url, start, end)
    finally:
        proxy.cut()
        server.stop()
    _judge_fault("HA gone mid-fetch", recorder, start, end, before, during, healed, failed.success)


def test_fault_run_process_killed_mid_write(real, recorder, store, bucket_env, fault_window, tmp_path, plain_names):
    start, end, at = fault_window
    server = start_influxdb(tmp_path / "influx")
    marker = tmp_path / "mid-write"
    try:
        before = _archive_first(real, store, server.url, start, end)
        env = {**os.environ, "FAULT_START": start.isoformat(), "FAULT_END": end.isoformat(),
               "FAULT_AT": at.isoformat(), "FAULT_MARKER": str(marker), "FAULT_HA_URL": real.url,
               "FAULT_HA_TOKEN": real.token, "FAULT_META_URL": store.db_url, "FAULT_INFLUX_URL": server.url,
               "DAGSTER_HOME": str(tmp_path)}
        child = subprocess.Popen([sys.executable, "-m", "ha_pipeline_tests.integration.archive_faults"],
                                 cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                 stdout=open(tmp_path / "run.log", "wb"), stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not marker.exists():
                assert child.poll() is None, f"the run ended before the fault: {(tmp_path / 'run.log').read_text()[-2000:]}"
                assert time.monotonic() < deadline, "the run did not reach the fault's hour"
                time.sleep(0.1)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(30)
        assert child.returncode == -signal.SIGKILL
        during = _counts(server.url, start, end)
        healed_run = _events(_resources(_ha(real), store, server.url), start, end, raise_on_error=False)
        assert healed_run.success, _failure(healed_run)
        healed = _counts(server.url, start, end)
    finally:
        server.stop()
    _judge_fault("run process SIGKILLed mid-write", recorder, start, end, before, during, healed, False)


# --- item 3: entities that left HA, renames, odd names (changes HA for the rest of the module) ---


def test_removed_renamed_and_odd_names_then_a_rerun_still_equals_ha(real, recorder, store, influx_url, window):
    """An entity removed, an entity id renamed, a device name ending in a backslash and an entity
    name with a newline, between two runs of the same 48 hours."""
    start, end = window
    old_id, new_id = home.RENAMED
    removed_rows = recorder.hour_counts(start, end, [home.REMOVED])
    assert sum(removed_rows.values()) > 0
    assert influx_hour_counts(influx_url, EVENTS_DB, start, end).get(next(iter(removed_rows))), \
        "the first run should have archived the entity to be removed"
    metadata_id = recorder.metadata_id(old_id)
    renamed_rows = sum(recorder.hour_counts(start, end, [old_id]).values())

    real.ws_command("config/entity_registry/remove", entity_id=home.REMOVED)
    real.ws_command("config/entity_registry/update", entity_id=old_id, new_entity_id=new_id)
    real.ws_command("config/device_registry/update", device_id=_plug_device(real), name_by_user=home.ODD_DEVICE_NAME)
    real.ws_command("config/entity_registry/update", entity_id=home.ODD_NAMED_ENTITY, name=home.ODD_ENTITY_NAME)
    # HA's recorder renames the states_meta row (the rows stay), asynchronously
    _wait_for(lambda: recorder.metadata_id(new_id) == metadata_id, "HA's recorder did not rename states_meta")
    assert recorder.metadata_id(old_id) is None
    assert sum(recorder.hour_counts(start, end, [new_id]).values()) == renamed_rows > 0
    assert recorder.hour_counts(start, end, [home.REMOVED]) == removed_rows, "HA keeps a removed entity's rows"
    devices = {d["id"]: d for d in real.ws_command("config/device_registry/list")}
    assert devices[_plug_device(real)]["name_by_user"] == home.ODD_DEVICE_NAME

    _discover(real, store, influx_url)
    _backfill(real, store, influx_url, start, end)
    archived = influx_hour_counts(influx_url, EVENTS_DB, start, end)
    assert {k: v for k, v in archived.items() if k[0] == home.REMOVED} == removed_rows, \
        "the removed entity's points must still be there"
    assert sum(v for k, v in archived.items() if k[0] == new_id) == renamed_rows
    assert not any(k[0] == old_id for k in archived), "HA no longer has rows under the old id"
    expected = _assert_points_are_has_rows(recorder, influx_url, start, end)
    print(f"\n[faithful] re-run after removal/rename/odd names: {sum(expected.values())} points = HA's rows; "
          f"removed {home.REMOVED}: {sum(removed_rows.values())} kept, renamed {old_id} -> {new_id}: {renamed_rows}")


def test_a_fresh_backfill_after_the_removal_still_archives_has_rows_of_it(real, recorder, store, bucket_env,
                                                                         window, tmp_path):
    """HA keeps a removed entity's rows until its purge: a backfill into an archive that never held
    the entity (a new InfluxDB, a lost bucket) must ask HA for them too (item 3)."""
    start, end = window
    assert home.REMOVED not in {e["entity_id"] for e in real.ws_command("config/entity_registry/list")}
    assert sum(recorder.hour_counts(start, end, [home.REMOVED]).values()) > 0
    server = start_influxdb(tmp_path / "influx")
    try:
        _discover(real, store, server.url)
        _backfill(real, store, server.url, start, end)
        expected = _assert_points_are_has_rows(recorder, server.url, start, end)
    finally:
        server.stop()
    print(f"\n[faithful] fresh 48 h backfill after the removal: {sum(expected.values())} points = HA's rows")
