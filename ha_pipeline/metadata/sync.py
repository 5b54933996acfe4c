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


def _as_dict(table: str, values: tuple) -> dict[str, Any]:
    """A stored tuple as a JSON-ready dict (JSON columns decoded)."""
    out = dict(zip(COLUMNS[table], values))
    for col in JSON_COLUMNS.intersection(out):
        if out[col] is not None:
            out[col] = json.loads(out[col])
    return out


def _load(conn: sa.Connection) -> tuple[dict[str, dict[str, tuple[tuple, Any]]], dict[str, tuple[str, ...]]]:
    """Every stored inventory row as ``{id: (column tuple, removed_at)}``, plus device links."""
    stored: dict[str, dict[str, tuple[tuple, Any]]] = {}
    for table in TABLES:
        tbl = t.INVENTORY[table][0]
        cols = [tbl.c[c] for c in COLUMNS[table]] + [tbl.c.removed_at]
        stored[table] = {r[0]: (tuple(r[:-1]), r[-1]) for r in conn.execute(sa.select(*cols))}
    links: dict[str, list[str]] = defaultdict(list)
    lt = t.device_config_entries
    for did, eid in conn.execute(sa.select(lt.c.device_id, lt.c.entry_id)):
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


def sync_snapshot(conn: sa.Connection, rows: Mapping[str, Any], now: datetime) -> SyncResult:
    """Bring the stored inventory in line with ``rows`` inside the caller's transaction."""
    _check_shape(rows)
    stored, stored_links = _load(conn)
    dcols = COLUMNS["devices"]
    area_i = dcols.index("area_id")
    snap: Snapshot = normalise(
        rows,
        {table: set(stored[table]) for table in TABLES},
        {did: v[0][area_i] for did, v in stored["devices"].items()},
    )
    result = SyncResult(synced_at=now)
    result.rejects = [i.as_dict() for i in snap.rejects]
    result.warnings = [i.as_dict() for i in snap.warnings]
    changes: list[dict[str, Any]] = []
    link_inserts: list[dict[str, str]] = []
    link_deletes: list[dict[str, str]] = []

    for table in TABLES:
        tbl, pk = t.INVENTORY[table]
        cols = COLUMNS[table]
        new_rows = snap.rows[table]
        old_rows = stored[table]
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        removals: list[dict[str, Any]] = []
        for oid, values in new_rows.items():
            old = old_rows.get(oid)
            link_old = link_new = None
            if table == "devices":
                link_new = snap.links.get(oid, ())
                link_old = stored_links.get(oid, ())
            if old is None:
                inserts.append({**dict(zip(cols, values)), "first_seen": now, "last_seen": now, "removed_at": None})
                new = _as_dict(table, values)
                if link_new is not None:
                    new["config_entries"] = list(link_new)
                changes.append(_change(now, table, oid, "added", None, new))
                result.added[table] += 1
            else:
                old_values, removed_at = old
                links_differ = link_new != link_old
                if removed_at is None and old_values == values and not links_differ:
                    result.unchanged[table] += 1
                    continue
                updates.append({**{f"b_{c}": v for c, v in zip(cols, values)}, "b_last_seen": now})
                if removed_at is not None:
                    before = {**_as_dict(table, old_values), "removed_at": removed_at.isoformat()}
                    after = _as_dict(table, values)
                    if link_new is not None:
                        before["config_entries"], after["config_entries"] = list(link_old), list(link_new)
                    changes.append(_change(now, table, oid, "added", before, after))
                    result.revived[table] += 1
                else:
                    diffs = _diff_columns(table, oid, old_values, values, now)
                    if links_differ:
                        upd = next((c for c in diffs if c["change_type"] == "updated"), None)
                        if upd is None:
                            upd = _change(now, table, oid, "updated", {}, {})
                            diffs.append(upd)
                        upd["old_values"]["config_entries"] = list(link_old)
                        upd["new_values"]["config_entries"] = list(link_new)
                    changes.extend(diffs)
                    result.changed[table] += 1
            if link_new is not None and link_new != link_old:
                link_deletes += [{"b_device_id": oid, "b_entry_id": e} for e in set(link_old) - set(link_new)]
                link_inserts += [{"device_id": oid, "entry_id": e} for e in set(link_new) - set(link_old)]
        for oid, (old_values, removed_at) in old_rows.items():
            if removed_at is None and oid not in new_rows:
                removals.append({"b_pk": oid})
                changes.append(_change(now, table, oid, "removed", _as_dict(table, old_values), None))
                result.removed[table] += 1

        if inserts:
            conn.execute(tbl.insert(), inserts)
        if updates:
            stmt = (
                tbl.update()
                .where(tbl.c[pk] == sa.bindparam(f"b_{pk}"))
                .values(
                    {
                        **{c: sa.bindparam(f"b_{c}") for c in cols[1:]},
                        "last_seen": sa.bindparam("b_last_seen"),
                        "removed_at": None,
                    }
                )
            )
            conn.execute(stmt, updates)
        if removals:
            stmt = tbl.update().where(tbl.c[pk] == sa.bindparam("b_pk")).values(removed_at=now)
            conn.execute(stmt, removals)
        if table == "devices":
            lt = t.device_config_entries
            if link_deletes:
                conn.execute(
                    lt.delete().where(
                        lt.c.device_id == sa.bindparam("b_device_id"), lt.c.entry_id == sa.bindparam("b_entry_id")
                    ),
                    link_deletes,
                )
            if link_inserts:
                conn.execute(lt.insert(), link_inserts)
        result.rows_written += len(inserts) + len(updates) + len(removals)
    result.rows_written += len(link_inserts) + len(link_deletes)

    if changes:
        conn.execute(
            t.registry_changes.insert(),
            [
                {
                    **c,
                    "old_values": None if c["old_values"] is None else _dumps(c["old_values"]),
                    "new_values": None if c["new_values"] is None else _dumps(c["new_values"]),
                }
                for c in changes
            ],
        )
        result.rows_written += len(changes)
    result.changes = changes
    return result


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
