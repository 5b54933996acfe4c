"""Diff a registry snapshot against the stored inventory and write the difference.

One call = one transaction: insert what is new, update what changed, set ``removed_at`` on
what is gone, clear it on what reappears, and append one ``registry_changes`` row per
difference. The comparison is done in Python on tuples (stored rows are read once, in bulk)
and every write is an executemany, so a 100k-entity home syncs in seconds and an unchanged
snapshot writes nothing at all: ``last_seen`` is the time of the last sync that wrote the
row (added, changed or revived), not of every sync that saw it; a row with a null
``removed_at`` is by definition in the latest snapshot.

Quick check: ``sync_state`` keeps, per table, the fingerprint of the last snapshot synced
into it (``records.fingerprint``) and a signature of the stored rows right after (row and
removed counts, newest first_seen/last_seen/removed_at). When both still match, the table
already holds what this snapshot would write and its rows are not read or compared. Rows
added, deleted or marked removed behind the store's back change the signature; a column
edited by hand does not, so ``full_compare=True`` compares every row whatever the state says
(like rsync's ``--checksum``).

An ``added`` change row names the new record (its id, plus name, model, platform, device and
area: ``ADDED_COLUMNS``); the full record is its row in the table, and every later change
keeps the old values, so nothing is lost. It is written by the database itself from the
rows just inserted (``INSERT ... SELECT``), which keeps a first sync of 100k entities from
serialising every record twice. ``removed`` rows keep the whole record: a removed row may
be pruned later.

An entity HA lists under a new id with the registry id a stored row has (HA's
``config/entity_registry/update`` with ``new_entity_id``) is renamed in place: its row takes
the new id as its key and keeps first_seen, and one ``entity_id_changed`` row (object_id the
new id, ``old_values.entity_id`` the old one, ``new_values`` the new one and the registry id)
links the two ids in the log. An entity HA lists
without a state (``has_state`` false, e.g. a disabled one) keeps its stored unit and state
class where the snapshot has none: they come from the state, not from HA's registry.
"""

from __future__ import annotations

import bisect
import json
import operator
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from . import tables as t
from .errors import InvalidSnapshotError
from .records import COLUMNS, JSON_COLUMNS, Snapshot, normalise
from .records import fingerprint as snapshot_fingerprint

TABLES: tuple[str, ...] = ("areas", "config_entries", "devices", "entities")

# Which change a column's difference is reported as; every other column is "updated".
_KIND_OF_COLUMN: dict[str, dict[str, str]] = {
    "areas": {"name": "renamed"},
    "config_entries": {"title": "renamed", "disabled_by": "disabled"},
    "devices": {"name": "renamed", "name_by_user": "renamed", "area_id": "area_changed", "disabled_by": "disabled"},
    "entities": {
        "name": "renamed",
        "original_name": "renamed",
        "area_id": "area_changed",
        "own_area_id": "area_changed",
        "disabled_by": "disabled",
    },
}
CHANGE_TYPES = ("added", "removed", "renamed", "area_changed", "disabled", "enabled", "updated", "entity_id_changed")

#: What an ``added`` change row carries (non-null ones only), besides the id in ``object_id``;
#: added devices also carry their ``config_entries``.
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "areas": ("name",),
    "config_entries": ("domain", "title"),
    "devices": ("name", "name_by_user", "manufacturer", "model", "area_id", "via_device_id"),
    "entities": ("name", "original_name", "platform", "device_id", "area_id"),
}


class ChangeList(Sequence):
    """The ``registry_changes`` rows of one sync, in the order written, as dicts.

    Behaves as a read-only list. The ``added`` rows of a table (100k on a first sync) are
    kept as their ids and built into dicts only when looked at: the Dagster asset reads the
    count and a preview, and building them all would cost more than writing them.
    """

    def __init__(self) -> None:
        self._segments: list[list[dict[str, Any]] | _AddedRows] = []
        self._ends: list[int] = []  # cumulative length after each segment

    def _append(self, segment: list[dict[str, Any]] | _AddedRows) -> None:
        if len(segment):
            self._segments.append(segment)
            self._ends.append((self._ends[-1] if self._ends else 0) + len(segment))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("change index out of range")
        k = bisect.bisect_right(self._ends, index)
        return self._segments[k][index - (self._ends[k - 1] if k else 0)]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for segment in self._segments:
            yield from segment

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, ChangeList)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"ChangeList({len(self)} changes)"


class _AddedRows:
    """The ``added`` rows of one table, built on access (see ``ChangeList``)."""

    def __init__(self, table: str, ids: list[str], rows: Mapping[str, tuple], links: Mapping[str, tuple] | None,
                 now: datetime) -> None:
        self.table, self.ids, self.rows, self.links, self.now = table, ids, rows, links, now

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        oid = self.ids[i]
        links = None if self.links is None else self.links.get(oid, ())
        return _change(self.now, self.table, oid, "added", None, _added_payload(self.table, self.rows[oid], links))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self.ids)))


@dataclass
class SyncResult:
    """What one ``sync`` did. Count dicts are keyed by table name."""

    synced_at: datetime
    added: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    changed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    revived: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    #: The ``registry_changes`` rows written, old/new values decoded to dicts (a read-only list).
    changes: ChangeList = field(default_factory=ChangeList)
    #: Rows inserted, updated or deleted in any table (0 for an unchanged snapshot).
    rows_written: int = 0
    #: Records not stored: ``{kind, record_id, field, reason}``.
    rejects: list[dict[str, Any]] = field(default_factory=list)
    #: Records stored with a dangling reference nulled: same shape as rejects.
    warnings: list[dict[str, Any]] = field(default_factory=list)
    #: Tables the quick check found already in sync (rows not read or compared).
    quick_checked: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs: per-table added/changed/removed/revived, rejects, warnings."""
        parts = [
            f"{tb} +{self.added[tb]} ~{self.changed[tb]} -{self.removed[tb]} ^{self.revived[tb]}" for tb in TABLES
        ]
        return (
            f"{'; '.join(parts)}; {len(self.changes)} changes, {self.rows_written} rows written, "
            f"{len(self.rejects)} rejected, {len(self.warnings)} warnings"
        )


def _fetch(conn: sa.Connection, sql: str) -> list[tuple]:
    """Plain driver tuples from the connection's own cursor (inside its transaction)."""
    cur = conn.connection.cursor()
    try:
        cur.execute(sql)
        return cur.fetchall()
    finally:
        cur.close()


def _load_references(conn: sa.Connection) -> tuple[dict[str, set[str]], dict[str, Any]]:
    """Ids of every stored area, config entry and device (removed ones included: they stay as
    foreign-key targets), and each stored device's area: what ``normalise`` resolves against."""
    ids = {
        "areas": {r[0] for r in _fetch(conn, "SELECT area_id FROM areas")},
        "config_entries": {r[0] for r in _fetch(conn, "SELECT entry_id FROM config_entries")},
    }
    device_areas = dict(_fetch(conn, "SELECT device_id, area_id FROM devices"))
    ids["devices"] = set(device_areas)
    return ids, device_areas


def _load(conn: sa.Connection, table: str) -> tuple[dict[str, tuple[tuple, Any]], dict[str, tuple[str, ...]]]:
    """Every stored row of ``table`` as ``{id: (column tuple, removed_at)}``, plus device links.

    Read as raw driver tuples: SQLAlchemy's per-row result wrapping would dominate an
    unchanged re-sync. SQLite hands booleans back as 0/1, which compare equal to False/True.
    """
    rows = _fetch(conn, f"SELECT removed_at, {', '.join(COLUMNS[table])} FROM {t.INVENTORY[table][0].name}")
    stored = {r[1]: (r[1:], r[0]) for r in rows}
    links: dict[str, list[str]] = defaultdict(list)
    if table == "devices":
        for did, eid in _fetch(conn, "SELECT device_id, entry_id FROM device_config_entries"):
            links[did].append(eid)
    return stored, {d: tuple(sorted(e)) for d, e in links.items()}


def _signature(conn: sa.Connection, table: str) -> str:
    """Row and removed counts and newest timestamps of ``table``: what any insert, delete,
    removal or revival changes (in-place edits of other columns excepted)."""
    links = "(SELECT count(*) FROM device_config_entries)" if table == "devices" else "0"
    row = _fetch(
        conn,
        f"SELECT count(*), count(removed_at), max(first_seen), max(last_seen), max(removed_at), {links} "
        f"FROM {t.INVENTORY[table][0].name}",
    )[0]
    return json.dumps([None if v is None else str(v) for v in row])


def _current_rows(signature: str) -> int:
    rows, removed = json.loads(signature)[:2]
    return int(rows) - int(removed)


def _load_state(conn: sa.Connection) -> dict[str, tuple[str, str]]:
    return {r[0]: (r[1], r[2]) for r in _fetch(conn, "SELECT table_name, fingerprint, signature FROM sync_state")}


def _change(now: datetime, table: str, oid: str, kind: str, old: dict | None, new: dict | None) -> dict[str, Any]:
    return {
        "changed_at": now,
        "table_name": table,
        "object_id": oid,
        "change_type": kind,
        "old_values": old,
        "new_values": new,
    }


def _diff_columns(table: str, oid: str, old: tuple, new: tuple, now: datetime) -> list[dict[str, Any]]:
    """One change row per kind of difference between two tuples of the same record."""
    kinds = _KIND_OF_COLUMN[table]
    groups: dict[str, tuple[dict, dict]] = {}
    for col, a, b in zip(COLUMNS[table], old, new):
        if a == b:
            continue
        kind = kinds.get(col, "updated")
        if kind == "disabled":
            kind = "disabled" if a is None else "enabled" if b is None else "updated"
        if col in JSON_COLUMNS:
            a = None if a is None else json.loads(a)
            b = None if b is None else json.loads(b)
        elif col == "has_entity_name":
            a = None if a is None else bool(a)  # SQLite reads back 0/1
        o, n = groups.setdefault(kind, ({}, {}))
        o[col], n[col] = a, b
    return [_change(now, table, oid, kind, o, n) for kind, (o, n) in groups.items()]


def _check_shape(rows: Any) -> None:
    if not isinstance(rows, Mapping):
        raise InvalidSnapshotError(
            f"sync() takes RegistrySnapshot.as_rows(), a dict of lists; got {type(rows).__name__}."
        )
    for table in TABLES:
        if not isinstance(rows.get(table), list):
            # A missing list would read as "HA has none" and mark every stored row removed.
            raise InvalidSnapshotError(
                f"The snapshot has no {table!r} list (got {type(rows.get(table)).__name__}); "
                "nothing was written. Pass all four registries: areas, devices, entities, config_entries."
            )


_JSON_OF = {table: [c for c in cols if c in JSON_COLUMNS] for table, cols in COLUMNS.items()}


def _non_null(table: str, values: tuple) -> dict[str, Any]:
    """Payload of an added/removed row: its non-null columns (absent means null)."""
    out = {c: v for c, v in zip(COLUMNS[table], values) if v is not None}
    for col in _JSON_OF[table]:
        if col in out:
            out[col] = json.loads(out[col])
    if table == "entities" and "has_entity_name" in out:
        out["has_entity_name"] = bool(out["has_entity_name"])  # SQLite reads back 0/1
    return out


class _Bulk:
    """executemany of plain tuples: straight to the driver on SQLite, Core elsewhere.

    On SQLite SQLAlchemy's per-row parameter processing costs more than the inserts
    themselves (100k rows); the values here are already driver-ready (timestamps are
    pre-formatted once by the dialect's own DateTime processor). Other backends keep
    SQLAlchemy's batching (insertmanyvalues on PostgreSQL).
    """

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.written = 0

    def timestamp(self, now: datetime) -> Any:
        """``now`` as this backend's driver takes it."""
        if not self.sqlite:
            return now
        return t.TS.dialect_impl(self.conn.dialect).bind_processor(self.conn.dialect)(now)

    def insert(self, tbl: sa.Table, names: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        if self.sqlite:
            marks = ", ".join("?" * len(names))
            self.conn.exec_driver_sql(f"INSERT INTO {tbl.name} ({', '.join(names)}) VALUES ({marks})", rows)
        else:
            self.conn.execute(tbl.insert(), [dict(zip(names, r)) for r in rows])
        self.written += len(rows)

    def insert_new(self, tbl: sa.Table, names: tuple[str, ...], rows: list[tuple], ts: Any) -> None:
        """New inventory rows: ``names`` from each row, first_seen = last_seen = ``ts``, not removed.

        On SQLite the timestamp is a literal of the statement, not three more parameters bound
        per row (a first sync binds 2M of them).
        """
        if not rows:
            return
        if self.sqlite:
            stamp = "'" + str(ts).replace("'", "''") + "'"
            marks = ", ".join("?" * len(names))
            self.conn.exec_driver_sql(
                f"INSERT INTO {tbl.name} ({', '.join(names + _SEEN)}) VALUES ({marks}, {stamp}, {stamp}, NULL)", rows
            )
            self.written += len(rows)
        else:
            self.insert(tbl, names + _SEEN, [r + (ts, ts, None) for r in rows])

    def update(self, tbl: sa.Table, names: tuple[str, ...], keys: tuple[str, ...], rows: list[tuple]) -> None:
        """``UPDATE tbl SET names... WHERE keys...``; each row is set values then key values."""
        if not rows:
            return
        if self.sqlite:
            sets = ", ".join(f"{c} = ?" for c in names)
            where = " AND ".join(f"{k} = ?" for k in keys)
            self.conn.exec_driver_sql(f"UPDATE {tbl.name} SET {sets} WHERE {where}", rows)
        else:
            stmt = (
                tbl.update()
                .where(*(tbl.c[k] == sa.bindparam(f"k_{k}") for k in keys))
                .values({c: sa.bindparam(f"v_{c}") for c in names})
            )
            params = [f"v_{c}" for c in names] + [f"k_{k}" for k in keys]
            self.conn.execute(stmt, [dict(zip(params, r)) for r in rows])
        self.written += len(rows)

    def next_rowid(self, tbl: sa.Table) -> int:
        """SQLite: rows inserted from now on get rowids above this (used by ``log_added``)."""
        if not self.sqlite:
            return 0
        return self.conn.exec_driver_sql(f"SELECT coalesce(max(rowid), 0) FROM {tbl.name}").scalar_one()

    def log_added(self, table: str, ts: Any, ids: list[str], after_rowid: int) -> None:
        """One ``added`` row in ``registry_changes`` per id just inserted into ``table``, its
        payload (``ADDED_COLUMNS``, nulls left out) built by the database from the stored row."""
        if not ids:
            return
        tbl, pk = t.INVENTORY[table]
        cols = ADDED_COLUMNS[table]
        if self.sqlite:
            pairs = [f"'{c}', {c}" for c in cols]
            if table == "devices":
                pairs.append(
                    "'config_entries', json((SELECT json_group_array(entry_id) FROM (SELECT entry_id "
                    "FROM device_config_entries l WHERE l.device_id = devices.device_id ORDER BY entry_id)))"
                )
            payload = f"json_patch('{{}}', json_object({', '.join(pairs)}))"
            where, params = "rowid > ? ORDER BY rowid", (ts, after_rowid)
            marks = "?"
        else:
            pairs = [f"'{c}', {c}" for c in cols]
            if table == "devices":
                pairs.append(
                    "'config_entries', (SELECT coalesce(json_agg(entry_id ORDER BY entry_id), '[]'::json) "
                    "FROM device_config_entries l WHERE l.device_id = devices.device_id)"
                )
            payload = f"json_strip_nulls(json_build_object({', '.join(pairs)}))::text"
            where, params = f"{pk} = ANY(%(ids)s) ORDER BY {pk}", {"ts": ts, "ids": ids}
            marks = "%(ts)s"
        self.conn.exec_driver_sql(
            f"INSERT INTO registry_changes ({', '.join(_CHANGE_COLUMNS)}) "
            f"SELECT {marks}, '{table}', {pk}, 'added', NULL, {payload} FROM {tbl.name} WHERE {where}",
            params,
        )
        self.written += len(ids)

    def delete(self, tbl: sa.Table, keys: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        if self.sqlite:
            where = " AND ".join(f"{k} = ?" for k in keys)
            self.conn.exec_driver_sql(f"DELETE FROM {tbl.name} WHERE {where}", rows)
        else:
            stmt = tbl.delete().where(*(tbl.c[k] == sa.bindparam(f"k_{k}") for k in keys))
            self.conn.execute(stmt, [dict(zip([f"k_{k}" for k in keys], r)) for r in rows])
        self.written += len(rows)


_SEEN = ("first_seen", "last_seen", "removed_at")
_CHANGE_COLUMNS = ("changed_at", "table_name", "object_id", "change_type", "old_values", "new_values")


def _added_payload(table: str, values: tuple, links: tuple[str, ...] | None) -> dict[str, Any]:
    """Python's copy of what ``_Bulk.log_added`` stores for one added record."""
    out = {c: v for c, v in zip(ADDED_COLUMNS[table], _ADDED_GET[table](values)) if v is not None}
    if links is not None:
        out["config_entries"] = list(links)
    return out


def _tuple_getter(indexes: list[int]) -> Any:
    """``operator.itemgetter`` that returns a tuple even for one index."""
    if len(indexes) == 1:
        return lambda values, i=indexes[0]: (values[i],)
    return operator.itemgetter(*indexes)


_ADDED_GET = {table: _tuple_getter([COLUMNS[table].index(c) for c in cols]) for table, cols in ADDED_COLUMNS.items()}


_REGISTRY_ID = COLUMNS["entities"].index("registry_id")
_KEPT_WITHOUT_STATE = tuple(COLUMNS["entities"].index(c) for c in ("unit_of_measurement", "state_class"))


def _entity_renames(
    old_rows: Mapping[str, tuple[tuple, Any]], new_rows: Mapping[str, tuple], rejected: set[str]
) -> list[tuple[str, str]]:
    """``(stored id, new id)`` of each entity HA now lists under another id with the same
    registry id: the same entity, renamed (``config/entity_registry/update`` ``new_entity_id``).

    A stored row matches when HA no longer lists its id with that registry id; of several
    stored rows with one registry id (only possible in old data) the current one, else the
    one removed last, is the entity. No rename when the new id already holds that registry id.
    """
    new_by_registry: dict[str, str | None] = {}
    for oid, values in new_rows.items():
        rid = values[_REGISTRY_ID]
        if rid is not None:
            # A registry id HA lists twice names no one entity: no rename for it.
            new_by_registry[rid] = None if rid in new_by_registry else oid
    best: dict[str, tuple[str, Any]] = {}
    for oid, (values, removed_at) in old_rows.items():
        rid = values[_REGISTRY_ID]
        target = new_by_registry.get(rid) if rid is not None else None
        if target is None or target == oid or oid in rejected:
            continue
        kept = best.get(rid)
        if kept is None or _later(removed_at, kept[1]):
            best[rid] = (oid, removed_at)
    renames = []
    for rid, (oid, _) in best.items():
        target = new_by_registry[rid]
        held = old_rows.get(target)
        if held is None or held[0][_REGISTRY_ID] != rid:
            renames.append((oid, target))
    return sorted(renames)


def _later(removed_at: Any, other: Any) -> bool:
    """True when a row removed at ``removed_at`` (None: current) is newer than one at ``other``."""
    if other is None:
        return False
    return removed_at is None or removed_at > other


def _keep_state_columns(
    new_rows: dict[str, tuple], old_rows: Mapping[str, tuple[tuple, Any]], stateless: set[str]
) -> dict[str, tuple]:
    """``new_rows`` with the stored unit and state class of each entity HA lists without a state
    where the snapshot has none (they come from the state; a value HA gives still wins)."""
    kept: dict[str, tuple] = {}
    for oid in stateless:
        old, values = old_rows.get(oid), new_rows[oid]
        if old is None:
            continue
        patched = list(values)
        for i in _KEPT_WITHOUT_STATE:
            if patched[i] is None:
                patched[i] = old[0][i]
        if patched != list(values):
            kept[oid] = tuple(patched)
    return {**new_rows, **kept} if kept else new_rows


def sync_snapshot(
    conn: sa.Connection, rows: Mapping[str, Any], now: datetime, *, full_compare: bool = False
) -> SyncResult:
    """Bring the stored inventory in line with ``rows`` inside the caller's transaction.

    ``full_compare`` compares every stored row even where the quick check (module docstring)
    says the table is already in sync.
    """
    _check_shape(rows)
    stored_ids, stored_device_areas = _load_references(conn)
    snap: Snapshot = normalise(rows, stored_ids, stored_device_areas)
    result = SyncResult(synced_at=now)
    result.rejects = [i.as_dict() for i in snap.rejects]
    result.warnings = [i.as_dict() for i in snap.warnings]
    state = _load_state(conn)
    bulk = _Bulk(conn)
    ts = bulk.timestamp(now)
    changes: list[dict[str, Any]] = []  # every change but "added", written last
    new_state: dict[str, tuple[str, str]] = {}

    for table in TABLES:
        tbl, pk = t.INVENTORY[table]
        fingerprint = snapshot_fingerprint(table, snap)
        signature = _signature(conn, table)
        if not full_compare and state.get(table) == (fingerprint, signature):
            result.quick_checked.append(table)
            result.unchanged[table] = _current_rows(signature)
            continue
        written_before = bulk.written
        old_rows, stored_links = _load(conn, table)
        cols = COLUMNS[table]
        new_rows = snap.rows[table]
        is_devices = table == "devices"
        link_inserts: list[tuple[str, str]] = []
        link_deletes: list[tuple[str, str]] = []
        renamed: set[str] = set()
        if table == "entities":
            renamed = _rename_entities(bulk, old_rows, new_rows, snap.rejected_ids[table], ts, now, changes, result)
            if snap.stateless:
                new_rows = _keep_state_columns(new_rows, old_rows, snap.stateless)

        # New ids in key order: appending to the table's B-tree is cheaper than splitting pages.
        added = sorted(new_rows.keys() - old_rows.keys())
        inserts = [new_rows[oid] for oid in added]
        if is_devices:
            link_inserts += [(oid, e) for oid in added for e in snap.links.get(oid, ())]
        result.added[table] = len(added)

        updates: list[tuple] = []
        for oid, (old_values, removed_at) in old_rows.items():
            values = new_rows.get(oid)
            if values is None:
                continue
            link_new = link_old = ()
            if is_devices:
                link_new, link_old = snap.links.get(oid, ()), stored_links.get(oid, ())
            if removed_at is None and old_values == values and link_new == link_old:
                if oid in renamed:
                    result.changed[table] += 1  # the key and last_seen were written by the rename
                else:
                    result.unchanged[table] += 1
                continue
            if link_new != link_old:
                link_deletes += [(oid, e) for e in sorted(set(link_old) - set(link_new))]
                link_inserts += [(oid, e) for e in sorted(set(link_new) - set(link_old))]
            updates.append(values[1:] + (ts, None, oid))
            if removed_at is not None:
                before = {**_non_null(table, old_values), "removed_at": _iso(removed_at)}
                after = _non_null(table, values)
                if is_devices:
                    before["config_entries"], after["config_entries"] = list(link_old), list(link_new)
                changes.append(_change(now, table, oid, "added", before, after))
                result.revived[table] += 1
                continue
            diffs = _diff_columns(table, oid, old_values, values, now)
            if link_new != link_old:
                upd = next((c for c in diffs if c["change_type"] == "updated"), None)
                if upd is None:
                    upd = _change(now, table, oid, "updated", {}, {})
                    diffs.append(upd)
                upd["old_values"]["config_entries"] = list(link_old)
                upd["new_values"]["config_entries"] = list(link_new)
            changes.extend(diffs)
            result.changed[table] += 1

        removals: list[tuple] = []
        rejected = snap.rejected_ids[table]
        for oid, (old_values, removed_at) in old_rows.items():
            # A record HA still lists but we could not read this time is not a removal.
            if removed_at is None and oid not in new_rows and oid not in rejected:
                removals.append((ts, oid))
                changes.append(_change(now, table, oid, "removed", _non_null(table, old_values), None))
                result.removed[table] += 1

        after_rowid = bulk.next_rowid(tbl) if added else 0
        bulk.insert_new(tbl, cols, inserts, ts)
        bulk.update(tbl, cols[1:] + ("last_seen", "removed_at"), (pk,), updates)
        bulk.update(tbl, ("removed_at",), (pk,), removals)
        if is_devices:
            # Links of new devices can only go in once their device row exists.
            lt = t.device_config_entries
            bulk.delete(lt, ("device_id", "entry_id"), link_deletes)
            bulk.insert(lt, ("device_id", "entry_id"), link_inserts)
        bulk.log_added(table, ts, added, after_rowid)
        result.changes._append(_AddedRows(table, added, new_rows, snap.links if is_devices else None, now))
        if bulk.written != written_before:
            signature = _signature(conn, table)
        if state.get(table) != (fingerprint, signature):
            new_state[table] = (fingerprint, signature)

    bulk.insert(
        t.registry_changes,
        _CHANGE_COLUMNS,
        [
            (ts, c["table_name"], c["object_id"], c["change_type"], _dumps(c["old_values"]), _dumps(c["new_values"]))
            for c in changes
        ],
    )
    result.changes._append(changes)
    result.rows_written = bulk.written
    if new_state:
        # Bookkeeping, not inventory: not counted in rows_written.
        conn.execute(t.sync_state.delete().where(t.sync_state.c.table_name.in_(list(new_state))))
        conn.execute(
            t.sync_state.insert(),
            [{"table_name": k, "fingerprint": f, "signature": g, "synced_at": now} for k, (f, g) in new_state.items()],
        )
    return result


def _rename_entities(
    bulk: _Bulk,
    old_rows: dict[str, tuple[tuple, Any]],
    new_rows: Mapping[str, tuple],
    rejected: set[str],
    ts: Any,
    now: datetime,
    changes: list[dict[str, Any]],
    result: SyncResult,
) -> set[str]:
    """Give renamed entities their new id in place (``_entity_renames``); returns the new ids.

    The row keeps its first_seen and every other column; one ``entity_id_changed`` row is
    logged under the new id with the old id in ``old_values`` (and the registry id in
    ``new_values``). A stored row that holds a new
    id for another entity HA no longer lists under it is deleted to make room (logged as
    ``removed`` with its whole record if it was current, as ``prune`` would later). Ids move
    through temporary keys when one rename takes an id another one frees (a swap or a chain).
    ``old_rows`` is re-keyed to match what is stored.
    """
    renames = _entity_renames(old_rows, new_rows, rejected)
    if not renames:
        return set()
    tbl = t.entities
    sources = {old for old, _ in renames}
    evicted = [new for _, new in renames if new in old_rows and new not in sources]
    for oid in evicted:
        values, removed_at = old_rows.pop(oid)
        if removed_at is None:
            changes.append(_change(now, "entities", oid, "removed", _non_null("entities", values), None))
            result.removed["entities"] += 1
    bulk.delete(tbl, ("entity_id",), [(oid,) for oid in evicted])
    if any(new in sources for _, new in renames):
        parked = [(f"~renaming~{i}", old, new) for i, (old, new) in enumerate(renames)]
        bulk.update(tbl, ("entity_id",), ("entity_id",), [(tmp, old) for tmp, old, _ in parked])
        bulk.update(tbl, ("entity_id", "last_seen"), ("entity_id",), [(new, ts, tmp) for tmp, _, new in parked])
    else:
        bulk.update(tbl, ("entity_id", "last_seen"), ("entity_id",), [(new, ts, old) for old, new in renames])
    moved = {new: old_rows.pop(old) for old, new in renames}
    for new, (values, removed_at) in moved.items():
        old_rows[new] = ((new, *values[1:]), removed_at)
    for old, new in renames:
        # The registry id (unchanged) rides along: it ties every id of one entity together.
        after = {"entity_id": new, "registry_id": old_rows[new][0][_REGISTRY_ID]}
        changes.append(_change(now, "entities", new, "entity_id_changed", {"entity_id": old}, after))
    return set(moved)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


# One encoder for all rows: json.dumps with options builds a new encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else _ENCODE(value)
