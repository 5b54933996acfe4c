"""``MetadataStore``: the SQL inventory of a Home Assistant home on any SQLAlchemy URL.

SQLite (the default) gets foreign keys enforced, WAL and a busy timeout on every
connection, and syncs take the write lock up front (``BEGIN IMMEDIATE``) so two writers
queue instead of failing half-way. PostgreSQL serialises syncs with an advisory lock.
The schema is made only by the Alembic migrations in ``migrations/`` (``upgrade()``).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from . import tables as t
from .errors import SchemaNotReadyError, StoreLockedError
from .records import JSON_COLUMNS
from .sync import SyncResult, sync_snapshot

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every process syncing one database.
_PG_SYNC_LOCK = 0x4A5F_5359_4E43
_CHUNK = 500


def _utc(value: datetime | None) -> datetime | None:
    """Aware UTC datetime (SQLite hands back naive values, stored as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else _utc(now)  # type: ignore[return-value]


_TIMESTAMPS = frozenset({"first_seen", "last_seen", "removed_at", "changed_at", "created_at", "device_removed_at"})


def _rows(result: sa.CursorResult) -> list[dict[str, Any]]:
    """Result rows as plain dicts: JSON columns decoded, timestamps aware UTC.

    Column roles are looked up once per result, not per value: an entity list can be 10k+ rows.
    """
    keys = list(result.keys())
    stamps = [k for k in keys if k in _TIMESTAMPS]
    texts = [k for k in keys if k in JSON_COLUMNS]
    out = [dict(zip(keys, r)) for r in result.tuples()]
    for row in out:
        for k in stamps:
            v = row[k]
            if v is not None:
                row[k] = _utc(v)
        for k in texts:
            v = row[k]
            if v is not None:
                row[k] = json.loads(v)
    return out


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: a sync allocates ~1M acyclic tuples and dicts, and the
    collections they trigger (each walking the whole heap) cost more than the sync itself."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: How long a SQLite writer waits for another one before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite connections get foreign keys, WAL and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own implicit BEGIN is off so the "begin" hook below decides the mode
        # (SQLAlchemy's documented pysqlite recipe); PRAGMAs must run outside a transaction.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        # 64 MB page cache instead of 2 MB: a 100k-entity sync maintains ten indexes at once.
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @sa.event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if "database is locked" in str(context.original_exception):
            raise StoreLockedError(
                f"The SQLite metadata store {parsed.database} stayed locked by another process for "
                f"{SQLITE_BUSY_TIMEOUT_MS / 1000:g} s (database is locked): let the other run finish, or "
                "stop the other program using the file; for runs in parallel set HA_PIPELINE_DB_URL "
                "to a PostgreSQL database."
            ) from None

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class MetadataStore:
    """Areas, devices, entities and config entries of one HA home, with their change log."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._schema_ok = False

    # -- schema -----------------------------------------------------------------------

    def alembic_config(self) -> Config:
        """An Alembic Config built in code, so migrations run from an installed package."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        return cfg

    def head_revision(self) -> str:
        """The newest migration this code ships."""
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()  # type: ignore[return-value]

    def current_revision(self) -> str | None:
        """The migration the database is at (None: no schema yet)."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self, revision: str = "head") -> str | None:
        """Create or upgrade the schema in place to ``revision``; returns the new revision."""
        cfg = self.alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        self._schema_ok = False
        return self.current_revision()

    def _ready(self) -> None:
        if self._schema_ok:
            return
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            raise SchemaNotReadyError(self.engine.url.render_as_string(hide_password=True), current, head)
        self._schema_ok = True

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One write transaction that holds the database's write lock from its start."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SYNC_LOCK})
                yield conn

    def dispose(self) -> None:
        """Close pooled connections (tests, and before deleting a SQLite file)."""
        self.engine.dispose()

    # -- sync ---------------------------------------------------------------------------

    def sync(self, rows: Mapping[str, Any], now: datetime | None = None, *, full_compare: bool = False) -> SyncResult:
        """Make the stored inventory equal ``rows`` (``RegistrySnapshot.as_rows()``) in one transaction."""
        self._ready()
        with _gc_paused(), self._write() as conn:
            return sync_snapshot(conn, rows, _now(now), full_compare=full_compare)

    # -- queries ------------------------------------------------------------------------

    def devices(
        self,
        manufacturer: str | None = None,
        model: str | None = None,
        area_id: str | None = None,
        integration: str | None = None,
        include_removed: bool = False,
    ) -> list[dict[str, Any]]:
        """Devices matching every given filter, each with ``entity_count`` (current entities)."""
        self._ready()
        d, e, lt, ce = t.devices, t.entities, t.device_config_entries, t.config_entries
        counts = (
            sa.select(e.c.device_id, sa.func.count().label("n"))
            .where(e.c.removed_at.is_(None), e.c.device_id.is_not(None))
            .group_by(e.c.device_id)
            .subquery()
        )
        q = sa.select(d, sa.func.coalesce(counts.c.n, 0).label("entity_count")).outerjoin(
            counts, counts.c.device_id == d.c.device_id
        )
        if manufacturer is not None:
            q = q.where(d.c.manufacturer == manufacturer)
        if model is not None:
            q = q.where(d.c.model == model)
        if area_id is not None:
            q = q.where(d.c.area_id == area_id)
        if integration is not None:
            linked = sa.select(lt.c.device_id).join(ce, ce.c.entry_id == lt.c.entry_id).where(ce.c.domain == integration)
            q = q.where(d.c.device_id.in_(linked))
        if not include_removed:
            q = q.where(d.c.removed_at.is_(None))
        with self.engine.connect() as conn:
            return _rows(conn.execute(q.order_by(d.c.device_id)))

    def entities(
        self,
        domain: str | None = None,
        platform: str | None = None,
        device_id: str | None = None,
        area_id: str | None = None,
        include_removed: bool = False,
    ) -> list[dict[str, Any]]:
        """Entities matching every given filter; ``area_id`` is the effective area."""
        self._ready()
        e = t.entities
        q = sa.select(e)
        for col, value in (("domain", domain), ("platform", platform), ("device_id", device_id), ("area_id", area_id)):
            if value is not None:
                q = q.where(e.c[col] == value)
        if not include_removed:
            q = q.where(e.c.removed_at.is_(None))
        with self.engine.connect() as conn:
            return _rows(conn.execute(q.order_by(e.c.entity_id)))

    def device(self, device_id: str) -> dict[str, Any] | None:
        """One device (removed ones too) with its ``config_entries`` ids, or None."""
        self._ready()
        d, lt = t.devices, t.device_config_entries
        # One round trip: the device row repeated once per linked config entry.
        q = (
            sa.select(d, lt.c.entry_id.label("_entry_id"))
            .outerjoin(lt, lt.c.device_id == d.c.device_id)
            .where(d.c.device_id == device_id)
        )
        with self.engine.connect() as conn:
            found = _rows(conn.execute(q))
        if not found:
            return None
        entries = [r.pop("_entry_id") for r in found]
        out = found[0]
        out["config_entries"] = sorted(e for e in entries if e is not None)
        return out

    def _one(self, table: sa.Table, pk: str, value: str) -> dict[str, Any] | None:
        self._ready()
        with self.engine.connect() as conn:
            found = _rows(conn.execute(sa.select(table).where(table.c[pk] == value)))
        return found[0] if found else None

    def entity(self, entity_id: str) -> dict[str, Any] | None:
        """One entity (removed ones too), or None."""
        return self._one(t.entities, "entity_id", entity_id)

    def area(self, area_id: str) -> dict[str, Any] | None:
        """One area (removed ones too), or None."""
        return self._one(t.areas, "area_id", area_id)

    def config_entry(self, entry_id: str) -> dict[str, Any] | None:
        """One config entry (removed ones too), or None."""
        return self._one(t.config_entries, "entry_id", entry_id)

    def counts(self) -> dict[str, int]:
        """Current rows of each inventory table, and all rows of the log and link tables."""
        self._ready()
        queries = {
            name: sa.select(sa.func.count()).select_from(tbl).where(tbl.c.removed_at.is_(None))
            for name, (tbl, _) in t.INVENTORY.items()
        }
        for tbl in (t.device_config_entries, t.registry_changes, t.storage_reports):
            queries[tbl.name] = sa.select(sa.func.count()).select_from(tbl)
        with self.engine.connect() as conn:
            return {name: int(conn.execute(q).scalar_one()) for name, q in queries.items()}

    def registry_changes(
        self,
        since: datetime | None = None,
        table: str | None = None,
        object_id: str | None = None,
        *,
        follow_renames: bool = False,
    ) -> list[dict[str, Any]]:
        """Logged changes, oldest first, old/new values decoded. With ``follow_renames`` an
        entity's ``object_id`` also selects the changes logged under its other ids (any it had
        before or after, ``entity_ids_of``)."""
        self._ready()
        rc = t.registry_changes
        q = sa.select(rc).order_by(rc.c.id)
        if since is not None:
            q = q.where(rc.c.changed_at >= _utc(since))
        if table is not None:
            q = q.where(rc.c.table_name == table)
        if object_id is not None and follow_renames and table in (None, "entities"):
            ids = self.entity_ids_of(object_id)
            q = q.where(sa.or_(rc.c.object_id.in_(ids) & (rc.c.table_name == "entities"), rc.c.object_id == object_id))
        elif object_id is not None:
            q = q.where(rc.c.object_id == object_id)
        with self.engine.connect() as conn:
            out = _rows(conn.execute(q))
        for row in out:
            for key in ("old_values", "new_values"):
                row[key] = None if row[key] is None else json.loads(row[key])
        return out

    def entity_renames(self) -> list[dict[str, Any]]:
        """Every entity-id change logged, oldest first: ``changed_at, registry_id,
        old_entity_id, new_entity_id``."""
        self._ready()
        rc = t.registry_changes
        q = (
            sa.select(rc.c.changed_at, rc.c.old_values, rc.c.new_values)
            .where(rc.c.table_name == "entities", rc.c.change_type == "entity_id_changed")
            .order_by(rc.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).tuples().all()
        out = []
        for changed_at, old, new in rows:
            old, new = json.loads(old), json.loads(new)
            out.append(
                {
                    "changed_at": _utc(changed_at),
                    "registry_id": new.get("registry_id"),
                    "old_entity_id": old["entity_id"],
                    "new_entity_id": new["entity_id"],
                }
            )
        return out

    def entity_ids_of(self, entity_id: str) -> list[str]:
        """Every id the entity known by ``entity_id`` has had, oldest first; ``[entity_id]`` when
        it was never renamed. The entity is the row with that id, else (an id given up in a
        rename) the entities renamed from or to it."""
        renames = self.entity_renames()
        row = self.entity(entity_id)
        if row is not None:
            registry_ids = {row["registry_id"]}
        else:
            registry_ids = {r["registry_id"] for r in renames if entity_id in (r["old_entity_id"], r["new_entity_id"])}
        registry_ids.discard(None)
        ids: dict[str, None] = {}
        for r in renames:
            if r["registry_id"] in registry_ids:
                ids.setdefault(r["old_entity_id"])
                ids.setdefault(r["new_entity_id"])
        return list(ids) or [entity_id]

    def entity_tags(self, include_removed: bool = False) -> list[dict[str, Any]]:
        """One dict per current entity with the tags its InfluxDB points carry: ``entity_id,
        registry_id`` (HA's entity registry id), ``area, area_id, device_id, device_name,
        integration, device_class, unit_of_measurement, state_class`` and ``removed_at`` (None
        for a current entity). ``include_removed`` adds the entities HA no longer lists, with
        the tags they had last (their history stays fetchable and taggable)."""
        self._ready()
        e, a, d, ce = t.entities, t.areas, t.devices, t.config_entries
        q = (
            sa.select(
                e.c.entity_id,
                e.c.registry_id,
                a.c.name.label("area"),
                e.c.area_id,
                e.c.device_id,
                sa.func.coalesce(d.c.name_by_user, d.c.name).label("device_name"),
                sa.func.coalesce(ce.c.domain, e.c.platform).label("integration"),
                # HA's effective device class: the user's override, else the integration's.
                sa.func.coalesce(e.c.device_class, e.c.original_device_class).label("device_class"),
                e.c.unit_of_measurement,
                e.c.state_class,
                e.c.removed_at,
            )
            .select_from(
                e.outerjoin(a, a.c.area_id == e.c.area_id)
                .outerjoin(d, d.c.device_id == e.c.device_id)
                .outerjoin(ce, ce.c.entry_id == e.c.config_entry_id)
            )
            .order_by(e.c.entity_id)
        )
        if not include_removed:
            q = q.where(e.c.removed_at.is_(None))
        with self.engine.connect() as conn:
            return _rows(conn.execute(q))

    # -- integrity ----------------------------------------------------------------------

    def fk_violations(self) -> list[dict[str, Any]]:
        """References to rows that do not exist (empty when foreign keys were enforced)."""
        self._ready()
        e, d, a, lt, ce = t.entities, t.devices, t.areas, t.device_config_entries, t.config_entries
        checks = [
            ("entities", e.c.entity_id, e.c.device_id, d, d.c.device_id),
            ("entities", e.c.entity_id, e.c.area_id, a, a.c.area_id),
            ("entities", e.c.entity_id, e.c.own_area_id, a, a.c.area_id),
            ("devices", d.c.device_id, d.c.area_id, a, a.c.area_id),
            ("devices", d.c.device_id, d.c.via_device_id, d.alias("via"), None),
            ("device_config_entries", lt.c.device_id, lt.c.device_id, d, d.c.device_id),
            ("device_config_entries", lt.c.device_id, lt.c.entry_id, ce, ce.c.entry_id),
        ]
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            for table, oid, ref, target, target_pk in checks:
                if target_pk is None:
                    target_pk = target.c.device_id
                q = (
                    sa.select(oid, ref)
                    .select_from(ref.table.outerjoin(target, target_pk == ref))
                    .where(ref.is_not(None), target_pk.is_(None))
                )
                out += [
                    {"table": table, "object_id": r[0], "column": ref.name, "missing": r[1]} for r in conn.execute(q)
                ]
        return out

    def duplicate_ids(self) -> list[dict[str, Any]]:
        """Current entities sharing HA's registry id or (domain, platform, unique_id): HA allows
        neither. The domain is part of HA's key (``EntityRegistry.async_get_entity_id``): one
        integration may reuse a unique id across domains, as HA's own demo does."""
        self._ready()
        e = t.entities
        current = e.c.removed_at.is_(None)
        groups = {
            "registry_id": [e.c.registry_id],
            "domain+platform+unique_id": [e.c.domain, e.c.platform, e.c.unique_id],
        }
        out: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            for key, cols in groups.items():
                q = (
                    sa.select(*cols, sa.func.count().label("n"))
                    .where(current, *(c.is_not(None) for c in cols))
                    .group_by(*cols)
                    .having(sa.func.count() > 1)
                )
                for r in conn.execute(q):
                    value = list(r[:-1])
                    ids = conn.execute(
                        sa.select(e.c.entity_id).where(current, *(c == v for c, v in zip(cols, value)))
                    ).scalars()
                    out.append({"table": "entities", "key": key, "value": value, "count": r[-1], "ids": sorted(ids)})
        return out

    def entities_with_removed_device(self) -> list[dict[str, Any]]:
        """Current entities whose device HA no longer lists."""
        self._ready()
        e, d = t.entities, t.devices
        q = (
            sa.select(e.c.entity_id, e.c.device_id, d.c.removed_at.label("device_removed_at"))
            .join(d, d.c.device_id == e.c.device_id)
            .where(e.c.removed_at.is_(None), d.c.removed_at.is_not(None))
            .order_by(e.c.entity_id)
        )
        with self.engine.connect() as conn:
            return _rows(conn.execute(q))

    # -- storage reports and retention ---------------------------------------------------

    def save_storage_report(self, report: Mapping[str, Any], created_at: datetime | None = None) -> int:
        """Persist one storage report; ``created_at`` defaults to its ``generated_at``, else now."""
        self._ready()
        if created_at is None and isinstance(report.get("generated_at"), str):
            created_at = datetime.fromisoformat(report["generated_at"])
        sql = report.get("sql")
        values = {
            "created_at": _now(created_at),
            "total_bytes": _int_or_none(report.get("total_bytes")),
            "influxdb_bytes": _int_or_none(report.get("influxdb_bytes")),
            "sql_bytes": _int_or_none(sql.get("bytes")) if isinstance(sql, Mapping) else None,
            "report": json.dumps(report, sort_keys=True, default=str),
        }
        with self._write() as conn:
            return int(conn.execute(t.storage_reports.insert().values(values)).inserted_primary_key[0])

    def storage_reports(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Stored reports, oldest first: ``id, created_at, total_bytes, influxdb_bytes, sql_bytes, report``."""
        self._ready()
        sr = t.storage_reports
        q = sa.select(sr).order_by(sr.c.created_at, sr.c.id)
        if since is not None:
            q = q.where(sr.c.created_at >= _utc(since))
        with self.engine.connect() as conn:
            rows = _rows(conn.execute(q))
        for row in rows:
            row["report"] = json.loads(row["report"])
        return rows

    def size_bytes(self) -> int | None:
        """Bytes the database takes on its server (None for backends we cannot ask)."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
                return int(pages) * int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
            if conn.dialect.name == "postgresql":
                return int(conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one())
        return None

    def prune(
        self,
        changes_older_than_days: int | None,
        removed_older_than_days: int | None,
        reports_older_than_days: int | None,
        now: datetime | None = None,
    ) -> dict[str, int]:
        """Delete old change log rows, rows HA removed long ago (with their links) and old reports.

        ``None`` skips that part. A removed row that a kept row still references (an entity
        pointing at a removed device, a device connected via a removed hub) is kept so
        foreign keys hold; it goes in a later prune once nothing points at it.
        """
        self._ready()
        now = _now(now)
        out = dict.fromkeys(
            ("registry_changes", "entities", "devices", "device_config_entries", "areas", "config_entries",
             "storage_reports"),
            0,
        )
        with self._write() as conn:
            if changes_older_than_days is not None:
                cutoff = now - timedelta(days=changes_older_than_days)
                rc = t.registry_changes
                out["registry_changes"] = conn.execute(rc.delete().where(rc.c.changed_at < cutoff)).rowcount
            if reports_older_than_days is not None:
                cutoff = now - timedelta(days=reports_older_than_days)
                sr = t.storage_reports
                out["storage_reports"] = conn.execute(sr.delete().where(sr.c.created_at < cutoff)).rowcount
            if removed_older_than_days is not None:
                out.update(self._purge_removed(conn, now - timedelta(days=removed_older_than_days)))
        return out

    @staticmethod
    def _purge_removed(conn: sa.Connection, cutoff: datetime) -> dict[str, int]:
        e, d, a, lt, ce = t.entities, t.devices, t.areas, t.device_config_entries, t.config_entries

        def old(tbl: sa.Table, pk: str) -> set[str]:
            return set(conn.execute(sa.select(tbl.c[pk]).where(tbl.c.removed_at < cutoff)).scalars())

        def delete(tbl: sa.Table, col: str, ids: Iterable[str]) -> int:
            n = 0
            for chunk in _chunks(sorted(ids)):
                n += conn.execute(tbl.delete().where(tbl.c[col].in_(chunk))).rowcount
            return n

        out = {"entities": delete(e, "entity_id", old(e, "entity_id"))}

        referenced = set(conn.execute(sa.select(e.c.device_id).where(e.c.device_id.is_not(None))).scalars())
        via_rows = conn.execute(sa.select(d.c.device_id, d.c.via_device_id).where(d.c.via_device_id.is_not(None)))
        via = {dev: hub for dev, hub in via_rows}
        purge = old(d, "device_id") - referenced
        while True:  # a hub stays while a kept device is connected through it
            kept_refs = {hub for dev, hub in via.items() if dev not in purge}
            if not purge & kept_refs:
                break
            purge -= kept_refs
        out["device_config_entries"] = delete(lt, "device_id", purge)
        out["devices"] = delete(d, "device_id", purge)

        area_refs = set()
        for col in (d.c.area_id, e.c.area_id, e.c.own_area_id):
            area_refs |= set(conn.execute(sa.select(col).where(col.is_not(None)).distinct()).scalars())
        out["areas"] = delete(a, "area_id", old(a, "area_id") - area_refs)
        entry_refs = set(conn.execute(sa.select(lt.c.entry_id).distinct()).scalars())
        out["config_entries"] = delete(ce, "entry_id", old(ce, "entry_id") - entry_refs)
        return out
