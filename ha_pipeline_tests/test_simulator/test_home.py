"""The simulated home: determinism, realism of the registries, runtime changes and their events."""

from __future__ import annotations

import re
import time
from typing import Any

from ha_pipeline.simulator import SimulatedHome
from ha_pipeline.simulator.recorder import history_during_period

from .conftest import NOW


def test_same_seed_gives_identical_home_and_history() -> None:
    a = SimulatedHome.generate(seed=3, now=NOW)
    b = SimulatedHome.generate(seed=3, now=NOW)
    snap_a, snap_b = a.snapshot(), b.snapshot()
    # context ids are random in HA too; everything else must match
    for snap in (snap_a, snap_b):
        for state in snap["states"].values():
            state.pop("context")
    assert snap_a == snap_b
    ids = list(a.states)
    assert history_during_period(a, NOW - 86400, NOW, ids) == history_during_period(b, NOW - 86400, NOW, ids)


def test_other_seed_gives_other_home() -> None:
    a = SimulatedHome.generate(seed=1, now=NOW)
    b = SimulatedHome.generate(seed=2, now=NOW)
    assert set(a.devices) != set(b.devices)


def test_default_size_and_requested_size() -> None:
    home = SimulatedHome.generate(now=NOW)
    assert len(home.areas) == 8
    assert len(home.devices) == 40
    assert 150 <= len(home.entities) <= 170
    big = SimulatedHome.generate(devices=300, entities_per_device=10, areas=20, now=NOW)
    assert len(big.devices) == 300
    # every physical device has exactly entities_per_device entities (the cloud service has its two)
    per_device: dict[str, int] = {}
    for entry in big.entities.values():
        if entry["device_id"] and big.devices[entry["device_id"]]["entry_type"] is None:
            per_device[entry["device_id"]] = per_device.get(entry["device_id"], 0) + 1
    assert set(per_device.values()) == {10}
    # ids HA keeps unique stay unique at size
    for key in ("id", "unique_id"):
        values = [e[key] for e in big.entities.values()]
        assert len(values) == len(set(values)), key


def test_registries_look_like_a_real_home(home: SimulatedHome) -> None:
    devices = list(home.devices.values())
    entities = list(home.entities.values())
    assert all(d["manufacturer"] and d["model"] for d in devices)
    hubs = {d["via_device_id"] for d in devices if d["via_device_id"]}
    assert hubs and hubs <= set(home.devices)
    assert any(d["entry_type"] == "service" and d["area_id"] is None for d in devices)
    assert sum(d["area_id"] is not None for d in devices) > len(devices) / 2
    assert any(e["area_id"] for e in entities), "some entities override their device's area"
    assert any(e["disabled_by"] for e in entities)
    assert any(e["entity_category"] == "diagnostic" for e in entities)
    for eid in home.entities:
        assert re.fullmatch(r"[a-z_]+\.[a-z0-9_]+", eid), eid
    # every device's config entry exists, one entry per integration
    entry_ids = set(home.config_entries)
    assert all(set(d["config_entries"]) <= entry_ids for d in devices)
    domains = [e["domain"] for e in home.config_entries.values()]
    assert len(domains) == len(set(domains))
    names = [a["name"] for a in home.areas.values()]
    assert any("'" in n for n in names) and any('"' in n and "," in n for n in names)
    assert any(not n.isascii() for n in names)
    classes = {(s["attributes"].get("device_class"), s["attributes"].get("state_class"))
               for s in home.states.values()}
    assert ("temperature", "measurement") in classes
    assert ("humidity", "measurement") in classes
    assert ("power", "measurement") in classes
    assert ("energy", "total_increasing") in classes
    domains_with_state = {eid.split(".")[0] for eid in home.states}
    assert {"sensor", "binary_sensor", "light", "switch", "input_boolean", "input_number"} <= domains_with_state


def test_states_follow_registry(home: SimulatedHome) -> None:
    disabled = {e for e, entry in home.entities.items() if entry["disabled_by"]}
    assert disabled and not disabled & set(home.states)
    # HA also has states without a registry entry
    assert set(home.states) - set(home.entities)
    # the state at generation time is the last generated history row
    eid = next(e for e in home.states if e.startswith("sensor.") and "temperature" in e)
    rows = history_during_period(home, NOW - 6 * 3600, NOW, [eid], significant_changes_only=False)[eid]
    assert rows[-1]["s"] == home.states[eid]["state"]


def _capture(home: SimulatedHome) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    home.listeners.append(events.append)
    return events


def test_device_rename_fires_update_with_old_values_and_refreshes_names(home: SimulatedHome) -> None:
    events = _capture(home)
    device_id = next(d for d, dev in home.devices.items()
                     if dev["name_by_user"] is None and not dev["disabled_by"]
                     and any(e["device_id"] == d and e["entity_id"] in home.states for e in home.entities.values()))
    home.update_device(device_id, name_by_user='Bob\'s "new" plug, ½')
    first = events[0]
    assert first["event_type"] == "device_registry_updated"
    assert first["data"] == {"action": "update", "device_id": device_id, "changes": {"name_by_user": None}}
    renamed = [e for e in events if e["event_type"] == "state_changed"]
    assert renamed and all(e["data"]["new_state"]["attributes"]["friendly_name"].startswith('Bob\'s "new" plug, ½')
                           for e in renamed)


def test_entity_id_change_moves_history(home: SimulatedHome) -> None:
    eid = next(e for e in home.states if e.startswith("sensor.") and e in home.entities)
    before = history_during_period(home, NOW - 3600, NOW, [eid])[eid]
    events = _capture(home)
    home.update_entity(eid, new_entity_id="sensor.renamed_probe")
    registry = [e for e in events if e["event_type"] == "entity_registry_updated"]
    assert registry[0]["data"] == {"action": "update", "entity_id": "sensor.renamed_probe",
                                   "changes": {"entity_id": eid}, "old_entity_id": eid}
    after = history_during_period(home, NOW - 3600, NOW, ["sensor.renamed_probe"])["sensor.renamed_probe"]
    assert [r["s"] for r in after] == [r["s"] for r in before]
    assert eid not in home.states and "sensor.renamed_probe" in home.states


def test_add_and_remove_device_fire_create_and_remove(home: SimulatedHome) -> None:
    events = _capture(home)
    device = home.add_device("Shed Smart Plug", area_id="garage" if "garage" in home.areas else None,
                             model="Shelly Plug S")
    kinds = [(e["event_type"], e["data"].get("action")) for e in events]
    assert kinds[0] == ("device_registry_updated", "create")
    assert ("entity_registry_updated", "create") in kinds
    new_entities = [e for e, entry in home.entities.items() if entry["device_id"] == device["id"]]
    assert new_entities and all(e in home.states for e in new_entities)
    events.clear()
    home.remove_device(device["id"])
    assert device["id"] not in home.devices
    assert events[-1]["data"] == {"action": "remove", "device_id": device["id"]}
    removed = {e["data"]["entity_id"] for e in events
               if e["event_type"] == "entity_registry_updated" and e["data"]["action"] == "remove"}
    assert removed == set(new_entities)
    assert not set(new_entities) & set(home.states)


def test_disabling_an_entity_removes_its_state(home: SimulatedHome) -> None:
    eid = next(e for e in home.states if e in home.entities)
    events = _capture(home)
    home.update_entity(eid, disabled_by="user")
    assert eid not in home.states
    assert events[-1]["event_type"] == "state_changed" and events[-1]["data"]["new_state"] is None
    home.update_entity(eid, disabled_by=None)
    assert eid in home.states


def test_advancing_a_live_home_replays_generated_rows_as_state_changes() -> None:
    wall = float(int(time.time()))
    home = SimulatedHome.generate(seed=9, now=wall - 3 * 3600)
    twin = SimulatedHome.generate(seed=9, now=wall + 3 * 3600)
    events = _capture(home)
    switch = next(e for e in home.states if e.startswith("switch."))
    home.set_state(switch, "on" if home.states[switch]["state"] == "off" else "off")  # at the wall clock
    applied = home.advance(wall + 3 * 3600)
    assert applied > 0
    changes = [e for e in events if e["event_type"] == "state_changed"]
    assert len(changes) == applied + 1
    times = [e["time_fired"] for e in changes[1:]]
    assert times == sorted(times)
    # states and history now equal a home generated up to that time, except for the switch
    # whose runtime row sits among generated ones
    others = [e for e in twin.states if e != switch]
    assert all(home.states[e]["state"] == twin.states[e]["state"] for e in others)
    ids = [e for e in others if e.startswith("sensor.")][:20]
    window = (wall - 4 * 3600, wall + 3 * 3600)
    assert history_during_period(home, *window, ids) == history_during_period(twin, *window, ids)
    rows = history_during_period(home, *window, [switch], significant_changes_only=False)[switch]
    assert [r["lu"] for r in rows] == sorted(r["lu"] for r in rows)
    assert any(r["lu"] > wall + 1 for r in rows), "generated rows continue after the runtime change"


def test_tiny_homes_have_exactly_the_requested_devices() -> None:
    for devices in range(6):
        for areas in (0, 1, 25):
            home = SimulatedHome.generate(devices=devices, areas=areas, entities_per_device=1, now=NOW)
            assert len(home.devices) == devices and len(home.areas) == areas
            assert all(d["area_id"] in home.areas for d in home.devices.values() if d["area_id"])
