"""`discovery_job` against the real Home Assistant 2024.1.6 with HA's own `demo` integration.

The demo reuses unique ids across domains (`button.push` and `event.push_button_press` are both
`demo`/`push`), as many integrations do: HA keys entities by (domain, platform, unique_id), and
so must the inventory's blocking checks, or a stock HA never gets past them.
"""

import dagster as dg
import pytest

from ha_pipeline.defs import checks, jobs
from ha_pipeline.defs.assets import inventory, snapshots
from ha_pipeline.defs.resources import HomeAssistantResource, InfluxDBResource, MetadataStoreResource

pytestmark = [pytest.mark.real_ha, pytest.mark.real_influx]


@pytest.fixture
def bucket_env(monkeypatch):
    for key in ("DEVICES", "ENTITIES"):
        monkeypatch.setenv(f"INFLUXDB_BUCKET_{key}", f"it_discovery_{key.lower()}")


def test_discovery_job_succeeds_on_a_stock_ha_with_all_checks_green(real_ha, influxdb_server, bucket_env, tmp_path):
    registry = real_ha.ws_command("config/entity_registry/list")
    shared = sorted(e["entity_id"] for e in registry if (e["platform"], e["unique_id"]) == ("demo", "push"))
    assert shared == ["button.push", "event.push_button_press"], "the test bed should load HA's demo"

    defs = dg.Definitions(
        assets=[*inventory.ha_registries, inventory.discovery, snapshots.device_snapshots, snapshots.entity_snapshots],
        asset_checks=[checks.inventory_integrity, checks.entities_with_removed_device],
        jobs=[jobs.discovery_job],
        resources={
            "ha": HomeAssistantResource(url=real_ha.url, token=real_ha.token),
            "metadata_store": MetadataStoreResource(db_url=f"sqlite:///{tmp_path / 'ha.db'}"),
            "influxdb": InfluxDBResource(url=influxdb_server.url, api_version=1),
        },
    )
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("discovery_job").execute_in_process(instance=instance, raise_on_error=False)

    assert result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"influxdb/device_snapshots", "influxdb/entity_snapshots", "sqlite/entities"} <= materialized
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert len(evaluations) == 11
    assert [key for key, e in evaluations.items() if not e.passed] == []
    stored = MetadataStoreResource(db_url=f"sqlite:///{tmp_path / 'ha.db'}").store()
    assert {e["entity_id"] for e in stored.entities()} == {e["entity_id"] for e in registry}
