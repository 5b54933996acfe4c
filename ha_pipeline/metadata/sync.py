"""Diff a registry snapshot against the stored inventory and write the difference.

One call = one transaction: insert what is new, update what changed, set ``removed_at`` on
what is gone, clear it on what reappears, and append one ``registry_changes`` row per
difference. The comparison is done in Python on tuples (stored rows are read once, in bulk)
and every write is an executemany, so a 100k-entity home syncs in seconds and an unchanged
snapshot writes nothing at all: ``last_seen`` is the time of the last sync that wrote the
row (added, changed or revived), not of every sync that saw it; a row with a null
``removed_at`` is by definition in the latest snapshot.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from . import tables as t
from .errors import InvalidSnapshotError
from .records import COLUMNS, JSON_COLUMNS, Snapshot, normalise

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
CHANGE_TYPES = ("added", "removed", "renamed", "area_changed", "disabled", "enabled", "updated")


@dataclass
class SyncResult:
    """What one ``sync`` did. Count dicts are keyed by table name."""

    synced_at: datetime
    added: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    changed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    revived: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    #: The ``registry_changes`` rows written, old/new values decoded to dicts.
    changes: list[dict[str, Any]] = field(default_factory=list)
    #: Rows inserted, updated or deleted in any table (0 for an unchanged snapshot).
    rows_written: int = 0
    #: Records not stored: ``{kind, record_id, field, reason}``.
    rejects: list[dict[str, Any]] = field(default_factory=list)
    #: Records stored with a dangling reference nulled: same shape as rejects.
    warnings: list[dict[str, Any]] = field(default_factory=list)

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


def _load(conn: sa.Connection) -> tuple[dict[str, dict[str, tuple[tuple, Any]]], dict[str, tuple[str, ...]]]:
    """Every stored inventory row as ``{id: (column tuple, removed_at)}``, plus device links.

    Read as raw driver tuples: SQLAlchemy's per-row result wrapping would dominate an
    unchanged re-sync. SQLite hands booleans back as 0/1, which compare equal to False/True.
    """
    stored: dict[str, dict[str, tuple[tuple, Any]]] = {}
    for table in TABLES:
        rows = _fetch(conn, f"SELECT removed_at, {', '.join(COLUMNS[table])} FROM {t.INVENTORY[table][0].name}")
        stored[table] = {r[1]: (r[1:], r[0]) for r in rows}
    links: dict[str, list[str]] = defaultdict(list)
    for did, eid in _fetch(conn, "SELECT device_id, entry_id FROM device_config_entries"):
        links[did].append(eid)
    return stored, {d: tuple(sorted(e)) for d, e in links.items()}


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


def sync_snapshot(conn: sa.Connection, rows: Mapping[str, Any], now: datetime) -> SyncResult:
    """Bring the stored inventory in line with ``rows`` inside the caller's transaction."""
    _check_shape(rows)
    stored, stored_links = _load(conn)
    area_i = COLUMNS["devices"].index("area_id")
    snap: Snapshot = normalise(
        rows,
        {table: set(stored[table]) for table in TABLES},
        {did: v[0][area_i] for did, v in stored["devices"].items()},
    )
    result = SyncResult(synced_at=now)
    result.rejects = [i.as_dict() for i in snap.rejects]
    result.warnings = [i.as_dict() for i in snap.warnings]
    bulk = _Bulk(conn)
    ts = bulk.timestamp(now)
    changes: list[dict[str, Any]] = []
    link_inserts: list[tuple[str, str]] = []
    link_deletes: list[tuple[str, str]] = []

    for table in TABLES:
        tbl, pk = t.INVENTORY[table]
        cols = COLUMNS[table]
        new_rows = snap.rows[table]
        old_rows = stored[table]
        is_devices = table == "devices"

        # New ids in key order: appending to the table's B-tree is cheaper than splitting pages.
        added = sorted(new_rows.keys() - old_rows.keys())
        inserts = [new_rows[oid] + (ts, ts, None) for oid in added]
        for oid in added:
            payload = _non_null(table, new_rows[oid])
            if is_devices:
                payload["config_entries"] = list(snap.links.get(oid, ()))
                link_inserts += [(oid, e) for e in snap.links.get(oid, ())]
            changes.append(_change(now, table, oid, "added", None, payload))
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

        bulk.insert(tbl, cols + _SEEN, inserts)
        bulk.update(tbl, cols[1:] + ("last_seen", "removed_at"), (pk,), updates)
        bulk.update(tbl, ("removed_at",), (pk,), removals)
        if is_devices:
            # Links of new devices can only go in once their device row exists.
            lt = t.device_config_entries
            bulk.delete(lt, ("device_id", "entry_id"), link_deletes)
            bulk.insert(lt, ("device_id", "entry_id"), link_inserts)

    bulk.insert(
        t.registry_changes,
        _CHANGE_COLUMNS,
        [
            (ts, c["table_name"], c["object_id"], c["change_type"], _dumps(c["old_values"]), _dumps(c["new_values"]))
            for c in changes
        ],
    )
    result.changes = changes
    result.rows_written = bulk.written
    return result


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


# One encoder for all rows: json.dumps with options builds a new encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _dumps(value: dict[str, Any] | None) -> str | None:
    return None if value is None else _ENCODE(value)
