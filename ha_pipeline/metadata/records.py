"""Validation and normalisation of HA registry rows into the stored column tuples.

Input is ``RegistrySnapshot.as_rows()``: lists of plain dicts with HA's own field names.
Every record becomes one tuple of column values (in ``COLUMNS[table]`` order) or one reject
with a reason; dangling references (an area, device or config entry nobody lists) are
nulled so foreign keys hold, and reported as warnings. Written as tight loops over dicts
because a large home has 100k entities and this runs on every discovery.
"""

from __future__ import annotations

import hashlib
import io
import json
import operator
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ha_pipeline.entity_id import all_valid_entity_ids, valid_entity_id

#: Longest id (and indexed string) accepted: the width of the key columns.
MAX_ID_LENGTH = 255
#: Longest free-text value accepted (names, titles, URLs); a 10 kB name is a broken record.
MAX_TEXT_LENGTH = 1024
#: Longest canonical JSON accepted for list-valued fields (identifiers, connections, aliases).
MAX_JSON_LENGTH = 8192

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
_STR_TYPES = frozenset({str, type(None)})
_BOOL_TYPES = frozenset({bool, type(None)})


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
    #: Ids HA listed but whose record was rejected: left as stored, not marked removed.
    rejected_ids: dict[str, set[str]] = field(default_factory=lambda: {t: set() for t in _SPECS})
    #: Entities HA listed without a state (``has_state`` false, e.g. disabled ones): their unit
    #: and state class say nothing, so ``sync`` keeps the stored ones where these are null.
    stateless: set[str] = field(default_factory=set)


# Built once: json.dumps with options builds a new encoder on every call.
_SORT_KEY = json.JSONEncoder(sort_keys=True).encode
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(value: Any) -> str:
    """Compact JSON with list items in a stable order (HA keeps these as sets)."""
    if isinstance(value, list) and len(value) > 1:
        value = sorted(value, key=_SORT_KEY)
    return _CANONICAL(value)


def _storable(text: str) -> bool:
    """True when every backend can store ``text``: PostgreSQL refuses NUL characters and
    no driver can encode a lone surrogate (JSON's "\\ud800" decodes to one)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _type_name(value: Any) -> str:
    return type(value).__name__


def _validate(table: str, items: Iterable[Any], snap: Snapshot) -> tuple[list[str], dict[str, list[Any]]]:
    """Check types and lengths; return the kept ids and their values column by column.

    Works column-wise: the common all-valid case is checked with C-level ``map``/``set``
    calls, and only a column that fails falls back to a per-record scan to name the culprits.
    Derived columns (no HA field) come back as all-None lists for the caller to fill.
    """
    spec = _SPECS[table]
    pk_field = spec[0][1]
    rejects = snap.rejects
    items = list(items)
    ids = [r.get(pk_field) for r in items] if set(map(type, items)) <= {dict} else []
    if len(ids) == len(items) and set(map(type, ids)) <= {str} and "" not in ids and len(set(ids)) == len(ids):
        keep: list[dict] = items  # the usual case: every record a dict with a unique string id
    else:
        keep, ids = [], []
        seen: set[str] = set()
        for rec in items:
            if type(rec) is not dict:
                rejects.append(Issue(table, None, None, f"expected an object, got {_type_name(rec)}"))
                continue
            rid = rec.get(pk_field)
            if type(rid) is not str or not rid:
                reason = "missing id" if rid in (None, "") else f"id must be a string, got {_type_name(rid)}"
                rejects.append(Issue(table, None if rid is None else str(rid)[:80], pk_field, reason))
            elif rid in seen:
                rejects.append(Issue(table, rid[:MAX_ID_LENGTH], pk_field, "duplicate id; the first record was kept"))
            else:
                seen.add(rid)
                keep.append(rec)
                ids.append(rid)
    if table == "entities":
        # HA itself never makes such ids, but SQL can hold any text: keep the record (nothing is
        # lost) and say so, rather than dropping an entity a newer HA might allow.
        for i, ok in enumerate(() if all_valid_entity_ids(ids) else map(valid_entity_id, ids)):
            if not ok:
                snap.warnings.append(
                    Issue(table, ids[i][:MAX_ID_LENGTH], pk_field,
                          "stored, but not a valid HA entity id (domain.object_id in lowercase a-z, 0-9 and _)")
                )

    keys = [key for _, key, _ in spec if key]
    try:
        # as_rows() always carries every field, so one C-level getter per record is the fast path.
        raw = list(zip(*map(operator.itemgetter(*keys), keep))) if keep else [[] for _ in keys]
    except KeyError:
        raw = [[r.get(key) for r in keep] for key in keys]
    by_key = dict(zip(keys, raw))

    bad: dict[int, Issue] = {}  # record index -> first problem found
    columns: dict[str, list[Any]] = {}
    for column, key, kind in spec:
        if not key:
            columns[column] = [None] * len(keep)
            continue
        vals = list(by_key[key])
        types = set(map(type, vals))
        if kind is _TEXT or kind is _ID:
            limit = _LIMITS[kind]
            if not types <= _STR_TYPES:
                for i, v in enumerate(vals):
                    if v is None or type(v) is str:
                        continue
                    # HA has stored numeric unique_ids; they identify, so keep them as text.
                    if column == "unique_id" and type(v) in (int, float):
                        vals[i] = str(v)
                    else:
                        bad.setdefault(i, Issue(table, ids[i][:MAX_ID_LENGTH], key, f"must be a string, got {_type_name(v)}"))
                        vals[i] = None
            if max(map(len, filter(None, vals)), default=0) > limit:
                for i, v in enumerate(vals):
                    if v is not None and len(v) > limit:
                        bad.setdefault(i, Issue(table, ids[i][:MAX_ID_LENGTH], key,
                                                f"is {len(v)} characters long; the limit is {limit}"))
            if not _storable("".join(filter(None, vals))):
                for i, v in enumerate(vals):
                    if v is not None and not _storable(v):
                        bad.setdefault(i, Issue(table, ids[i][:MAX_ID_LENGTH], key,
                                                "contains a NUL character or invalid unicode (a lone surrogate)"))
        elif kind is _JSON:
            for i, v in enumerate(vals):
                if v is None:
                    continue
                if type(v) is not list:
                    bad.setdefault(i, Issue(table, ids[i][:MAX_ID_LENGTH], key, f"must be a list, got {_type_name(v)}"))
                    continue
                if not v:
                    vals[i] = "[]"
                    continue
                try:
                    text = canonical_json(v)
                except (TypeError, ValueError) as exc:
                    bad.setdefault(i, Issue(table, ids[i][:MAX_ID_LENGTH], key, f"is not JSON: {exc}"))
                    continue
                if not _storable(text):
                    bad.setdefault(i, Issue(table, ids[i][:MAX_ID_LENGTH], key,
                                            "contains invalid unicode (a lone surrogate)"))
                elif len(text) > MAX_JSON_LENGTH:
                    bad.setdefault(i, Issue(table, ids[i][:MAX_ID_LENGTH], key,
                                            f"is {len(text)} characters of JSON; the limit is {MAX_JSON_LENGTH}"))
                vals[i] = text
        elif not types <= _BOOL_TYPES:
            for i, v in enumerate(vals):
                if v is not None and type(v) is not bool:
                    bad.setdefault(i, Issue(table, ids[i][:MAX_ID_LENGTH], key, f"must be true or false, got {_type_name(v)}"))
        columns[column] = vals

    if bad:
        rejects.extend(bad[i] for i in sorted(bad))
        snap.rejected_ids[table].update(ids[i] for i in bad)
        ids = [rid for i, rid in enumerate(ids) if i not in bad]
        columns = {c: [v for i, v in enumerate(vals) if i not in bad] for c, vals in columns.items()}
    return ids, columns


def _freeze(table: str, ids: list[str], columns: dict[str, list[Any]]) -> dict[str, tuple]:
    """``{id: tuple}`` in ``COLUMNS[table]`` order."""
    if not ids:
        return {}
    return dict(zip(ids, zip(*(columns[c] for c in COLUMNS[table]))))


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
    warn = snap.warnings.append
    area_ids, area_cols = _validate("areas", _items(rows, "areas", snap), snap)
    entry_ids, entry_cols = _validate("config_entries", _items(rows, "config_entries", snap), snap)
    known_areas = set(area_ids) | stored_ids.get("areas", set())
    known_entries = set(entry_ids) | stored_ids.get("config_entries", set())

    device_items = _items(rows, "devices", snap)
    dev_ids, dev_cols = _validate("devices", device_items, snap)
    known_devices = set(dev_ids) | stored_ids.get("devices", set())

    def resolve(table: str, ids: list[str], refs: list[Any], known: set[str], field: str, what: str) -> None:
        """Null references to ids nobody lists, so foreign keys hold; warn about each."""
        unknown = set(refs) - known
        unknown.discard(None)
        if not unknown:  # the usual case, decided without a Python-level loop
            return
        for i, ref in enumerate(refs):
            if ref is not None and ref not in known:
                warn(Issue(table, ids[i], field, f"{what} {ref!r} is not in HA's {what} registry; stored as none"))
                refs[i] = None

    resolve("devices", dev_ids, dev_cols["area_id"], known_areas, "area_id", "area")
    resolve("devices", dev_ids, dev_cols["via_device_id"], known_devices, "via_device_id", "device")

    # Links come from the raw records: the list field is not a column of ``devices``.
    kept_devices = set(dev_ids)
    links: dict[str, tuple[str, ...]] = {}
    for rec in device_items:
        did = rec.get("id") if type(rec) is dict else None
        if type(did) is not str or did not in kept_devices or did in links:
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

    entity_items = _items(rows, "entities", snap)
    ent_ids, ent_cols = _validate("entities", entity_items, snap)
    stateless = {rec.get("entity_id") for rec in entity_items if type(rec) is dict and rec.get("has_state") is False}
    snap.stateless = stateless.intersection(ent_ids) if stateless else set()
    ent_cols["domain"] = [eid.partition(".")[0] for eid in ent_ids]
    resolve("entities", ent_ids, ent_cols["device_id"], known_devices, "device_id", "device")
    resolve("entities", ent_ids, ent_cols["own_area_id"], known_areas, "area_id", "area")
    device_area = {**stored_device_areas, **dict(zip(dev_ids, dev_cols["area_id"]))}
    ent_cols["area_id"] = [
        own if own is not None else device_area.get(dev) if dev is not None else None
        for own, dev in zip(ent_cols["own_area_id"], ent_cols["device_id"])
    ]

    snap.rows = {
        "areas": _freeze("areas", area_ids, area_cols),
        "config_entries": _freeze("config_entries", entry_ids, entry_cols),
        "devices": _freeze("devices", dev_ids, dev_cols),
        "entities": _freeze("entities", ent_ids, ent_cols),
    }
    snap.links = links
    return snap


def fingerprint(table: str, snap: Snapshot) -> str:
    """A stable digest of what ``snap`` holds for ``table``, independent of HA's list order.

    Covers the stored columns (and their layout), the device links and the ids that were
    rejected (those are left as stored rather than marked removed) and the entities without a
    state (their unit and state class are kept), so two snapshots with
    the same fingerprint make ``sync`` write the same rows. The rows are serialised by the C
    pickler in fast mode, which writes every value out in full (no memo of shared objects),
    so equal values give equal bytes whichever objects hold them.
    """
    rows = snap.rows[table]
    ids = sorted(rows)
    extra: tuple = (table, COLUMNS[table], sorted(snap.rejected_ids[table]))
    if table == "devices":
        extra += (sorted(snap.links.items()),)
    elif table == "entities":
        extra += (sorted(snap.stateless),)
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.fast = True
    pickler.dump((extra, [rows[i] for i in ids]))  # each row starts with its id
    return hashlib.blake2b(buffer.getbuffer(), digest_size=20).hexdigest()
