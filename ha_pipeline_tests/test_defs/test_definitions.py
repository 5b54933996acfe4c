"""The code location loads, validates and exposes DESIGN.md's stable names."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ha_pipeline.definitions import defs

REPO = Path(__file__).resolve().parents[2]

PIPELINE_ASSETS = {
    "sqlite/areas",
    "sqlite/devices",
    "sqlite/entities",
    "sqlite/config_entries",
    "sqlite/registry_changes",
    "influxdb/device_snapshots",
    "influxdb/entity_snapshots",
    "influxdb/events",
    "influxdb/hourly_summaries",
    "influxdb/daily_summaries",
    "influxdb/monthly_summaries",
}
INFLUX_WRITERS = {key for key in PIPELINE_ASSETS if key.startswith("influxdb/")}


@pytest.fixture(scope="module")
def repo():
    return defs.get_repository_def()


@pytest.fixture(scope="module")
def asset_graph(repo):
    return repo.asset_graph


def _specs(asset_graph) -> dict[str, dg.AssetSpec]:
    specs = {}
    for assets_def in asset_graph.assets_defs:
        for spec in assets_def.specs:
            specs[spec.key.to_user_string()] = (spec, assets_def)
    return specs


def test_stable_asset_keys_exist(asset_graph):
    keys = {key.to_user_string() for key in asset_graph.get_all_asset_keys()}
    assert PIPELINE_ASSETS <= keys
    assert {"homeassistant/area_registry", "homeassistant/history"} <= keys


def test_lineage_starts_at_home_assistant(asset_graph):
    parents = asset_graph.get(dg.AssetKey(["sqlite", "devices"])).parent_keys
    assert dg.AssetKey(["homeassistant", "device_registry"]) in parents
    events_parents = asset_graph.get(dg.AssetKey(["influxdb", "events"])).parent_keys
    assert dg.AssetKey(["homeassistant", "history"]) in events_parents
    assert dg.AssetKey(["sqlite", "entities"]) in events_parents
    daily_parents = asset_graph.get(dg.AssetKey(["influxdb", "daily_summaries"])).parent_keys
    assert daily_parents == {dg.AssetKey(["influxdb", "hourly_summaries"])}


def test_every_pipeline_asset_is_documented_grouped_and_kinded(asset_graph):
    specs = _specs(asset_graph)
    for key in PIPELINE_ASSETS:
        spec, _ = specs[key]
        assert spec.description and len(spec.description) > 40, key
        assert spec.group_name not in (None, "default"), key
        assert spec.kinds, key


def test_writers_carry_pools_and_retries(asset_graph):
    specs = _specs(asset_graph)
    for key in PIPELINE_ASSETS:
        _, assets_def = specs[key]
        node = assets_def.node_def
        expected_pool = "influxdb" if key in INFLUX_WRITERS else "metadata"
        assert node.pool == expected_pool, key
        assert node.retry_policy is not None, key


def test_partitioned_history_backfills_in_day_sized_runs(asset_graph):
    specs = _specs(asset_graph)
    for key in ("influxdb/events", "influxdb/hourly_summaries"):
        _, assets_def = specs[key]
        assert isinstance(assets_def.partitions_def, dg.HourlyPartitionsDefinition)
        assert assets_def.backfill_policy.max_partitions_per_run == 24
    _, daily = specs["influxdb/daily_summaries"]
    assert isinstance(daily.partitions_def, dg.DailyPartitionsDefinition)
    _, monthly = specs["influxdb/monthly_summaries"]
    assert isinstance(monthly.partitions_def, dg.MonthlyPartitionsDefinition)
    assert monthly.partitions_def.timezone == daily.partitions_def.timezone
    assert specs["influxdb/events"][1].partitions_def.timezone == "UTC"


@pytest.mark.parametrize(
    ("key", "hours"),
    [("sqlite/devices", 24), ("influxdb/device_snapshots", 24), ("influxdb/entity_snapshots", 24),
     ("influxdb/events", 2), ("influxdb/hourly_summaries", 2), ("influxdb/daily_summaries", 26),
     ("influxdb/monthly_summaries", 32 * 24)],
)
def test_freshness_policies(asset_graph, key, hours):
    spec, _ = _specs(asset_graph)[key]
    assert spec.freshness_policy.fail_window.to_timedelta().total_seconds() == hours * 3600


def test_jobs_sensor_and_schedules(repo):
    assert {"discovery_job", "events_job", "daily_rollup_job", "monthly_rollup_job"} <= {
        j.name for j in repo.get_all_jobs()
    }
    assert repo.get_sensor_def("registry_change_sensor").job_name == "discovery_job"
    assert repo.get_sensor_def("registry_change_sensor").minimum_interval_seconds >= 60
    schedules = {s.name: s for s in repo.schedule_defs}
    assert schedules["events_schedule"].job_name == "events_job"
    assert schedules["daily_rollup_schedule"].job_name == "daily_rollup_job"
    assert schedules["monthly_rollup_schedule"].job_name == "monthly_rollup_job"
    assert schedules["discovery_schedule"].job_name == "discovery_job"


def test_secrets_are_env_vars_not_config():
    ha = defs.resources["ha"]
    assert isinstance(ha.token, dg.EnvVar) or "HA_TOKEN" in repr(ha.token)


def test_dagster_definitions_validate(tmp_path):
    # A bare environment: no HA_URL/HA_TOKEN/INFLUXDB_*; loading must not need them.
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path),
    }
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# What a run needs and loading the definitions must not pull in (issue 16): together about as
# long to import as dagster itself, paid by every webserver reload, sensor tick and run worker.
RUN_TIME_LIBRARIES = ["pandas", "numpy", "influxdb_client", "matplotlib", "sqlalchemy", "alembic", "websockets"]


def test_loading_the_definitions_imports_no_data_libraries():
    probe = (
        "import sys, ha_pipeline.definitions; "
        f"print(','.join(m for m in {RUN_TIME_LIBRARIES!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_jobs_run_their_assets_checks(repo):
    events_nodes = {n.name for n in repo.get_job("events_job").graph.node_defs}
    assert {"influxdb__events", "influxdb__hourly_summaries", "influxdb__events_events_match_ha_rows"} <= events_nodes
    daily_nodes = {n.name for n in repo.get_job("daily_rollup_job").graph.node_defs}
    assert "influxdb__daily_summaries_daily_mean_matches_hourly" in daily_nodes
    assert "influxdb__daily_summaries_time_zone_matches_ha" in daily_nodes
    monthly_nodes = {n.name for n in repo.get_job("monthly_rollup_job").graph.node_defs}
    assert {"influxdb__monthly_summaries_monthly_mean_matches_hourly",
            "influxdb__monthly_summaries_monthly_summaries_finite"} <= monthly_nodes
    discovery_nodes = {n.name for n in repo.get_job("discovery_job").graph.node_defs}
    assert {"discovery", "inventory_integrity", "influxdb__device_snapshots"} <= discovery_nodes


_PARTITION_ZONES = (
    "from ha_pipeline.defs.partitions import daily_partitions as d, hourly_partitions as h, monthly_partitions as m;"
    "print(d.timezone, m.timezone, h.timezone)"
)


@pytest.mark.parametrize(
    ("configured", "recorded", "expected"),
    [(None, None, "UTC UTC UTC"), (None, "Asia/Kolkata", "Asia/Kolkata Asia/Kolkata UTC"),
     ("America/New_York", "Asia/Kolkata", "America/New_York America/New_York UTC")],
)
def test_days_and_months_follow_the_home_time_zone(tmp_path, configured, recorded, expected):
    """HA_PIPELINE_TIME_ZONE, else the zone the last discovery recorded, else UTC; hours stay UTC."""
    from ha_pipeline.timeseries.calendar import record_ha_time_zone

    if recorded:
        record_ha_time_zone(recorded, tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HA_PIPELINE_DATA_DIR": str(tmp_path)}
    if configured:
        env["HA_PIPELINE_TIME_ZONE"] = configured
    result = subprocess.run([sys.executable, "-c", _PARTITION_ZONES], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == expected


def test_an_invalid_time_zone_is_one_clear_sentence(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HA_PIPELINE_DATA_DIR": str(tmp_path),
           "HA_PIPELINE_TIME_ZONE": "Europe/Amsterdm"}
    result = subprocess.run([sys.executable, "-c", _PARTITION_ZONES], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert ("TimeZoneError: HA_PIPELINE_TIME_ZONE 'Europe/Amsterdm' is not a time zone name: use an IANA "
            "name such as 'Europe/Amsterdam'") in result.stderr
