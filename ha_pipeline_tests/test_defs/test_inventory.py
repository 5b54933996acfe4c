"""Discovery stores the simulator's registries; the inventory checks gate the result."""

import dagster as dg

from ha_pipeline.defs import checks
from ha_pipeline.defs.assets import inventory
from ha_pipeline.timeseries.calendar import ha_time_zone, home_time_zone


def _discover(simulator_ha, sqlite_store, instance=None):
    return dg.materialize(
        [*inventory.ha_registries, inventory.discovery, checks.inventory_integrity, checks.entities_with_removed_device],
        resources={"ha": simulator_ha, "metadata_store": sqlite_store},
        instance=instance,
        raise_on_error=False,
    )


def _evaluations(result) -> dict:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def _metadata(result, key: str) -> dict:
    [event] = [
        m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == key
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_discovery_stores_the_registries_and_checks_pass(simulator, simulator_ha, sqlite_store):
    with dg.instance_for_test() as instance:
        result = _discover(simulator_ha, sqlite_store, instance)
        assert "discovery" in {event.step_key for event in result.get_step_success_events()}
        assert len(result.get_asset_materialization_events()) == 5
        with simulator_ha.client() as client:
            snapshot = client.registry_snapshot()
        store = sqlite_store.store()
        assert {d["device_id"] for d in store.devices()} == {d.id for d in snapshot.devices}
        assert {e["entity_id"] for e in store.entities()} == {e.entity_id for e in snapshot.entities}
        for table in ("areas", "devices", "entities", "config_entries"):
            metadata = _metadata(result, f"sqlite/{table}")
            assert metadata["row_count"] == metadata["ha_count"] == len(getattr(snapshot, table)) > 0
            assert metadata["added"] == metadata["row_count"]
        changes = _metadata(result, "sqlite/registry_changes")
        assert changes["changes_written"] > 0
        assert "| table | id | change |" in changes["preview"]
        evaluations = _evaluations(result)
        assert evaluations[("sqlite/entities", "foreign_keys_valid")].passed
        assert evaluations[("sqlite/devices", "row_count_matches_ha")].passed
        assert evaluations[("sqlite/entities", "row_count_matches_ha")].passed
        # HA forbids two entities with one domain, platform and unique_id, and so does the simulator.
        assert [d for d in store.duplicate_ids() if d["table"] == "entities"] == []
        dupes_eval = evaluations[("sqlite/entities", "no_duplicate_ids")]
        assert dupes_eval.passed
        assert dupes_eval.metadata["duplicates"].value == 0

        again = _discover(simulator_ha, sqlite_store, instance)
        unchanged = _metadata(again, "sqlite/registry_changes")
        assert unchanged["changes_written"] == 0
        assert unchanged["rows_written"] == 0
        assert _metadata(again, "sqlite/devices")["added"] == 0


def test_row_count_check_fails_when_the_store_drifts_from_ha(simulator_ha, sqlite_store):
    with dg.instance_for_test() as instance:
        _discover(simulator_ha, sqlite_store, instance)
        store = sqlite_store.store()
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE devices SET removed_at = CURRENT_TIMESTAMP "
                "WHERE device_id = (SELECT min(device_id) FROM devices)"
            )
        result = dg.materialize(
            [*inventory.ha_registries, inventory.discovery, checks.inventory_integrity],
            resources={"ha": simulator_ha, "metadata_store": sqlite_store},
            instance=instance,
            selection=dg.AssetSelection.checks(checks.inventory_integrity),
            raise_on_error=False,
        )
        evaluations = _evaluations(result)
        assert not evaluations[("sqlite/devices", "row_count_matches_ha")].passed
        assert evaluations[("sqlite/areas", "row_count_matches_ha")].passed


def test_the_daily_discovery_compares_every_row_and_heals_hand_edits(simulator_ha, sqlite_store):
    from datetime import datetime, timezone

    from ha_pipeline.definitions import defs

    schedule = defs.get_repository_def().get_schedule_def("discovery_schedule")
    with dg.instance_for_test() as instance:
        [request] = schedule.evaluate_tick(
            dg.build_schedule_context(instance=instance,
                                      scheduled_execution_time=datetime(2026, 3, 1, 3, 15, tzinfo=timezone.utc))
        ).run_requests
        _discover(simulator_ha, sqlite_store, instance)
        store = sqlite_store.store()
        device_id = min(d["device_id"] for d in store.devices())
        true_name = store.device(device_id)["name"]
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE devices SET name = 'edited by hand' WHERE device_id = ?", (device_id,))

        # A sensor-triggered run (default config) trusts the quick check ...
        quick = _discover(simulator_ha, sqlite_store, instance)
        assert _metadata(quick, "sqlite/devices")["quick_checked"] is True
        assert store.device(device_id)["name"] == "edited by hand"
        # ... the scheduled run compares every row and puts the name back.
        full = dg.materialize(
            [*inventory.ha_registries, inventory.discovery],
            resources={"ha": simulator_ha, "metadata_store": sqlite_store},
            instance=instance,
            run_config=request.run_config,
        )
    assert _metadata(full, "sqlite/devices")["quick_checked"] is False
    assert _metadata(full, "sqlite/devices")["changed"] == 1
    assert store.device(device_id)["name"] == true_name


def test_discovery_records_ha_s_time_zone_for_the_home_s_calendar(simulator, simulator_ha, sqlite_store,
                                                                   tmp_path, monkeypatch):
    monkeypatch.setenv("HA_PIPELINE_DATA_DIR", str(tmp_path))
    with dg.instance_for_test() as instance:
        result = _discover(simulator_ha, sqlite_store, instance)
    assert result.success
    assert ha_time_zone(tmp_path) == simulator.home.time_zone == "Europe/Amsterdam"
    assert home_time_zone({"HA_PIPELINE_DATA_DIR": str(tmp_path)}) == "Europe/Amsterdam"
    assert _metadata(result, "sqlite/registry_changes")["ha_time_zone"] == "Europe/Amsterdam"
