"""The simulated home: registries, states, runtime changes and the events they fire.

Plain Python (no asyncio, no Dagster). Registry records are kept as the exact dicts HA 2024.1
serialises, so the server can send them as they are. Every runtime change calls the listeners
with an HA-shaped event (``state_changed``, ``device_registry_updated``, ``entity_registry_updated``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import random
import re
import time
import unicodedata
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from ha_pipeline.simulator import catalog
from ha_pipeline.simulator.catalog import DeviceModel, EntitySpec
from ha_pipeline.simulator.history import HistoryGenerator, Source, gc_paused
from ha_pipeline.simulator.recorder import state_in_force, timelines

HA_VERSION = "2024.1.6"
USER_ID = "5a1d0f0c9c3e4b6f8d2a7e41b0c3d9aa"
ON_OFF_DOMAINS = ("switch", "light", "input_boolean")

Listener = Callable[[dict[str, Any]], None]


class SimulatorError(Exception):
    """A request the simulated home refuses; ``code`` is HA's error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@functools.lru_cache(maxsize=65536)
def slugify(text: str) -> str:
    """HA-like slug: ascii, lower case, apostrophes dropped, other runs of non-alnum → ``_``."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[']+", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_") or "unnamed"


def iso(ts: float) -> str:
    """Epoch seconds → HA's ISO string (``+00:00``)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# two Crockford characters per 10 bits: 13 lookups make a 26-character ULID
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]


def ulid(ts: float, rnd: random.Random) -> str:
    """A ULID string like HA's context ids: 48 bits of ms time, then 80 random bits."""
    value = (int(ts * 1000) << 80) | rnd.getrandbits(80)
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(120, -10, -10)])


def context(ts: float, rnd: random.Random, user_id: str | None = None) -> dict[str, Any]:
    """An HA context dict."""
    return {"id": ulid(ts, rnd), "parent_id": None, "user_id": user_id}


@dataclass
class SimulatedHome:
    """Registries, states and history of a simulated HA home. Build one with :meth:`generate`."""

    seed: int
    now: float  # end of generated history; later history comes from runtime changes
    areas: dict[str, dict[str, Any]]
    devices: dict[str, dict[str, Any]]
    entities: dict[str, dict[str, Any]]
    entity_extra: dict[str, dict[str, Any]]  # get_entries-only keys per entity_id
    config_entries: dict[str, dict[str, Any]]
    sources: dict[str, Source]  # history source per entity_id (kept after removal: HA keeps history)
    generator: HistoryGenerator
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    runtime_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list, repr=False)
    rnd: random.Random = field(default_factory=lambda: random.Random(0), repr=False)
    location_name: str = "Simulated Home"
    time_zone: str = "Europe/Amsterdam"
    # position of each generated entity's Source in the generator (None: runtime-only history)
    source_positions: dict[str, int | None] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ generation
    @classmethod
    def generate(cls, seed: int = 0, areas: int = 8, devices: int = 40, entities_per_device: int = 4,
                 event_rate: float = 4.0, now: float | None = None) -> "SimulatedHome":
        """Build a deterministic home: same arguments → identical registries, states and history.

        ``event_rate`` is raw state rows per entity per hour (scaled per kind: power sensors report
        more often, batteries rarely). ``now`` ends the generated history (default: wall clock).
        """
        rnd = random.Random(seed)
        now = float(math.floor(time.time())) if now is None else float(now)
        with gc_paused():
            builder = _Builder(seed, rnd, event_rate)
            builder.build(areas, devices, entities_per_device)
            home = cls(
                seed=seed, now=now, areas=builder.areas, devices=builder.devices, entities=builder.entities,
                entity_extra=builder.extra, config_entries=builder.entries, sources=builder.sources,
                generator=HistoryGenerator(seed, list(builder.sources.values())),
                rnd=random.Random(seed + 1),
            )
            home.source_positions = {eid: i for i, eid in enumerate(builder.sources)}
            home._initial_states()
        return home

    def _initial_states(self) -> None:
        """States in force at ``now`` from generated history (disabled entities have none)."""
        current = state_in_force(self, self.now)
        for eid, src in self.sources.items():
            entry = self.entities.get(eid)
            if entry is not None and entry["disabled_by"] is not None:
                continue
            value, lu, lc = current[eid]
            lu = min(lu, self.now) if math.isfinite(lu) else self.now - 30 * 86400
            lc = lu if not math.isfinite(lc) else lc
            updated = iso(lu)
            self.states[eid] = {
                "entity_id": eid, "state": value[0], "attributes": value[1],
                "last_changed": updated if lc == lu else iso(lc), "last_updated": updated,
                "context": {"id": ulid(lu, self.rnd), "parent_id": None, "user_id": None},
            }

    # ------------------------------------------------------------------ views
    def entity_entry(self, entity_id: str) -> dict[str, Any]:
        """The get_entries shape: the 16 list keys plus aliases, capabilities, device classes, icon."""
        entry = self.entities[entity_id]
        return {**entry, **self.entity_extra[entity_id]}

    def display_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """One item of ``config/entity_registry/list_for_display``."""
        out: dict[str, Any] = {"ei": entry["entity_id"], "pl": entry["platform"]}
        if entry["area_id"]:
            out["ai"] = entry["area_id"]
        if entry["device_id"]:
            out["di"] = entry["device_id"]
        if entry["translation_key"]:
            out["tk"] = entry["translation_key"]
        if entry["entity_category"]:
            out["ec"] = 0 if entry["entity_category"] == "config" else 1
        if entry["hidden_by"]:
            out["hb"] = True
        if entry["has_entity_name"] and not entry["name"] and entry["original_name"]:
            out["en"] = entry["original_name"]
        precision = (entry["options"].get("sensor") or {}).get("suggested_display_precision")
        if precision is not None:
            out["dp"] = precision
        return out

    def friendly_name(self, entity_id: str) -> str:
        """What HA shows: the user's name, or device name + entity name when has_entity_name."""
        entry = self.entities.get(entity_id)
        if entry is None:
            return self.states[entity_id]["attributes"].get("friendly_name", entity_id)
        name = entry["name"] or entry["original_name"]
        if entry["name"] or not entry["has_entity_name"] or not entry["device_id"]:
            return name or entity_id
        device = self.devices.get(entry["device_id"])
        device_name = (device["name_by_user"] or device["name"]) if device else None
        return f"{device_name} {name}" if name and device_name else (device_name or name or entity_id)

    # ------------------------------------------------------------------ runtime changes
    def _fire(self, event_type: str, data: dict[str, Any], ts: float, ctx: dict[str, Any] | None = None) -> None:
        event = {"event_type": event_type, "data": data, "origin": "LOCAL", "time_fired": iso(ts),
                 "context": ctx or context(ts, self.rnd)}
        for listener in list(self.listeners):
            listener(event)

    def _clock(self, entity_id: str | None = None) -> float:
        """Now, but never before generated history or the entity's last update."""
        ts = max(time.time(), self.now + 1e-3)
        if entity_id in self.runtime_rows and self.runtime_rows[entity_id]:
            ts = max(ts, self.runtime_rows[entity_id][-1]["lu"] + 1e-6)
        return round(ts, 6)

    def advance(self, until: float) -> int:
        """Extend generated history to ``until`` (a live home): its rows become state changes now.

        Each generated row after the old end fires ``state_changed`` and updates the state, as if
        the device had just reported it; returns the number of rows applied.
        """
        if until <= self.now:
            return 0
        start, self.now = self.now, until
        ids = [e for e in self.states if self.source_positions.get(e) is not None]
        rows = []
        for eid, tl in timelines(self, ids, start, until, include_runtime=False).items():
            rows.extend((lu, eid, s, a) for s, a, lu in zip(tl.states, tl.attrs, tl.lu))
        rows.sort(key=lambda r: r[0])
        applied = 0
        for lu, eid, state, attrs in rows:
            old = self.states.get(eid)
            if old is None or (old["state"] == state and old["attributes"] == attrs):
                continue  # disabled/removed meanwhile, or already in this state
            attrs = {**attrs, "friendly_name": old["attributes"].get("friendly_name", attrs.get("friendly_name"))}
            ctx = context(lu, self.rnd)
            new = {"entity_id": eid, "state": state, "attributes": attrs,
                   "last_changed": iso(lu) if old["state"] != state else old["last_changed"],
                   "last_updated": iso(lu), "context": ctx}
            self.states[eid] = new
            self._fire("state_changed", {"entity_id": eid, "old_state": old, "new_state": new}, lu, ctx)
            applied += 1
        return applied

    def set_state(self, entity_id: str, state: str, attributes: dict[str, Any] | None = None,
                  ctx: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Write a state like HA's state machine: fires state_changed, records a history row."""
        old = self.states.get(entity_id)
        attrs = dict(old["attributes"]) if attributes is None and old else dict(attributes or {})
        if old is not None and old["state"] == state and old["attributes"] == attrs:
            return old  # HA writes nothing for an identical state
        ts = self._clock(entity_id)
        ctx = ctx or context(ts, self.rnd)
        changed = old is None or old["state"] != state
        new = {"entity_id": entity_id, "state": state, "attributes": attrs,
               "last_changed": iso(ts) if changed else old["last_changed"], "last_updated": iso(ts),
               "context": ctx}
        self.states[entity_id] = new
        if entity_id not in self.sources:
            self.sources[entity_id] = Source(gid=0, kind="constant", constant=state, attributes=attrs)
        lc = ts if changed else datetime.fromisoformat(old["last_changed"]).timestamp()
        self.runtime_rows.setdefault(entity_id, []).append({"s": state, "a": attrs, "lu": ts, "lc": lc})
        self._fire("state_changed", {"entity_id": entity_id, "old_state": old, "new_state": new}, ts, ctx)
        return new

    def remove_state(self, entity_id: str) -> None:
        """Drop a state (entity removed or disabled): state_changed with new_state None."""
        old = self.states.pop(entity_id, None)
        if old is not None:
            ts = self._clock(entity_id)
            self._fire("state_changed", {"entity_id": entity_id, "old_state": old, "new_state": None}, ts)

    def _refresh_friendly_name(self, entity_id: str) -> None:
        state = self.states.get(entity_id)
        if state is not None:
            name = self.friendly_name(entity_id)
            if state["attributes"].get("friendly_name") != name:
                self.set_state(entity_id, state["state"], {**state["attributes"], "friendly_name": name})

    def update_device(self, device_id: str, **changes: Any) -> dict[str, Any]:
        """config/device_registry/update: name_by_user, area_id, disabled_by. Fires the update event."""
        device = self.devices.get(device_id)
        if device is None:
            raise SimulatorError("not_found", "Device not found")
        old = {k: device[k] for k, v in changes.items() if k in device and device[k] != v}
        if changes.get("area_id") and changes["area_id"] not in self.areas:
            raise SimulatorError("invalid_info", f"Area {changes['area_id']} does not exist")
        if not old:
            return device
        device.update({k: changes[k] for k in old})
        self._fire("device_registry_updated", {"action": "update", "device_id": device_id, "changes": old},
                   self._clock())
        entity_ids = [e for e, entry in self.entities.items() if entry["device_id"] == device_id]
        if "disabled_by" in old:
            for eid in entity_ids:
                entry = self.entities[eid]
                if device["disabled_by"] and entry["disabled_by"] is None:
                    self.update_entity(eid, disabled_by="device")
                elif not device["disabled_by"] and entry["disabled_by"] == "device":
                    self.update_entity(eid, disabled_by=None)
        if "name_by_user" in old:
            for eid in entity_ids:
                self._refresh_friendly_name(eid)
        return device

    def update_entity(self, entity_id: str, **changes: Any) -> dict[str, Any]:
        """config/entity_registry/update: name, area_id, disabled_by, hidden_by, new_entity_id."""
        entry = self.entities.get(entity_id)
        if entry is None:
            raise SimulatorError("not_found", "Entity not found")
        new_id = changes.pop("new_entity_id", None)
        if new_id and new_id != entity_id:
            if new_id in self.entities or new_id in self.states:
                raise SimulatorError("invalid_info", "Entity with this ID is already registered")
            if new_id.split(".", 1)[0] != entity_id.split(".", 1)[0] or not re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", new_id):
                raise SimulatorError("invalid_info", f"Invalid entity ID: {new_id}")
        if changes.get("area_id") and changes["area_id"] not in self.areas:
            raise SimulatorError("invalid_info", f"Area {changes['area_id']} does not exist")
        old = {k: entry[k] for k, v in changes.items() if k in entry and entry[k] != v}
        entry.update({k: changes[k] for k in old})
        event: dict[str, Any] = {"action": "update", "entity_id": entity_id, "changes": old}
        if new_id and new_id != entity_id:
            old["entity_id"] = entity_id
            self._rename_entity_id(entity_id, new_id)
            event = {"action": "update", "entity_id": new_id, "changes": old, "old_entity_id": entity_id}
            entity_id = new_id
        if not old:
            return entry
        self._fire("entity_registry_updated", event, self._clock())
        if "disabled_by" in old:
            if entry["disabled_by"]:
                self.remove_state(entity_id)
            elif entity_id not in self.states:
                self._restore_state(entity_id)
        if "name" in old:
            self._refresh_friendly_name(entity_id)
        return entry

    def _rename_entity_id(self, old_id: str, new_id: str) -> None:
        """Move an entity and its history to a new id (HA's recorder migrates history on rename)."""
        entry = self.entities.pop(old_id)
        entry["entity_id"] = new_id
        self.entities[new_id] = entry
        self.entity_extra[new_id] = self.entity_extra.pop(old_id)
        self.sources[new_id] = self.sources.pop(old_id)
        self.source_positions[new_id] = self.source_positions.pop(old_id, None)
        if old_id in self.runtime_rows:
            self.runtime_rows[new_id] = self.runtime_rows.pop(old_id)
        old_state = self.states.get(old_id)
        if old_state is not None:
            self.remove_state(old_id)
            self.set_state(new_id, old_state["state"], old_state["attributes"])

    def _restore_state(self, entity_id: str) -> None:
        src = self.sources[entity_id]
        if src.kind == "constant":
            state = src.constant
        elif src.kind in ("binary", "light"):
            state = "off"
        else:
            state = "unknown"
        attrs = dict(src.attributes)
        attrs["friendly_name"] = self.friendly_name(entity_id)
        self.set_state(entity_id, state, attrs)

    def remove_entity(self, entity_id: str) -> None:
        """config/entity_registry/remove: registry entry and state go; history stays."""
        if entity_id not in self.entities:
            raise SimulatorError("not_found", "Entity not found")
        del self.entities[entity_id]
        self._fire("entity_registry_updated", {"action": "remove", "entity_id": entity_id}, self._clock())
        self.remove_state(entity_id)

    def add_device(self, name: str, area_id: str | None = None, model: str | None = None,
                   entities: int | None = None) -> dict[str, Any]:
        """Add a device of a catalog model (by model id or label) with its entities; fires create events."""
        if area_id and area_id not in self.areas:
            raise SimulatorError("invalid_info", f"Area {area_id} does not exist")
        spec = next((m for m in catalog.MODELS if model in (m.model, m.label)), catalog.MODELS[0])
        builder = _Builder(self.seed, self.rnd, 4.0, existing=self)
        device = builder.add_device(spec, name, area_id, None, len(spec.entities) if entities is None else entities)
        self.devices[device["id"]] = device
        self._fire("device_registry_updated", {"action": "create", "device_id": device["id"]}, self._clock())
        for eid in builder.new_entities:
            self._adopt(builder, eid)
        return device

    def add_entity(self, domain: str = "sensor", name: str = "New sensor", device_id: str | None = None,
                   state: str | None = None) -> dict[str, Any]:
        """Add one entity (optionally on a device); fires entity_registry_updated create and state_changed."""
        if device_id and device_id not in self.devices:
            raise SimulatorError("not_found", "Device not found")
        builder = _Builder(self.seed, self.rnd, 4.0, existing=self)
        kinds = {"sensor": catalog.POWER, "binary_sensor": catalog.MOTION, "switch": catalog.SWITCH,
                 "light": catalog.LIGHT}
        base = kinds.get(domain, catalog.MOTION)
        spec = EntitySpec(domain, slugify(name), name, base.kind, base.device_class, base.unit, base.state_class,
                          gen=base.gen)
        device = self.devices.get(device_id) if device_id else None
        eid = builder.add_entity(spec, device, self._integration_of(device), index=0)
        self._adopt(builder, eid)
        if state is not None:
            self.set_state(eid, state)
        return self.entities[eid]

    def _integration_of(self, device: dict[str, Any] | None) -> str:
        if device is None:
            return "template"
        entry = self.config_entries.get(device["config_entries"][0]) if device["config_entries"] else None
        return entry["domain"] if entry else "template"

    def _adopt(self, builder: "_Builder", eid: str) -> None:
        """Take a runtime-built entity into the registries (history starts now: runtime rows only)."""
        self.entities[eid] = builder.entities[eid]
        self.entity_extra[eid] = builder.extra[eid]
        src = builder.sources[eid]
        # generated history would invent a past for an entity created just now
        self.sources[eid] = Source(gid=src.gid, kind="constant", constant="unknown", attributes=src.attributes)
        self._fire("entity_registry_updated", {"action": "create", "entity_id": eid}, self._clock())
        if self.entities[eid]["disabled_by"] is None:
            attrs = dict(src.attributes)
            attrs["friendly_name"] = self.friendly_name(eid)
            state = "off" if src.kind in ("binary", "light") else "unknown"
            self.set_state(eid, state, attrs)

    def remove_device(self, device_id: str) -> None:
        """Remove a device and its entities (entities first, like HA's cleanup)."""
        if device_id not in self.devices:
            raise SimulatorError("not_found", "Device not found")
        for eid in [e for e, entry in self.entities.items() if entry["device_id"] == device_id]:
            self.remove_entity(eid)
        for other in self.devices.values():
            if other["via_device_id"] == device_id:
                other["via_device_id"] = None
        del self.devices[device_id]
        self._fire("device_registry_updated", {"action": "remove", "device_id": device_id}, self._clock())

    def snapshot(self) -> dict[str, Any]:
        """Deep copy of registries and states (for determinism checks and tests)."""
        return copy.deepcopy({"areas": self.areas, "devices": self.devices, "entities": self.entities,
                              "extra": self.entity_extra, "config_entries": self.config_entries,
                              "states": self.states})


@functools.lru_cache(maxsize=1024)
def _extra_spec(index: int, n: int) -> EntitySpec:
    """The n-th copy of a padding entity (``Voltage 2``…), one object per (index, n) so caches hit."""
    base = catalog.EXTRAS[index]
    if n == 1:
        return base
    return dataclasses.replace(base, key=f"{base.key}_{n}", name=f"{base.name} {n}")


class _Builder:
    """Builds registry records and history sources deterministically from one Random."""

    def __init__(self, seed: int, rnd: random.Random, event_rate: float, existing: SimulatedHome | None = None):
        self.seed = seed
        self.rnd = rnd
        self.event_rate = event_rate
        self.areas: dict[str, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.entities: dict[str, dict[str, Any]] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        self.entries: dict[str, dict[str, Any]] = {}
        self.sources: dict[str, Source] = {}
        self.new_entities: list[str] = []
        self.entry_by_domain: dict[str, str] = {}
        self.names: dict[str, int] = {}
        self.existing = existing
        if existing is not None:
            self.entry_by_domain = {e["domain"]: k for k, e in existing.config_entries.items()}

    def hex_id(self) -> str:
        return "%032x" % self.rnd.getrandbits(128)

    def _taken(self, entity_id: str) -> bool:
        return entity_id in self.entities or entity_id in self.sources or (
            self.existing is not None and (entity_id in self.existing.entities or entity_id in self.existing.sources))

    def unique_entity_id(self, domain: str, object_id: str) -> str:
        candidate = f"{domain}.{object_id}"
        n = 2
        while self._taken(candidate):
            candidate = f"{domain}.{object_id}_{n}"
            n += 1
        return candidate

    def gid(self, key: str) -> int:
        # stable per-entity key for the history hash, independent of dict order
        data = key.encode()
        return (zlib.crc32(data) << 32) | zlib.adler32(data)

    def build(self, n_areas: int, n_devices: int, per_device: int) -> None:
        for i in range(n_areas):
            name = catalog.AREA_NAMES[i] if i < len(catalog.AREA_NAMES) else f"Room {i + 1}"
            area_id = slugify(name)
            aliases = ["Yard"] if name == "Garden" else []
            self.areas[area_id] = {"aliases": aliases, "area_id": area_id, "name": name, "picture": None}
        area_ids = list(self.areas)
        for integ in catalog.INTEGRATIONS:
            self.entry(integ)
        hubs: dict[str, list[dict[str, Any]]] = {}
        n_hubs = 0
        for integ in catalog.INTEGRATIONS:
            if integ.hub and n_devices - n_hubs > 2:
                count = 1 + n_devices // 400
                for k in range(count):
                    model = catalog.DeviceModel(integ.domain, integ.hub[0], integ.hub[1], "Bridge",
                                                (catalog.CONNECTIVITY, catalog.CONNECTED))
                    area = self.rnd.choice(area_ids) if area_ids else None
                    hub = self.add_device(model, f"{integ.title} Bridge" + (f" {k + 1}" if k else ""), area, None,
                                          per_device, hub=True)
                    hubs.setdefault(integ.domain, []).append(hub)
                    n_hubs += 1
        if n_devices - n_hubs > 1:
            service = self.add_device(catalog.SERVICE_MODEL, "Energy Prices", None, None, 2, service=True)
            n_hubs += 1
            outdoor = next(e for e, v in self.entities.items() if v["device_id"] == service["id"]
                           and "outdoor" in e)
            if "garden" in self.areas:
                self.entities[outdoor]["area_id"] = "garden"
        weights = [m.weight for m in catalog.MODELS]
        for _ in range(max(0, n_devices - n_hubs)):
            model = self.rnd.choices(catalog.MODELS, weights)[0]
            area = self.rnd.choice(area_ids) if area_ids and self.rnd.random() < 0.9 else None
            area_name = self.areas[area]["name"] if area else "Spare"
            via = self.rnd.choice(hubs[model.integration])["id"] if model.integration in hubs else None
            self.add_device(model, f"{area_name} {model.label}", area, via, per_device)
        self.helpers()

    def entry(self, integ: catalog.Integration) -> str:
        entry_id = self.hex_id()
        self.entries[entry_id] = {
            "entry_id": entry_id, "domain": integ.domain, "title": integ.title, "source": "user",
            "state": "loaded", "supports_options": integ.supports_options, "supports_remove_device": True,
            "supports_unload": True, "pref_disable_new_entities": False, "pref_disable_polling": False,
            "disabled_by": None, "reason": None,
        }
        self.entry_by_domain[integ.domain] = entry_id
        return entry_id

    def add_device(self, model: DeviceModel, name: str, area_id: str | None, via: str | None, n_entities: int,
                   hub: bool = False, service: bool = False) -> dict[str, Any]:
        n = self.names.get(name, 0) + 1
        self.names[name] = n
        if n > 1:
            name = f"{name} {n}"
        device_id = self.hex_id()
        serial = "%08X" % self.rnd.getrandbits(32)
        mac = ":".join("%02x" % self.rnd.getrandbits(8) for _ in range(6))
        odd = self.rnd.random() < 0.04
        disabled = None if hub or service or self.rnd.random() > 0.02 else "user"
        device = {
            "area_id": None if service else area_id,
            "configuration_url": f"http://{slugify(name)}.local/" if model.integration in ("shelly", "esphome") else None,
            "config_entries": [self.entry_by_domain.get(model.integration)] if model.integration in self.entry_by_domain else [],
            "connections": [["mac", mac]] if model.integration in ("shelly", "esphome", "tplink", "homewizard") or hub else [],
            "disabled_by": disabled,
            "entry_type": "service" if service else None,
            "hw_version": self.rnd.choice([None, "1.0", "rev B", "2"]),
            "id": device_id,
            "identifiers": [[model.integration, serial.lower() if not hub else f"bridge-{serial.lower()}"]],
            "manufacturer": model.manufacturer,
            "model": model.model,
            "name_by_user": self.rnd.choice(catalog.ODD_NAMES) if odd else None,
            "name": name,
            "serial_number": None if service else serial,
            "sw_version": f"{self.rnd.randint(1, 5)}.{self.rnd.randint(0, 12)}.{self.rnd.randint(0, 30)}",
            "via_device_id": via,
        }
        self.devices[device_id] = device
        specs = list(model.entities[:n_entities])
        keys = {spec.key for spec in specs}
        i = 0
        while len(specs) < n_entities:
            n = 1
            while (extra := _extra_spec(i % len(catalog.EXTRAS), n)).key in keys:
                n += 1
            specs.append(extra)
            keys.add(extra.key)
            i += 1
        for index, spec in enumerate(specs):
            self.add_entity(spec, device, model.integration, index)
        return device

    def add_entity(self, spec: EntitySpec, device: dict[str, Any] | None, platform: str, index: int) -> str:
        device_name = (device["name_by_user"] or device["name"]) if device else None
        # slugs of the parts are cached; slug(a b) == slug(a)_slug(b) for non-empty slugs
        if device_name and spec.name:
            object_id = f"{slugify(device_name)}_{slugify(spec.name)}"
        else:
            object_id = slugify(device_name or spec.name or spec.key)
        entity_id = self.unique_entity_id(spec.domain, object_id)
        r = self.rnd.random()
        disabled = "integration" if spec.disabled else None
        if device and device["disabled_by"]:
            disabled = "device"
        hidden = "user" if r < 0.03 else None
        user_name = self.rnd.choice(catalog.ODD_NAMES) if 0.03 <= r < 0.05 else None
        area = None
        if device and self.areas and 0.05 <= r < 0.10:
            area = self.rnd.choice(list(self.areas))
        options: dict[str, Any] = {"conversation": {"should_expose": spec.category is None}}
        precision = spec.gen.get("decimals") if spec.domain == "sensor" and spec.kind == "numeric" else None
        if spec.kind == "meter":
            precision = 2
        if precision is not None:
            options = {"sensor": {"suggested_display_precision": precision}, **options}
        entry = {
            "area_id": area,
            "config_entry_id": device["config_entries"][0] if device and device["config_entries"] else None,
            "device_id": device["id"] if device else None,
            "disabled_by": disabled,
            "entity_category": spec.category,
            "entity_id": entity_id,
            "has_entity_name": device is not None,
            "hidden_by": hidden,
            "icon": None,
            "id": self.hex_id(),
            "name": user_name,
            "options": options,
            "original_name": spec.name,
            "platform": platform,
            # Integrations name their diagnostic and config entities by translation key, as HA's do.
            "translation_key": spec.key if device and spec.category else None,
            "unique_id": f"{device['identifiers'][0][1]}-{spec.key}" if device else f"{platform}-{slugify(spec.name or spec.key)}",
        }
        self.entities[entity_id] = entry
        capabilities: dict[str, Any] | None = None
        if spec.state_class:
            capabilities = {"state_class": spec.state_class}
        elif spec.domain == "light":
            capabilities = {"supported_color_modes": ["brightness"]}
        self.extra[entity_id] = {"aliases": [], "capabilities": capabilities, "device_class": None,
                                 "original_device_class": spec.device_class, "original_icon": spec.icon}
        friendly = self._friendly(entry, device)
        self.sources[entity_id] = self.source(entity_id, spec, friendly)
        self.new_entities.append(entity_id)
        return entity_id

    def _friendly(self, entry: dict[str, Any], device: dict[str, Any] | None) -> str:
        name = entry["name"] or entry["original_name"]
        if entry["name"] or not device:
            return name or entry["entity_id"]
        device_name = device["name_by_user"] or device["name"]
        return f"{device_name} {name}" if name else device_name

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def _template(spec: EntitySpec, event_rate: float) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(Source keyword arguments, attributes before friendly_name, after it) per entity spec."""
        gen = dict(spec.gen)
        gen["rate"] = event_rate * gen.pop("rate_factor", 1.0)
        head: dict[str, Any] = {}
        tail: dict[str, Any] = {}
        if spec.state_class:
            head["state_class"] = spec.state_class
        if spec.unit:
            head["unit_of_measurement"] = spec.unit
        if spec.device_class:
            head["device_class"] = spec.device_class
        if spec.icon:
            head["icon"] = spec.icon
        if spec.domain == "light":
            head = {"supported_color_modes": ["brightness"], "color_mode": None, "brightness": None}
            tail = {"supported_features": 0}
        return gen, head, tail

    def source(self, entity_id: str, spec: EntitySpec, friendly: str) -> Source:
        gen, head, tail = self._template(spec, self.event_rate)
        attrs = {**head, "friendly_name": friendly, **tail}
        phase = self.rnd.uniform(0, 2 * math.pi)
        src = Source(gid=self.gid(entity_id), kind=spec.kind, phase=phase, attributes=attrs, **gen)
        if spec.kind == "numeric":
            src.base = src.base * self.rnd.uniform(0.9, 1.1)
        if spec.kind == "meter":
            src.daily = src.daily * self.rnd.uniform(0.5, 4.0)
            src.cycle_days = self.rnd.choice([14.0, 30.0, 45.0, 90.0])
            src.cycle_offset = self.rnd.uniform(0, src.cycle_days * 86400)
        return src

    def helpers(self) -> None:
        """YAML helpers (registry entries without config entry) and states without registry entries."""
        for object_id, name in (("guest_mode", "Guest mode"), ("vacation_mode", "Vacation mode")):
            spec = EntitySpec("input_boolean", object_id, name, "binary", gen=dict(rate_factor=0.05))
            eid = self._helper(spec, "input_boolean", object_id)
            self.sources[eid].attributes = {"editable": False, "friendly_name": name}
        spec = EntitySpec("input_number", "target_temperature", "Target temperature", "constant", unit="°C")
        eid = self._helper(spec, "input_number", "target_temperature")
        src = self.sources[eid]
        src.constant = "20.5"
        src.attributes = {"initial": None, "editable": False, "min": 15.0, "max": 25.0, "step": 0.5,
                          "mode": "slider", "unit_of_measurement": "°C", "icon": "mdi:thermometer",
                          "friendly_name": "Target temperature"}
        # states HA has without a registry entry (YAML without unique_id, core entities)
        self.sources["zone.home"] = Source(gid=self.gid("zone.home"), kind="constant", constant="0", attributes={
            "latitude": 52.3731, "longitude": 4.8922, "radius": 100, "passive": False, "persons": [],
            "editable": True, "icon": "mdi:home", "friendly_name": "Home"})
        self.sources["sensor.average_indoor_temperature"] = self.source(
            "sensor.average_indoor_temperature", catalog._temp(name="Average indoor temperature"),
            "Average indoor temperature")

    def _helper(self, spec: EntitySpec, platform: str, object_id: str) -> str:
        eid = f"{spec.domain}.{object_id}"
        self.entities[eid] = {
            "area_id": None, "config_entry_id": None, "device_id": None, "disabled_by": None,
            "entity_category": None, "entity_id": eid, "has_entity_name": False, "hidden_by": None,
            "icon": None, "id": self.hex_id(), "name": None, "options": {"conversation": {"should_expose": True}},
            "original_name": spec.name, "platform": platform, "translation_key": None, "unique_id": object_id,
        }
        self.extra[eid] = {"aliases": [], "capabilities": None, "device_class": None,
                           "original_device_class": None, "original_icon": None}
        self.sources[eid] = self.source(eid, spec, spec.name or object_id)
        return eid
