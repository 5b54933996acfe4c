"""payload_fingerprint: order-independent, sees every change discovery would store, never fails."""

from __future__ import annotations

import copy
import functools
import random
from datetime import datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ha_pipeline.homeassistant.client import HomeAssistantClient
from ha_pipeline.homeassistant.models import Area, ConfigEntry, Device, Entity, parse_records
from ha_pipeline.homeassistant.registry import RegistrySnapshot, payload_fingerprint, registry_fingerprint
from ha_pipeline_tests.test_homeassistant.scripted_server import TOKEN, ScriptedServer, sample


def _fetch(states: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The recorded registries as the client fetches them (entities enriched from get_entries
    and from ``states``, default the recorded ones)."""
    with ScriptedServer() as server:
        if states is not None:
            server.handlers["get_states"] = lambda msg: states
        with HomeAssistantClient(server.url, TOKEN) as ha:
            return ha.registry_payloads()


@functools.cache
def _recorded() -> dict[str, Any]:
    return _fetch()


def _payloads() -> dict[str, Any]:
    return copy.deepcopy(_recorded())


def _reordered(payloads: dict[str, Any], seed: int = 1) -> dict[str, Any]:
    """Every list shuffled and every record's keys (nested ones too) in reverse order."""
    rnd = random.Random(seed)

    def flip(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: flip(value[key]) for key in reversed(list(value))}
        return value

    out = {}
    for table, records in payloads.items():
        records = [flip(record) for record in records]
        rnd.shuffle(records)
        out[table] = records
    return out


def _with_unit(payloads: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A copy and the index of an entity that has a unit and a state class."""
    index = next(
        i for i, e in enumerate(payloads["entities"]) if e.get("unit_of_measurement") and e.get("state_class")
    )
    return copy.deepcopy(payloads), index


def test_samples_carry_what_the_change_tests_need() -> None:
    entities = _payloads()["entities"]
    assert any(e.get("unit_of_measurement") for e in entities)
    assert any(e.get("state_class") for e in entities)
    assert any(e.get("original_device_class") for e in entities)


def test_equal_for_a_reordered_payload_and_unknown_fields() -> None:
    base = _payloads()
    assert payload_fingerprint(_reordered(base)) == payload_fingerprint(base)
    newer = copy.deepcopy(base)
    for record in newer["entities"] + newer["devices"] + newer["areas"]:
        record["labels"] = ["newer HA field"]
    assert payload_fingerprint(newer) == payload_fingerprint(base)


def test_equal_to_the_snapshot_fingerprint_for_a_well_formed_home() -> None:
    payloads = _payloads()
    models = {"areas": (Area, "area"), "devices": (Device, "device"), "entities": (Entity, "entity"),
              "config_entries": (ConfigEntry, "config_entry")}
    parsed = {}
    for table, (model, kind) in models.items():
        parsed[table], rejects = parse_records(model, payloads[table], kind)
        assert not rejects
    snapshot = RegistrySnapshot(**parsed, fetched_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert registry_fingerprint(snapshot) == payload_fingerprint(payloads)


def _change(kind: str) -> dict[str, Any]:
    payloads, i = _with_unit(_payloads())
    entities, devices, areas = payloads["entities"], payloads["devices"], payloads["areas"]
    device = next(d for d in devices if d["area_id"])
    if kind == "unit_of_measurement":
        entities[i]["unit_of_measurement"] = "K"
    elif kind == "state_class":
        entities[i]["state_class"] = "total"
    elif kind == "device_class":
        entities[i]["device_class"] = "power"
    elif kind == "original_device_class":
        entities[i]["original_device_class"] = "energy"
    elif kind == "entity renamed":
        entities[i]["name"] = "Renamed by the user"
    elif kind == "entity_id renamed":
        entities[i]["entity_id"] += "_2"
    elif kind == "entity moved to an area":
        entities[i]["area_id"] = areas[0]["area_id"]
    elif kind == "entity disabled":
        entities[i]["disabled_by"] = "user"
    elif kind == "entity removed":
        del entities[i]
    elif kind == "entity added":
        entities.append({**entities[i], "entity_id": "sensor.added", "id": "added", "unique_id": "added"})
    elif kind == "device renamed":
        device["name_by_user"] = "Renamed device"
    elif kind == "device moved":
        device["area_id"] = next(a["area_id"] for a in areas if a["area_id"] != device["area_id"])
    elif kind == "device removed":
        devices.remove(device)
    elif kind == "device added":
        devices.append({**device, "id": "added-device"})
    elif kind == "area renamed":
        areas[0]["name"] = "Renamed area"
    elif kind == "area removed":
        del areas[0]
    elif kind == "area added":
        areas.append({"area_id": "attic", "name": "Attic", "aliases": [], "picture": None})
    elif kind == "config entry state":
        payloads["config_entries"][0]["state"] = "setup_error"
    elif kind == "config entry removed":
        del payloads["config_entries"][0]
    else:
        raise AssertionError(kind)
    return payloads


CHANGES = [
    "unit_of_measurement", "state_class", "device_class", "original_device_class", "entity renamed",
    "entity_id renamed", "entity moved to an area", "entity disabled", "entity removed", "entity added",
    "device renamed", "device moved", "device removed", "device added", "area renamed", "area removed",
    "area added", "config entry state", "config entry removed",
]  # fmt: skip


def test_every_change_kind_changes_the_fingerprint_and_each_differently() -> None:
    base = payload_fingerprint(_payloads())
    seen = {base: "unchanged"}
    for kind in CHANGES:
        fingerprint = payload_fingerprint(_change(kind))
        assert fingerprint not in seen, f"{kind} gives the fingerprint of {seen.get(fingerprint)}"
        seen[fingerprint] = kind
        # and the change is seen whatever order HA lists the records in
        assert payload_fingerprint(_reordered(_change(kind), seed=7)) == fingerprint


def test_unit_and_state_class_changes_in_the_state_are_seen_through_the_client() -> None:
    states = sample("get_states.json")
    base = payload_fingerprint(_payloads())
    assert payload_fingerprint(_fetch(states)) == base
    registered = {e["entity_id"] for e in sample("entity_registry_list.json")}
    sensor = next(
        s for s in states
        if s["entity_id"] in registered and s["attributes"].get("unit_of_measurement") and s["attributes"].get("state_class")
    )
    for key, value in (("unit_of_measurement", "K"), ("state_class", "total")):
        changed = copy.deepcopy(states)
        next(s for s in changed if s["entity_id"] == sensor["entity_id"])["attributes"][key] = value
        assert payload_fingerprint(_fetch(changed)) != base, key


def test_malformed_records_change_the_fingerprint_and_never_fail() -> None:
    base = _payloads()
    clean = payload_fingerprint(base)
    broken = copy.deepcopy(base)
    broken["areas"].append({"name": "no id"})
    broken["devices"].append("not a record")
    broken["devices"].append(copy.deepcopy(broken["devices"][0]))  # a duplicate id
    broken["entities"][0]["has_entity_name"] = "yes"
    broken["entities"].append({"entity_id": None, "name": "\ud800 lone surrogate", "options": {"x": float("nan")}})
    broken["config_entries"] = {"not": "a list"}
    fingerprint = payload_fingerprint(broken)
    assert fingerprint != clean and len(fingerprint) == 64
    # stable while the malformed records stay, in whatever order
    assert payload_fingerprint(copy.deepcopy(broken)) == fingerprint
    reordered = _reordered({k: v for k, v in broken.items() if k != "config_entries"})
    assert payload_fingerprint({**reordered, "config_entries": broken["config_entries"]}) == fingerprint
    assert payload_fingerprint({}) == payload_fingerprint({t: None for t in base})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["id", "name", "area_id", "identifiers", "x"]), _JSON) | _JSON,
                max_size=8), st.randoms())
def test_any_list_order_gives_the_same_fingerprint(devices: list[Any], rnd: random.Random) -> None:
    shuffled = list(devices)
    rnd.shuffle(shuffled)
    assert payload_fingerprint({"devices": shuffled}) == payload_fingerprint({"devices": devices})
