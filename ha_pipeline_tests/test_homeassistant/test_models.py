"""Models against the recorded HA 2024.1.6 payloads, newer/older shapes and bad records."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from ha_pipeline.homeassistant.models import (
    Area,
    ConfigEntry,
    Device,
    Entity,
    HAConfig,
    Reject,
    State,
    parse_records,
)
from ha_pipeline.homeassistant.registry import RegistrySnapshot, registry_fingerprint
from ha_pipeline_tests.test_homeassistant.scripted_server import sample

DEVICE_KEYS = {
    "area_id", "config_entries", "configuration_url", "connections", "disabled_by", "entry_type",
    "hw_version", "id", "identifiers", "manufacturer", "model", "name", "name_by_user",
    "serial_number", "sw_version", "via_device_id",
}  # fmt: skip
ENTITY_LIST_KEYS = {
    "area_id", "config_entry_id", "device_id", "disabled_by", "entity_category", "entity_id",
    "has_entity_name", "hidden_by", "icon", "id", "name", "options", "original_name", "platform",
    "translation_key", "unique_id",
}  # fmt: skip


def test_every_registry_sample_parses_without_rejects() -> None:
    for model, name, kind in [
        (Area, "area_registry_list.json", "area"),
        (Device, "device_registry_list.json", "device"),
        (Entity, "entity_registry_list.json", "entity"),
        (ConfigEntry, "config_entries_get.json", "config_entry"),
        (State, "get_states.json", "state"),
    ]:
        items = sample(name)
        records, rejects = parse_records(model, items, kind)
        assert rejects == [], name
        assert len(records) == len(items) > 0, name


def test_device_row_has_exactly_the_16_keys_of_ha_2024_1() -> None:
    devices, _ = parse_records(Device, sample("device_registry_list.json"), "device")
    assert set(devices[0].as_row()) == DEVICE_KEYS
    raw = sample("device_registry_list.json")[1]
    assert devices[1].as_row() == raw


def test_entity_row_is_the_list_keys_plus_the_enrichment_keys() -> None:
    entities, _ = parse_records(Entity, sample("entity_registry_list.json"), "entity")
    row = entities[0].as_row()
    assert set(row) == ENTITY_LIST_KEYS | {
        "device_class", "original_device_class", "capabilities", "unit_of_measurement", "state_class", "has_state",
    }  # fmt: skip
    assert {key: row[key] for key in ENTITY_LIST_KEYS} == sample("entity_registry_list.json")[0]


def test_get_entries_payload_validates_as_entity_with_device_class_and_capabilities() -> None:
    entries = sample("entity_registry_get_entries.json")
    records, rejects = parse_records(Entity, list(entries.values()), "entity")
    assert rejects == []
    by_id = {record.entity_id: record for record in records}
    hub = by_id["sensor.peer_hub_connected_devices"]
    assert hub.capabilities == {"state_class": "measurement"}
    assert hub.original_icon == "mdi:lan"  # type: ignore[attr-defined]  # kept as an extra field
    assert "original_icon" not in hub.as_row()


def test_state_and_event_state_parse_timestamps() -> None:
    event = sample("state_changed_event.json")["event"]
    new = State.model_validate(event["data"]["new_state"])
    assert new.state == "on"
    assert new.last_changed == datetime(2026, 11, 23, 4, 46, 5, 989327, tzinfo=timezone.utc)
    assert new.context and new.context["user_id"] == "85a493655bed46fbbabfd2b6eb1d0eef"


def test_config_sample() -> None:
    config = HAConfig.model_validate(sample("get_config.json"))
    assert config.version == "2024.1.6"
    assert config.state == "RUNNING"
    assert config.unit_system["temperature"] == "°C"


def test_newer_ha_fields_are_tolerated_and_kept_as_extras() -> None:
    device = dict(sample("device_registry_list.json")[0])
    device.update(labels=["x"], created_at=1.5, modified_at=2.5, primary_config_entry="abc")
    area = dict(sample("area_registry_list.json")[0], floor_id="ground", icon="mdi:sofa", labels=[])
    [parsed_device], device_rejects = parse_records(Device, [device], "device")
    [parsed_area], area_rejects = parse_records(Area, [area], "area")
    assert device_rejects == area_rejects == []
    assert parsed_device.labels == ["x"]  # type: ignore[attr-defined]
    assert set(parsed_device.as_row()) == DEVICE_KEYS
    assert parsed_area.floor_id == "ground"  # type: ignore[attr-defined]


def test_older_ha_missing_optional_fields_default_to_none() -> None:
    records, rejects = parse_records(Device, [{"id": "d1"}], "device")
    assert rejects == []
    row = records[0].as_row()
    assert row["id"] == "d1" and row["manufacturer"] is None and row["identifiers"] == []


def test_bad_records_are_rejected_with_id_and_field_and_the_rest_kept() -> None:
    items = copy.deepcopy(sample("entity_registry_list.json"))
    good = len(items)
    del items[2]["entity_id"]
    items[3]["has_entity_name"] = "sometimes"
    items[4]["entity_id"] = 42
    items.append("not a record")
    items.append(dict(items[0], name="second copy"))
    records, rejects = parse_records(Entity, items, "entity")
    assert len(records) == good - 3
    assert Reject("entity", None, "entity_id", "Field required") in rejects
    bad_type = next(r for r in rejects if r.field == "has_entity_name")
    assert bad_type.record_id == items[3]["entity_id"]
    assert "valid boolean" in bad_type.reason
    assert any(r.record_id == "42" and r.field == "entity_id" for r in rejects)
    assert any(r.record_id is None and r.field is None for r in rejects)  # the string item
    duplicate = [r for r in rejects if "duplicate" in r.reason]
    assert [r.record_id for r in duplicate] == [items[0]["entity_id"]]
    kept = next(r for r in records if r.entity_id == items[0]["entity_id"])
    assert kept.name == items[0]["name"]  # the first of the duplicates wins
    assert len(rejects) == 5


def test_empty_id_is_rejected() -> None:
    records, rejects = parse_records(Area, [{"area_id": "", "name": "x"}], "area")
    assert records == [] and rejects[0].field == "area_id"


def test_non_list_payload_is_one_reject() -> None:
    records, rejects = parse_records(Area, {"oops": 1}, "area")
    assert records == [] and len(rejects) == 1 and "expected a list" in rejects[0].reason


def test_many_records_across_chunks_keep_order_and_report_bad_ones() -> None:
    template = sample("entity_registry_list.json")[0]
    items = [dict(template, entity_id=f"sensor.e{i}") for i in range(12_000)]
    items[7_500]["options"] = "nope"
    records, rejects = parse_records(Entity, items, "entity")
    assert len(records) == 11_999
    assert records[7_500].entity_id == "sensor.e7501"
    assert [(r.record_id, r.field) for r in rejects] == [("sensor.e7500", "options")]


def _snapshot() -> RegistrySnapshot:
    return RegistrySnapshot(
        areas=parse_records(Area, sample("area_registry_list.json"), "area")[0],
        devices=parse_records(Device, sample("device_registry_list.json"), "device")[0],
        entities=parse_records(Entity, sample("entity_registry_list.json"), "entity")[0],
        config_entries=parse_records(ConfigEntry, sample("config_entries_get.json"), "config_entry")[0],
        fetched_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )


def test_as_rows_tables_and_counts() -> None:
    rows = _snapshot().as_rows()
    assert set(rows) == {"areas", "devices", "entities", "config_entries"}
    assert len(rows["areas"]) == len(sample("area_registry_list.json"))
    assert rows["areas"][0] == sample("area_registry_list.json")[0]


def test_fingerprint_ignores_order_and_fetch_time_but_sees_changes() -> None:
    first = _snapshot()
    second = _snapshot()
    second.devices.reverse()
    second.fetched_at = datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert registry_fingerprint(first) == registry_fingerprint(second)
    second.devices[0].name_by_user = "Renamed"
    assert registry_fingerprint(first) != registry_fingerprint(second)
    assert len(registry_fingerprint(first)) == 64
    third = _snapshot()
    third.entities[0].capabilities = {"state_class": "total"}
    assert registry_fingerprint(first) != registry_fingerprint(third)
    fourth = _snapshot()
    fourth.entities[0].labels = ["newer HA field"]  # type: ignore[attr-defined]
    assert registry_fingerprint(first) == registry_fingerprint(fourth)  # only the stored columns count


_VALUES = st.one_of(st.none(), st.text(max_size=5), st.integers(), st.booleans(), st.lists(st.text(max_size=3)))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.fixed_dictionaries(
                {"id": st.sampled_from(["d1", "d2", "d3", "", None, 7])},
                optional={"name": _VALUES, "area_id": _VALUES, "identifiers": _VALUES, "labels": _VALUES},
            ),
            _VALUES,
        ),
        max_size=12,
    )
)
def test_every_item_is_kept_or_rejected_exactly_once(items: list[object]) -> None:
    records, rejects = parse_records(Device, items, "device")
    assert len(records) + len(rejects) == len(items)
    assert len({r.id for r in records}) == len(records)
    assert all(isinstance(r.id, str) and r.id for r in records)
