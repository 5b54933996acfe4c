"""Validation and normalisation of HA registry rows into the stored column tuples.

Input is ``RegistrySnapshot.as_rows()``: lists of plain dicts with HA's own field names.
Every record becomes one tuple of column values (in ``COLUMNS[table]`` order) or one reject
with a reason; dangling references (an area, device or config entry nobody lists) are
nulled so foreign keys hold, and reported as warnings. Written as tight loops over dicts
because a large home has 100k entities and this runs on every discovery.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Longest id (and indexed string) accepted: the width of the key columns.
MAX_ID_LENGTH = 255
#: Longest free-text value accepted (names, titles, URLs); a 10 kB name is a broken record.
MAX_TEXT_LENGTH = 1024
#: Longest canonical JSON accepted for list-valued fields (identifiers, connections, aliases).
MAX_JSON_LENGTH = 8192

# HA's own rule (homeassistant.core.valid_entity_id): lowercase domain.object_id, no "__",
# no leading/trailing "_". Anything else cannot come from a real registry.
VALID_ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")

_ID, _TEXT, _JSON, _BOOL = "id", "text", "json", "bool"

# (column, HA field, kind) per table, primary key first. Kinds: _ID (<= 255 chars, indexed),
# _TEXT (<= 1024 chars), _JSON (list, stored as canonical JSON), _BOOL.
_SPECS: dict[str, list[tuple[str, str, str]]] = {
    "areas": [
        ("area_id", "area_id", _ID),
        ("name", "name", _TEXT),
        ("aliases", "aliases", _JSON),
        ("picture", "picture", _TEXT),
    ],
    "config_entries": [
        ("entry_id", "entry_id", _ID),
        ("domain", "domain", _ID),
        ("title", "title", _TEXT),
        ("source", "source", _TEXT),
        ("state", "state", _TEXT),
        ("disabled_by", "disabled_by", _TEXT),
    ],
    "devices": [
        ("device_id", "id", _ID),
        ("name", "name", _TEXT),
        ("name_by_user", "name_by_user", _TEXT),
        ("manufacturer", "manufacturer", _ID),
        ("model", "model", _ID),
        ("sw_version", "sw_version", _TEXT),
        ("hw_version", "hw_version", _TEXT),
        ("serial_number", "serial_number", _TEXT),
        ("identifiers", "identifiers", _JSON),
        ("connections", "connections", _JSON),
        ("entry_type", "entry_type", _TEXT),
        ("disabled_by", "disabled_by", _TEXT),
        ("area_id", "area_id", _ID),
        ("via_device_id", "via_device_id", _ID),
        ("configuration_url", "configuration_url", _TEXT),
    ],
    "entities": [
        ("entity_id", "entity_id", _ID),
        ("registry_id", "id", _ID),
        ("unique_id", "unique_id", _TEXT),
        ("platform", "platform", _ID),
        ("domain", "", _ID),  # derived from entity_id
        ("device_id", "device_id", _ID),
        ("config_entry_id", "config_entry_id", _ID),
        ("area_id", "", _ID),  # derived: the entity's own area, else its device's
        ("own_area_id", "area_id", _ID),
        ("original_name", "original_name", _TEXT),
        ("name", "name", _TEXT),
        ("device_class", "device_class", _TEXT),
        ("original_device_class", "original_device_class", _TEXT),
        ("unit_of_measurement", "unit_of_measurement", _TEXT),
        ("state_class", "state_class", _TEXT),
        ("entity_category", "entity_category", _TEXT),
        ("disabled_by", "disabled_by", _TEXT),
        ("hidden_by", "hidden_by", _TEXT),
        ("has_entity_name", "has_entity_name", _BOOL),
    ],
}

#: Stored columns per table, primary key first (the tuple layout of a normalised record).
COLUMNS: dict[str, tuple[str, ...]] = {t: tuple(c for c, _, _ in spec) for t, spec in _SPECS.items()}
#: Columns holding canonical JSON text, decoded for change payloads and query results.
JSON_COLUMNS: frozenset[str] = frozenset(c for spec in _SPECS.values() for c, _, k in spec if k == _JSON)
#: HA's id field per table (what a reject names).
ID_FIELDS: dict[str, str] = {t: spec[0][1] for t, spec in _SPECS.items()}
_LIMITS = {_ID: MAX_ID_LENGTH, _TEXT: MAX_TEXT_LENGTH}


@dataclass
class Issue:
    """A rejected record or a repaired reference: which table, which record, why."""

    kind: str
    record_id: str | None
    field: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for run metadata and logs."""
        return {"kind": self.kind, "record_id": self.record_id, "field": self.field, "reason": self.reason}


@dataclass
class Snapshot:
    """A validated snapshot: per table ``{id: column tuple}``, device links, and issues."""

    rows: dict[str, dict[str, tuple]] = field(default_factory=dict)
    links: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rejects: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)


def canonical_json(value: Any) -> str:
    """Compact JSON with list items in a stable order (HA keeps these as sets)."""
    if isinstance(value, list):
        value = sorted(value, key=lambda item: json.dumps(item, sort_keys=True))
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _validate(table: str, items: Iterable[Any], snap: Snapshot) -> dict[str, tuple]:
    """Check types and lengths; return ``{id: tuple}`` with derived columns still None."""
    spec = _SPECS[table]
    pk_field = spec[0][1]
    out: dict[str, tuple] = {}
    rejects = snap.rejects
    is_entities = table == "entities"
    for rec in items:
        if type(rec) is not dict:
            rejects.append(Issue(table, None, None, f"expected an object, got {_type_name(rec)}"))
            continue
        rid = rec.get(pk_field)
        if not isinstance(rid, str) or not rid:
            reason = "missing id" if rid in (None, "") else f"id must be a string, got {_type_name(rid)}"
            rejects.append(Issue(table, None if rid is None else str(rid)[:80], pk_field, reason))
            continue
        if rid in out:
            rejects.append(Issue(table, rid[:MAX_ID_LENGTH], pk_field, "duplicate id; the first record was kept"))
            continue
        if is_entities and not VALID_ENTITY_ID.match(rid):
            rejects.append(
                Issue(table, rid[:MAX_ID_LENGTH], pk_field,
                      "not a valid entity id: HA ids are domain.object_id in lowercase a-z, 0-9 and _")
            )
            continue
        values: list[Any] = []
        bad: Issue | None = None
        for column, key, kind in spec:
            v = rec.get(key) if key else None
            if v is None:
                values.append(None)
            elif kind is _TEXT or kind is _ID:
                if type(v) is not str:
                    # HA has stored numeric unique_ids; they identify, so keep them as text.
                    if column == "unique_id" and type(v) in (int, float):
                        v = str(v)
                    else:
                        bad = Issue(table, rid[:MAX_ID_LENGTH], key, f"must be a string, got {_type_name(v)}")
                        break
                if len(v) > _LIMITS[kind]:
                    bad = Issue(table, rid[:MAX_ID_LENGTH], key,
                                f"is {len(v)} characters long; the limit is {_LIMITS[kind]}")
                    break
                values.append(v)
            elif kind is _JSON:
                if type(v) is not list:
                    bad = Issue(table, rid[:MAX_ID_LENGTH], key, f"must be a list, got {_type_name(v)}")
                    break
                if not v:
                    values.append("[]")
                    continue
                try:
                    text = canonical_json(v)
                except (TypeError, ValueError) as exc:
                    bad = Issue(table, rid[:MAX_ID_LENGTH], key, f"is not JSON: {exc}")
                    break
                if len(text) > MAX_JSON_LENGTH:
                    bad = Issue(table, rid[:MAX_ID_LENGTH], key,
                                f"is {len(text)} characters of JSON; the limit is {MAX_JSON_LENGTH}")
                    break
                values.append(text)
            else:  # _BOOL
                if type(v) is not bool:
                    bad = Issue(table, rid[:MAX_ID_LENGTH], key, f"must be true or false, got {_type_name(v)}")
                    break
                values.append(v)
        if bad is not None:
            rejects.append(bad)
            continue
        out[rid] = tuple(values)
    return out


def _items(rows: Mapping[str, Any], table: str, snap: Snapshot) -> list[Any]:
    items = rows.get(table)
    if items is None:
        return []
    if not isinstance(items, list):
        snap.rejects.append(Issue(table, None, None, f"expected a list of records, got {_type_name(items)}"))
        return []
    return items


def normalise(
    rows: Mapping[str, Any],
    stored_ids: Mapping[str, set[str]],
    stored_device_areas: Mapping[str, str | None],
) -> Snapshot:
    """Validate a snapshot and resolve its references against itself and the stored rows.

    ``stored_ids`` holds every id already in the database per table (removed rows included:
    they stay as foreign-key targets); ``stored_device_areas`` the stored area of each device,
    used for the effective area of an entity whose device HA no longer lists.
    """
    snap = Snapshot()
    areas = _validate("areas", _items(rows, "areas", snap), snap)
    entries = _validate("config_entries", _items(rows, "config_entries", snap), snap)
    known_areas = areas.keys() | stored_ids.get("areas", set())
    known_entries = entries.keys() | stored_ids.get("config_entries", set())

    device_items = _items(rows, "devices", snap)
    devices = _validate("devices", device_items, snap)
    known_devices = devices.keys() | stored_ids.get("devices", set())
    warn = snap.warnings.append
    ai, vi = COLUMNS["devices"].index("area_id"), COLUMNS["devices"].index("via_device_id")
    for did, t in list(devices.items()):
        area, via = t[ai], t[vi]
        if (area is not None and area not in known_areas) or (via is not None and via not in known_devices):
            lst = list(t)
            if area is not None and area not in known_areas:
                warn(Issue("devices", did, "area_id", f"area {area!r} is not in HA's area registry; stored as no area"))
                lst[ai] = None
            if via is not None and via not in known_devices:
                warn(Issue("devices", did, "via_device_id",
                           f"device {via!r} is not in HA's device registry; stored as no via device"))
                lst[vi] = None
            devices[did] = tuple(lst)
    # Links come from the raw records: the list field is not a column of ``devices``.
    links: dict[str, tuple[str, ...]] = {}
    for rec in device_items:
        did = rec.get("id") if type(rec) is dict else None
        if did not in devices or did in links:
            continue
        raw = rec.get("config_entries") or []
        if not isinstance(raw, list):
            warn(Issue("devices", did, "config_entries", f"must be a list, got {_type_name(raw)}; no links stored"))
            raw = []
        ok: set[str] = set()
        for entry in raw:
            if isinstance(entry, str) and entry in known_entries:
                ok.add(entry)
            else:
                warn(Issue("devices", did, "config_entries",
                           f"config entry {entry!r} is not in HA's config entries; link not stored"))
        links[did] = tuple(sorted(ok))

    entities = _validate("entities", _items(rows, "entities", snap), snap)
    cols = COLUMNS["entities"]
    di, dev_i, eai, own_i = cols.index("domain"), cols.index("device_id"), cols.index("area_id"), cols.index("own_area_id")
    device_area = {did: t[ai] for did, t in devices.items()}
    for eid, t in entities.items():
        lst = list(t)
        lst[di] = eid.partition(".")[0]
        dev, own = lst[dev_i], lst[own_i]
        if dev is not None and dev not in known_devices:
            warn(Issue("entities", eid, "device_id", f"device {dev!r} is not in HA's device registry; stored as no device"))
            dev = lst[dev_i] = None
        if own is not None and own not in known_areas:
            warn(Issue("entities", eid, "area_id", f"area {own!r} is not in HA's area registry; stored as no area"))
            own = lst[own_i] = None
        if own is not None:
            lst[eai] = own
        elif dev is not None:
            lst[eai] = device_area[dev] if dev in device_area else stored_device_areas.get(dev)
        entities[eid] = tuple(lst)

    snap.rows = {"areas": areas, "config_entries": entries, "devices": devices, "entities": entities}
    snap.links = links
    return snap
