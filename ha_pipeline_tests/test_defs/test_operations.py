"""Retention job, storage report and the events partition check, against a real InfluxDB 1.x."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from ha_pipeline.defs import operations
from ha_pipeline.defs.resources import InfluxDBResource, MetadataStoreResource
from ha_pipeline.metadata import tables

BUCKET_ENV = {
    "events": "INFLUXDB_BUCKET_EVENTS",
    "events_hourly": "INFLUXDB_BUCKET_EVENTS_HOURLY",
    "events_daily": "INFLUXDB_BUCKET_EVENTS_DAILY",
    "events_monthly": "INFLUXDB_BUCKET_EVENTS_MONTHLY",
    "devices": "INFLUXDB_BUCKET_DEVICES",
    "entities": "INFLUXDB_BUCKET_ENTITIES",
}


def influxql(url: str, q: str, db: str | None = None) -> list[dict]:
    """Run InfluxQL directly (not through the backend under test); raise on any error."""
    params = {"q": q, **({"db": db} if db else {})}
    response = requests.post(f"{url}/query", params=params, timeout=30)
    response.raise_for_status()
    results = response.json()["results"]
    errors = [r["error"] for r in results if "error" in r]
    assert not errors, errors
    return results


def rows(result: dict) -> list[dict]:
    return [dict(zip(s["columns"], v)) for s in result.get("series", []) for v in s["values"]]


@pytest.fixture
def buckets(monkeypatch) -> dict[str, str]:
    """Unique bucket names for this test on the shared server, set through the env overrides."""
    suffix = uuid.uuid4().hex[:8]
    names = {}
    for key, env in BUCKET_ENV.items():
        names[key] = f"t{suffix}_{key}"
        monkeypatch.setenv(env, names[key])
    return names


@pytest.fixture
def resources(influxdb_server, tmp_path) -> dict[str, dg.ConfigurableResource]:
    return {
        "influxdb": InfluxDBResource(url=influxdb_server.url, api_version="1"),
        "metadata_store": MetadataStoreResource(db_url=f"sqlite:///{tmp_path / 'meta.db'}"),
    }


def run_retention(resources, run_config=None) -> dg.ExecuteInProcessResult:
    result = operations.retention_job.execute_in_process(resources=resources, run_config=run_config or {})
    assert result.success
    return result


def step_metadata(result: dg.ExecuteInProcessResult, step: str) -> dict:
    [event] = [e for e in result.events_for_node(step) if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


def default_rp(url: str, db: str) -> dict:
    [rp] = [r for r in rows(influxql(url, f'SHOW RETENTION POLICIES ON "{db}"')[0]) if r["default"]]
    return rp


def test_definitions_load_with_the_shared_resources():
    from ha_pipeline.defs.resources import default_resources

    defs = dg.Definitions.merge(operations.defs, dg.Definitions(resources=default_resources()))
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("retention_job") and defs.resolve_job_def("storage_report_job")
    assert defs.resolve_schedule_def("retention_schedule").job_name == "retention_job"
    assert defs.resolve_schedule_def("storage_report_schedule").job_name == "storage_report_job"


def test_latest_expected_hour_allows_the_grace_period():
    at = datetime(2026, 3, 1, 10, 20, tzinfo=timezone.utc)
    assert operations.latest_expected_hour(at) == "2026-03-01-08:00"  # 09:00-10:00 is not due until 10:30
    assert operations.latest_expected_hour(at + timedelta(minutes=15)) == "2026-03-01-09:00"


def test_partition_check_fails_until_the_latest_hour_is_materialised():
    instance = dg.DagsterInstance.ephemeral()

    @dg.asset(key=operations.EVENTS_KEY, partitions_def=operations.hourly_partitions)
    def fake_events() -> None:
        return None

    def run_check():
        result = dg.materialize([fake_events, operations.latest_hour_loaded], instance=instance,
                                selection=dg.AssetSelection.checks(operations.latest_hour_loaded))
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation

    assert run_check().passed is False
    expected = operations.latest_expected_hour(datetime.now(timezone.utc))
    dg.materialize([fake_events], instance=instance, partition_key=expected)
    evaluation = run_check()
    assert evaluation.passed is True
    assert evaluation.metadata["expected_partition"].value == expected


@pytest.mark.real_influx
def test_retention_job_creates_then_fixes_a_hand_changed_retention(influxdb_server, buckets, resources):
    first = step_metadata(run_retention(resources), "enforce_bucket_retention")
    assert {first[f"bucket/{name}"] for name in buckets.values()} == {"created"}
    assert first["buckets_created"] == 6
    # monthly summaries are kept forever
    assert default_rp(influxdb_server.url, buckets["events_monthly"])["duration"] == "0s"

    url, db = influxdb_server.url, buckets["events_hourly"]
    rp = default_rp(url, db)
    assert rp["duration"] == "17520h0m0s"  # 730 d
    influxql(url, f'ALTER RETENTION POLICY "{rp["name"]}" ON "{db}" DURATION 30d')
    assert default_rp(url, db)["duration"] == "720h0m0s"

    second = step_metadata(run_retention(resources), "enforce_bucket_retention")
    assert second[f"bucket/{db}"] == "fixed"
    assert second["buckets_fixed"] == 1 and second["buckets_unchanged"] == 5
    assert default_rp(url, db)["duration"] == "17520h0m0s"


@pytest.mark.real_influx
def test_retention_job_prunes_old_registry_changes_and_keeps_recent(buckets, resources):
    store = resources["metadata_store"].store()
    now = datetime.now(timezone.utc)
    with store.engine.begin() as conn:
        for age_days, object_id in [(400, "old.a"), (366, "old.b"), (364, "recent.a"), (1, "recent.b")]:
            conn.execute(
                sa.insert(tables.registry_changes).values(
                    changed_at=now - timedelta(days=age_days),
                    table_name="entities",
                    object_id=object_id,
                    change_type="changed",
                )
            )
    result = run_retention(
        resources, {"ops": {"prune_sql_history": {"config": {"registry_changes_days": 365}}}}
    )
    meta = step_metadata(result, "prune_sql_history")
    assert meta["pruned/registry_changes"] == 2
    assert meta["registry_changes_days"] == 365
    with store.engine.connect() as conn:
        left = set(conn.execute(sa.select(tables.registry_changes.c.object_id)).scalars())
    assert left == {"recent.a", "recent.b"}


def write_lines(url: str, db: str, lines: list[str]) -> None:
    response = requests.post(f"{url}/write", params={"db": db, "precision": "s"}, data="\n".join(lines), timeout=60)
    assert response.status_code == 204, response.text


def internal_bytes(url: str, db: str) -> int | None:
    """The database's bytes on disk from `_internal` (summed over shards); None before a sample."""
    q = (
        'SELECT sum(b) FROM (SELECT last(diskBytes) AS b FROM "_internal".."shard" '
        f"WHERE time > now() - 1m AND \"database\" = '{db}' GROUP BY \"database\",\"retentionPolicy\",\"id\")"
    )
    try:
        found = rows(influxql(url, q)[0])
    except AssertionError:  # `_internal` does not exist until the first monitor sample
        return None
    return int(found[0]["sum"]) if found else None


def wait_for_stable_size(url: str, db: str, timeout: float = 90) -> int:
    """`_internal` samples every 10 s and the WAL is snapshotted to TSM after writes stop:
    wait until two samples agree, so the report and our direct query see the same size."""
    deadline = time.monotonic() + timeout
    previous = None
    while time.monotonic() < deadline:
        size = internal_bytes(url, db)
        if size and size == previous:
            return size
        previous = size
        time.sleep(10.5)
    raise AssertionError(f"size of {db} in _internal did not settle (last {previous})")


@pytest.mark.real_influx
def test_storage_report_matches_direct_queries(influxdb_server, buckets, resources):
    url = influxdb_server.url
    created = operations.retention_job.execute_in_process(resources=resources, op_selection=["enforce_bucket_retention"])
    assert created.success
    events_db = buckets["events"]
    now = int(time.time())
    lines = []
    # 20 entities; sensor.e0 changes every 10 s for a day (8640 events), the others every 10 min
    for i in range(20):
        step = 10 if i == 0 else 600
        for t in range(now - 86_000, now, step):
            lines.append(
                f"home_assistant_events,domain=sensor,entity_id=sensor.e{i} "
                f'state_value="{t % 97}",normalized_value={t % 97} {t}'
            )
    write_lines(url, events_db, lines)
    write_lines(url, buckets["events_hourly"], [f"hourly_events,entity_id=sensor.e{i} mean=1 {now - 3600}" for i in range(5)])
    # Daily rows are stamped at the start of their UTC day: yesterday's (counted) and the day before (not).
    midnight = now - now % 86_400
    write_lines(url, buckets["events_daily"], [f"daily_events,entity_id=sensor.e{i} mean=1 {midnight - 86_400}" for i in range(3)]
                + [f"daily_events,entity_id=sensor.e{i} mean=1 {midnight - 2 * 86_400}" for i in range(7)])
    wait_for_stable_size(url, events_db)

    result = dg.materialize([operations.storage_report], resources=resources)
    assert result.success
    [mat] = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in mat.materialization.metadata.items()}
    direct_bytes = internal_bytes(url, events_db)

    assert meta[f"{events_db}/bytes"] == pytest.approx(direct_bytes, rel=0.01)
    direct_series = len(rows(influxql(url, "SHOW SERIES", db=events_db)[0]))
    assert meta[f"{events_db}/series"] == direct_series == 20
    assert meta[f"{buckets['events_hourly']}/series"] == 5
    [count] = rows(influxql(url, "SELECT count(state_value) FROM home_assistant_events WHERE time > now() - 1d", db=events_db)[0])
    assert meta[f"{events_db}/points_per_day"] == count["count"] == len(lines)
    assert meta[f"{buckets['events_hourly']}/points_per_day"] == 5
    assert meta[f"{buckets['events_daily']}/points_per_day"] == 3

    [saved] = resources["metadata_store"].store().storage_reports()
    saved = operations._stored_report(saved)
    assert saved["top_entities"][0]["entity_id"] == "sensor.e0"
    assert saved["top_entities"][0]["events"] == 8600
    assert "sensor.e0" in saved["exclude_suggestion"]
    assert "| sensor.e0 |" in meta["report"]
    assert meta["chart"].startswith("![storage over time](data:image/png;base64,iVBOR")
    assert meta["sql_bytes"] > 0

    second = dg.materialize([operations.storage_report], resources=resources)
    [mat2] = second.get_asset_materialization_events()
    assert mat2.materialization.metadata["reports_in_history"].value == 1


@pytest.mark.real_influx
def test_storage_report_before_any_bucket_exists(buckets, resources):
    result = dg.materialize([operations.storage_report], resources=resources)
    [mat] = result.get_asset_materialization_events()
    meta = {k: v.value for k, v in mat.materialization.metadata.items()}
    assert {meta[f"{name}/bytes"] for name in buckets.values()} == {0}
    assert {meta[f"{name}/points_per_day"] for name in buckets.values()} == {0}
