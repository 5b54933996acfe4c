"""Entity-id renames, stateless entities and unusual names HA accepts, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ha_pipeline.metadata import MetadataStore
from ha_pipeline_tests.test_metadata.home import Rows, by_type, find

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
TEMP = "sensor.kitchen_temperature"


def _rename(home: Rows, old: str, new: str) -> dict:
    """What HA's ``config/entity_registry/update`` with ``new_entity_id`` does to the list item."""
    item = find(home["entities"], "entity_id", old)
    item["entity_id"] = new
    return item


def test_an_entity_id_change_is_one_change_and_keeps_the_row(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    _rename(home, TEMP, "sensor.kitchen_temp")

    result = store.sync(home, now=T1)

    assert [(c["object_id"], c["change_type"]) for c in result.changes] == [("sensor.kitchen_temp", "entity_id_changed")]
    change = result.changes[0]
    assert change["old_values"] == {"entity_id": TEMP}
    assert change["new_values"] == {"entity_id": "sensor.kitchen_temp", "registry_id": f"reg-{TEMP}"}
    assert result.added["entities"] == result.removed["entities"] == 0 and result.changed["entities"] == 1
    row = store.entity("sensor.kitchen_temp")
    assert row["first_seen"] == T0 and row["last_seen"] == T1 and row["removed_at"] is None
    assert row["registry_id"] == f"reg-{TEMP}" and row["unit_of_measurement"] == "°C"
    assert store.entity(TEMP) is None
    assert store.counts()["entities"] == 5 and store.fk_violations() == []
    assert store.registry_changes(table="entities", object_id="sensor.kitchen_temp") == [
        {**change, "id": store.registry_changes()[-1]["id"]}
    ]
    # Both ids find the whole history, the "added" row logged under the old id included.
    for eid in (TEMP, "sensor.kitchen_temp"):
        assert store.entity_ids_of(eid) == [TEMP, "sensor.kitchen_temp"]
        log = store.registry_changes(object_id=eid, follow_renames=True)
        assert [(c["object_id"], c["change_type"]) for c in log] == [
            (TEMP, "added"), ("sensor.kitchen_temp", "entity_id_changed")
        ]
    assert store.entity_renames() == [
        {"changed_at": T1, "registry_id": f"reg-{TEMP}", "old_entity_id": TEMP, "new_entity_id": "sensor.kitchen_temp"}
    ]
    assert store.entity_ids_of("sensor.hub_uptime") == ["sensor.hub_uptime"]
    # Stable: the same snapshot again writes nothing, also when every row is compared.
    assert store.sync(home, now=T2).rows_written == 0
    assert store.sync(home, now=T2, full_compare=True).rows_written == 0


def test_a_rename_with_other_changes_logs_both(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    _rename(home, TEMP, "sensor.kitchen_temp")["name"] = "Kitchen"

    changes = by_type(store.sync(home, now=T1).changes)

    assert set(changes) == {
        ("entities", "sensor.kitchen_temp", "entity_id_changed"), ("entities", "sensor.kitchen_temp", "renamed")
    }
    assert changes["entities", "sensor.kitchen_temp", "renamed"]["new_values"] == {"name": "Kitchen"}


def test_swapped_and_chained_ids_follow_their_registry_ids(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    hum, t2 = "sensor.kitchen_humidity", "sensor.t2"
    # A chain: temperature moves to a new id and humidity takes temperature's old one.
    _rename(home, TEMP, t2)
    _rename(home, hum, TEMP)

    result = store.sync(home, now=T1)

    assert sorted((c["old_values"]["entity_id"], c["object_id"], c["change_type"]) for c in result.changes) == [
        (hum, TEMP, "entity_id_changed"), (TEMP, t2, "entity_id_changed")
    ]
    assert store.entity(t2)["registry_id"] == f"reg-{TEMP}" and store.entity(t2)["first_seen"] == T0
    assert store.entity(TEMP)["registry_id"] == f"reg-{hum}" and store.entity(TEMP)["unit_of_measurement"] == "%"
    assert store.entity(hum) is None
    assert store.sync(home, now=T2).rows_written == 0

    # A swap.
    _rename(home, t2, "sensor.swap")
    _rename(home, TEMP, t2)
    _rename(home, "sensor.swap", TEMP)
    result = store.sync(home, now=T2)
    assert sorted((c["old_values"]["entity_id"], c["object_id"]) for c in result.changes) == [(TEMP, t2), (t2, TEMP)]
    assert store.entity(TEMP)["registry_id"] == f"reg-{TEMP}" and store.entity(t2)["registry_id"] == f"reg-{hum}"
    everything = store.entities(include_removed=True)
    assert len(everything) == 5 and store.counts()["entities"] == 5
    assert store.entity_ids_of(TEMP) == [TEMP, t2]
    assert store.entity_ids_of(t2) == [hum, TEMP, t2]


def test_a_rename_onto_the_id_of_a_removed_entity_takes_its_place(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    gone = find(home["entities"], "entity_id", "sensor.hub_uptime")
    home["entities"].remove(gone)
    store.sync(home, now=T1)  # sensor.hub_uptime is removed; its row stays
    _rename(home, TEMP, "sensor.hub_uptime")

    result = store.sync(home, now=T2)

    assert [(c["object_id"], c["change_type"]) for c in result.changes] == [("sensor.hub_uptime", "entity_id_changed")]
    row = store.entity("sensor.hub_uptime")
    assert row["registry_id"] == f"reg-{TEMP}" and row["first_seen"] == T0 and row["removed_at"] is None
    assert store.entity(TEMP) is None and store.counts()["entities"] == 4
    # The removed entity's record is still in its "removed" change row.
    removed = store.registry_changes(object_id="sensor.hub_uptime")
    assert [c["change_type"] for c in removed][:2] == ["added", "removed"]
    assert removed[1]["old_values"]["registry_id"] == "reg-sensor.hub_uptime"


def test_a_removed_entity_back_under_a_new_id_is_revived(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    item = find(home["entities"], "entity_id", TEMP)
    home["entities"].remove(item)
    store.sync(home, now=T1)
    item["entity_id"] = "sensor.kitchen_temp"
    home["entities"].append(item)

    result = store.sync(home, now=T2)

    assert [c["change_type"] for c in result.changes] == ["entity_id_changed", "added"]
    assert result.revived["entities"] == 1 and result.added["entities"] == 0
    row = store.entity("sensor.kitchen_temp")
    assert row["first_seen"] == T0 and row["removed_at"] is None


def test_no_rename_without_a_registry_id(store: MetadataStore, home: Rows) -> None:
    find(home["entities"], "entity_id", TEMP)["id"] = None
    store.sync(home, now=T0)
    _rename(home, TEMP, "sensor.kitchen_temp")

    changes = by_type(store.sync(home, now=T1).changes)

    assert set(changes) == {("entities", TEMP, "removed"), ("entities", "sensor.kitchen_temp", "added")}


def test_an_entity_without_a_state_keeps_its_unit_and_state_class(store: MetadataStore, home: Rows) -> None:
    for item in home["entities"]:
        item["has_state"] = True
    store.sync(home, now=T0)
    # Disabling the device: HA drops the entity's state, so the snapshot has no unit to read.
    item = find(home["entities"], "entity_id", TEMP)
    item.update(disabled_by="device", has_state=False, unit_of_measurement=None, state_class=None)

    result = store.sync(home, now=T1)

    assert [(c["change_type"], c["new_values"]) for c in result.changes] == [("disabled", {"disabled_by": "device"})]
    row = store.entity(TEMP)
    assert (row["unit_of_measurement"], row["state_class"]) == ("°C", "measurement")
    assert store.sync(home, now=T2).rows_written == 0
    assert store.sync(home, now=T2, full_compare=True).rows_written == 0

    # A value HA does give still wins, without a state too.
    item["unit_of_measurement"] = "K"
    store.sync(home, now=T2)
    assert store.entity(TEMP)["unit_of_measurement"] == "K" and store.entity(TEMP)["state_class"] == "measurement"

    # An entity that has a state without a unit has no unit.
    item.update(disabled_by=None, has_state=True, unit_of_measurement=None, state_class=None)
    store.sync(home, now=T2 + timedelta(hours=1))
    assert store.entity(TEMP)["unit_of_measurement"] is None and store.entity(TEMP)["state_class"] is None


def test_entity_tags_carry_the_registry_id_and_can_include_removed(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    home["entities"] = [e for e in home["entities"] if e["entity_id"] != "sensor.hub_uptime"]
    store.sync(home, now=T1)

    current = {t["entity_id"]: t for t in store.entity_tags()}
    everything = {t["entity_id"]: t for t in store.entity_tags(include_removed=True)}

    assert "sensor.hub_uptime" not in current and set(everything) == set(current) | {"sensor.hub_uptime"}
    gone = everything["sensor.hub_uptime"]
    assert gone["registry_id"] == "reg-sensor.hub_uptime" and gone["removed_at"] == T1
    assert gone["device_name"] == "Peer Hub" and gone["area"] == "Hall"
    assert all(t["removed_at"] is None for t in current.values())
    assert current[TEMP]["registry_id"] == f"reg-{TEMP}"


def test_names_and_ids_ha_accepts_are_stored_exactly(store: MetadataStore, home: Rows) -> None:
    # HA accepts these over config/device_registry/update and config/entity_registry/update.
    find(home["devices"], "id", "therm")["name_by_user"] = "Printer C:\\"
    find(home["entities"], "entity_id", "sensor.kitchen_humidity")["name"] = "Humidity\nkitchen"
    _rename(home, TEMP, "sensor.kitchen_temp\n")

    result = store.sync(home, now=T0)

    assert result.rejects == [] and result.warnings == []
    assert store.device("therm")["name_by_user"] == "Printer C:\\"
    assert store.entity("sensor.kitchen_humidity")["name"] == "Humidity\nkitchen"
    assert store.entity("sensor.kitchen_temp\n")["domain"] == "sensor"
    assert store.entity("sensor.kitchen_temp") is None
    tags = {t["entity_id"]: t for t in store.entity_tags()}
    assert tags["sensor.kitchen_temp\n"]["device_name"] == "Printer C:\\"
    assert store.sync(home, now=T1).rows_written == 0
    assert store.sync(home, now=T1, full_compare=True).rows_written == 0

    # Renamed to the id without the newline: one entity_id_changed.
    _rename(home, "sensor.kitchen_temp\n", "sensor.kitchen_temp")
    changes = store.sync(home, now=T2).changes
    assert [(c["old_values"], c["change_type"]) for c in changes] == [
        ({"entity_id": "sensor.kitchen_temp\n"}, "entity_id_changed")
    ]
