"""sync(): inserts, updates, removals, revivals and the change log, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ha_pipeline.metadata import InvalidSnapshotError, MetadataStore
from ha_pipeline_tests.test_metadata.home import Rows, by_type, entity, find
from ha_pipeline_tests.testbed.homeassistant import RealHomeAssistant

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)


def test_first_sync_stores_exactly_the_snapshot(store: MetadataStore, home: Rows) -> None:
    result = store.sync(home, now=T0)

    assert result.added == {"areas": 3, "config_entries": 2, "devices": 3, "entities": 5}
    assert store.counts()["entities"] == 5
    assert {e["entity_id"] for e in store.entities()} == {e["entity_id"] for e in home["entities"]}
    assert len(result.changes) == 13 and {c["change_type"] for c in result.changes} == {"added"}
    # 13 inventory rows + 3 device links + 13 change rows
    assert result.rows_written == 29
    therm = store.device("therm")
    assert therm["via_device_id"] == "hub" and therm["config_entries"] == ["e1"]
    assert therm["identifiers"] == [["peer_home", "therm"], ["zigbee", 42]]
    assert therm["first_seen"] == T0 and therm["removed_at"] is None
    assert store.fk_violations() == []


def test_unchanged_snapshot_writes_nothing(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    before = store.counts()
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement.split(None, 1)[0].upper())

    sa.event.listen(store.engine, "before_cursor_execute", record)
    result = store.sync(home, now=T1)
    sa.event.remove(store.engine, "before_cursor_execute", record)

    assert statements and not {"INSERT", "UPDATE", "DELETE"} & set(statements)
    assert result.rows_written == 0 and result.changes == []
    assert sum(result.unchanged.values()) == 13
    assert store.counts() == before
    # last_seen is the time of the last write, so an unchanged sync leaves it alone.
    assert store.device("therm")["last_seen"] == T0


def test_identifier_order_is_not_a_change(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    home["devices"][0]["identifiers"].reverse()
    home["devices"][0]["config_entries"] = ["e1", "e1"]

    assert store.sync(home, now=T1).rows_written == 0


def test_rename_move_and_disable_are_logged_by_kind(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    therm = find(home["devices"], "id", "therm")
    therm["name_by_user"] = "Kitchen thermometer"
    therm["area_id"] = "garden"
    therm["sw_version"] = "1.1"
    find(home["entities"], "entity_id", "sensor.hub_uptime")["disabled_by"] = "user"

    result = store.sync(home, now=T1)
    changes = by_type(result.changes)

    renamed = changes[("devices", "therm", "renamed")]
    assert renamed["old_values"] == {"name_by_user": None} and renamed["new_values"] == {"name_by_user": "Kitchen thermometer"}
    moved = changes[("devices", "therm", "area_changed")]
    assert moved["old_values"] == {"area_id": "kitchen"} and moved["new_values"] == {"area_id": "garden"}
    assert changes[("devices", "therm", "updated")]["new_values"] == {"sw_version": "1.1"}
    # The thermometer's entities follow their device to the garden (effective area).
    for eid in ("sensor.kitchen_temperature", "sensor.kitchen_humidity"):
        assert changes[("entities", eid, "area_changed")]["new_values"] == {"area_id": "garden"}
        assert store.entity(eid)["area_id"] == "garden"
    assert changes[("entities", "sensor.hub_uptime", "disabled")]["new_values"] == {"disabled_by": "user"}
    assert len(result.changes) == 6
    assert result.changed == {"areas": 0, "config_entries": 0, "devices": 1, "entities": 3}
    assert store.device("therm")["last_seen"] == T1 and store.device("therm")["first_seen"] == T0
    # The change log in the database holds the same rows.
    logged = store.registry_changes(since=T1)
    assert {(c["table_name"], c["object_id"], c["change_type"]) for c in logged} == set(changes)

    find(home["entities"], "entity_id", "sensor.hub_uptime")["disabled_by"] = None
    result = store.sync(home, now=T2)
    assert [c["change_type"] for c in result.changes] == ["enabled"]


def test_entity_area_override_wins_over_device_area(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    lamp = store.entity("light.garden_lamp")
    assert lamp["area_id"] == "kitchen" and lamp["own_area_id"] == "kitchen"
    assert store.entity("sensor.kitchen_temperature")["own_area_id"] is None


def test_removed_rows_are_kept_and_revived(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    removed = [e for e in home["entities"] if e["entity_id"] == "sensor.kitchen_humidity"]
    home["entities"] = [e for e in home["entities"] if e["entity_id"] != "sensor.kitchen_humidity"]

    result = store.sync(home, now=T1)

    assert result.removed["entities"] == 1
    change = by_type(result.changes)[("entities", "sensor.kitchen_humidity", "removed")]
    assert change["old_values"]["device_class"] == "humidity" and change["new_values"] is None
    row = store.entity("sensor.kitchen_humidity")
    assert row is not None and row["removed_at"] == T1
    assert store.counts()["entities"] == 4
    assert "sensor.kitchen_humidity" not in {e["entity_id"] for e in store.entities()}
    assert "sensor.kitchen_humidity" in {e["entity_id"] for e in store.entities(include_removed=True)}

    home["entities"] += removed
    result = store.sync(home, now=T2)

    assert result.revived["entities"] == 1 and result.added["entities"] == 0
    change = by_type(result.changes)[("entities", "sensor.kitchen_humidity", "added")]
    assert change["old_values"]["removed_at"].startswith("2026-01-01")
    row = store.entity("sensor.kitchen_humidity")
    assert row["removed_at"] is None and row["first_seen"] == T0 and row["last_seen"] == T2


def test_removed_device_stays_as_target_of_its_entities(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    home["devices"] = [d for d in home["devices"] if d["id"] != "lamp"]

    result = store.sync(home, now=T1)

    assert result.removed["devices"] == 1 and result.warnings == []
    assert store.entity("light.garden_lamp")["device_id"] == "lamp"
    assert [r["entity_id"] for r in store.entities_with_removed_device()] == ["light.garden_lamp"]
    assert store.fk_violations() == []
    assert store.devices(include_removed=True)[1]["device_id"] == "lamp"


def test_dangling_references_are_nulled_with_a_warning(store: MetadataStore, home: Rows) -> None:
    home["devices"].append({**home["devices"][0], "id": "ghost_child", "area_id": "attic", "via_device_id": "nobody",
                            "config_entries": ["e1", "no_such_entry"]})
    home["entities"].append(entity("sensor.orphan", "no_such_device", "e1", area_id="cellar"))

    result = store.sync(home, now=T0)

    child = store.device("ghost_child")
    assert child["area_id"] is None and child["via_device_id"] is None and child["config_entries"] == ["e1"]
    orphan = store.entity("sensor.orphan")
    assert orphan["device_id"] is None and orphan["area_id"] is None
    fields = sorted((w["record_id"], w["field"]) for w in result.warnings)
    assert fields == [("ghost_child", "area_id"), ("ghost_child", "config_entries"), ("ghost_child", "via_device_id"),
                      ("sensor.orphan", "area_id"), ("sensor.orphan", "device_id")]
    reasons = {(w["record_id"], w["field"]): w["reason"] for w in result.warnings}
    assert reasons[("sensor.orphan", "area_id")] == "area 'cellar' is not in HA's area registry; stored as none"
    assert store.fk_violations() == []


def test_config_entry_links_follow_the_device(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    find(home["devices"], "id", "lamp")["config_entries"] = ["e1", "e2"]

    result = store.sync(home, now=T1)

    change = by_type(result.changes)[("devices", "lamp", "updated")]
    assert change["old_values"] == {"config_entries": ["e2"]}
    assert change["new_values"] == {"config_entries": ["e1", "e2"]}
    assert store.device("lamp")["config_entries"] == ["e1", "e2"]
    assert {d["device_id"] for d in store.devices(integration="peer_home")} == {"hub", "therm", "lamp"}


def test_bad_records_are_rejected_and_the_rest_stored(store: MetadataStore, home: Rows) -> None:
    odd_ids = ['sensor.with"quote', "sensor.with,comma", "sensor.with space", "sensor.température", "sensor.it's"]
    home["entities"] += [{**home["entities"][0], "entity_id": odd, "id": f"odd{i}"} for i, odd in enumerate(odd_ids)]
    bad_entities = [
        {**home["entities"][0], "entity_id": None},
        {**home["entities"][0], "entity_id": 17},
        "not a record",
        {**home["entities"][0], "name": "x" * 10_240, "entity_id": "sensor.long_name"},
        {**home["entities"][0], "has_entity_name": "yes", "entity_id": "sensor.bad_bool"},
        {**home["entities"][0], "name": "nul\x00byte", "entity_id": "sensor.nul_name"},
        {**home["entities"][0], "original_name": "half \ud800 pair", "entity_id": "sensor.surrogate"},
        dict(home["entities"][0]),  # duplicate id: the first one is kept
    ]
    home["entities"] += bad_entities
    home["devices"] += [
        {**home["devices"][0], "id": ""},
        {**home["devices"][0], "id": "bad_types", "manufacturer": 42},
        {**home["devices"][0], "id": "bad_ids", "identifiers": "peer_home:x"},
        {**home["devices"][0], "id": "bad_json", "identifiers": [["peer_home", "\udc80"]]},
    ]
    home["areas"].append({"area_id": "unicode", "name": "Küche 🍳", "aliases": ["キッチン"], "picture": None})

    result = store.sync(home, now=T0)

    # Odd entity ids are stored (SQL holds any text) with a warning; real rejects are counted.
    assert store.counts()["entities"] == 5 + len(odd_ids) and store.counts()["devices"] == 3
    assert {e["entity_id"] for e in store.entities()} >= set(odd_ids)
    assert store.entity("sensor.it's")["entity_id"] == "sensor.it's"
    warned = {w["record_id"]: w["reason"] for w in result.warnings if w["kind"] == "entities"}
    assert all("not a valid HA entity id" in warned[odd] for odd in odd_ids)
    assert store.area("unicode")["aliases"] == ["キッチン"] and store.area("unicode")["name"] == "Küche 🍳"
    assert len(result.rejects) == len(bad_entities) + 4
    reasons = {(r["kind"], r["record_id"]): r["reason"] for r in result.rejects}
    assert ("entities", "sensor.with space") not in reasons
    assert reasons[("entities", "sensor.long_name")] == "is 10240 characters long; the limit is 1024"
    assert reasons[("entities", "sensor.bad_bool")] == "must be true or false, got str"
    assert "NUL character" in reasons[("entities", "sensor.nul_name")]
    assert "lone surrogate" in reasons[("entities", "sensor.surrogate")]
    assert reasons[("entities", "sensor.kitchen_temperature")] == "duplicate id; the first record was kept"
    assert reasons[("entities", None)] in ("missing id", "expected an object, got str")
    assert reasons[("entities", "17")] == "id must be a string, got int"
    assert reasons[("devices", "bad_types")] == "must be a string, got int"
    assert reasons[("devices", "bad_ids")] == "must be a list, got str"
    assert reasons[("devices", "bad_json")] == "contains invalid unicode (a lone surrogate)"
    # The duplicate did not overwrite the first record.
    assert store.entity("sensor.kitchen_temperature")["unit_of_measurement"] == "°C"


def test_a_rejected_record_is_not_a_removal(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    find(home["devices"], "id", "lamp")["manufacturer"] = 42

    result = store.sync(home, now=T1)

    assert [r["record_id"] for r in result.rejects] == ["lamp"]
    assert result.removed["devices"] == 0 and result.rows_written == 0
    assert store.device("lamp")["manufacturer"] == "Signify" and store.device("lamp")["removed_at"] is None


@pytest.mark.parametrize("rows", [None, [], {"areas": []}, {"areas": [], "devices": [], "entities": [],
                                                              "config_entries": "nope"}])
def test_a_snapshot_without_all_four_lists_is_refused(store: MetadataStore, home: Rows, rows: object) -> None:
    store.sync(home, now=T0)

    with pytest.raises(InvalidSnapshotError, match="nothing was written|dict of lists"):
        store.sync(rows, now=T1)  # type: ignore[arg-type]

    assert store.counts()["entities"] == 5


def test_sync_is_one_transaction(store: MetadataStore, home: Rows, monkeypatch: pytest.MonkeyPatch) -> None:
    from ha_pipeline.metadata import sync as sync_module

    store.sync(home, now=T0)
    before = store.counts()
    home["devices"] = home["devices"][:1]
    original = sync_module._Bulk.insert

    def failing_insert(self, tbl, names, rows):  # type: ignore[no-untyped-def]
        if tbl.name == "registry_changes":
            raise RuntimeError("disk full")
        return original(self, tbl, names, rows)

    monkeypatch.setattr(sync_module._Bulk, "insert", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        store.sync(home, now=T1)

    assert store.counts() == before
    assert store.device("lamp")["removed_at"] is None


def test_registries_of_a_real_ha_go_in_whole(store: MetadataStore, real_ha: RealHomeAssistant) -> None:
    """The test bed HA 2024.1.6's own registries go in whole, with FKs intact."""
    rows = {
        "areas": real_ha.ws_command("config/area_registry/list"),
        "devices": real_ha.ws_command("config/device_registry/list"),
        "entities": real_ha.ws_command("config/entity_registry/list"),
        "config_entries": real_ha.ws_command("config_entries/get"),
    }
    assert all(rows.values())
    outcome = store.sync(rows, now=T0)

    stored = {k: outcome.added[k] for k in rows}
    assert stored == {k: len(v) for k, v in rows.items()}
    assert outcome.rejects == []
    assert store.fk_violations() == []
    assert store.sync(rows, now=T1).rows_written == 0
