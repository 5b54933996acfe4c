"""Schema: only Alembic makes it, upgrades keep data, SQLite enforces foreign keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ha_pipeline.metadata import MetadataStore, SchemaNotReadyError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_store_refuses_work_before_upgrade(fresh_url: str) -> None:
    store = MetadataStore(fresh_url)
    with pytest.raises(SchemaNotReadyError, match=r"no schema.*call MetadataStore.upgrade\(\)"):
        store.counts()
    store.dispose()


def test_upgrade_from_revision_1_keeps_the_data(fresh_url: str) -> None:
    store = MetadataStore(fresh_url)
    assert store.upgrade("0001") == "0001"
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO areas (area_id, name, aliases, first_seen, last_seen) "
                             "VALUES ('kitchen', 'Kitchen', '[]', :t, :t)"), {"t": NOW})
        conn.execute(sa.text("INSERT INTO devices (device_id, name, area_id, first_seen, last_seen) "
                             "VALUES ('d1', 'Fridge', 'kitchen', :t, :t)"), {"t": NOW})
    with pytest.raises(SchemaNotReadyError, match="revision 0001"):
        store.counts()

    assert store.upgrade() == store.head_revision() != "0001"

    assert store.device("d1")["area_id"] == "kitchen"
    assert store.counts()["storage_reports"] == 0
    assert store.upgrade() == store.head_revision()  # a second upgrade is a no-op
    store.dispose()


def test_migrations_make_what_the_tables_module_describes(fresh_url: str) -> None:
    from ha_pipeline.metadata.tables import metadata

    store = MetadataStore(fresh_url)
    store.upgrade()
    inspector = sa.inspect(store.engine)
    for table in metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.c.keys()), table.name
    indexed = {tuple(i["column_names"]) for i in inspector.get_indexes("entities")}
    assert {("domain",), ("device_id",), ("area_id",), ("platform",)} <= indexed
    assert {("manufacturer",), ("area_id",)} <= {tuple(i["column_names"]) for i in inspector.get_indexes("devices")}
    fks = {(fk["constrained_columns"][0], fk["referred_table"]) for fk in inspector.get_foreign_keys("entities")}
    assert fks == {("device_id", "devices"), ("area_id", "areas"), ("own_area_id", "areas")}
    store.dispose()


def test_sqlite_connections_enforce_foreign_keys_with_wal(sqlite_store: MetadataStore) -> None:
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000

    with pytest.raises(sa.exc.IntegrityError):
        with sqlite_store.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO entities (entity_id, device_id, first_seen, last_seen) "
                                 "VALUES ('sensor.x', 'no_such_device', :t, :t)"), {"t": NOW})
    assert sqlite_store.counts()["entities"] == 0


def test_fk_violations_reports_rows_written_without_enforcement(sqlite_store: MetadataStore) -> None:
    import sqlite3

    path = sqlite_store.engine.url.database
    raw = sqlite3.connect(path)  # a plain connection: foreign keys are off by default in SQLite
    raw.execute("INSERT INTO entities (entity_id, device_id, first_seen, last_seen) "
                "VALUES ('sensor.x', 'gone', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    raw.commit()
    raw.close()

    assert sqlite_store.fk_violations() == [
        {"table": "entities", "object_id": "sensor.x", "column": "device_id", "missing": "gone"}
    ]


def test_two_writers_on_one_sqlite_file_queue_instead_of_failing(sqlite_store: MetadataStore) -> None:
    """Syncs take the write lock up front (BEGIN IMMEDIATE) and wait on the busy timeout."""
    import threading

    from ha_pipeline_tests.test_metadata.home import HOME

    other = MetadataStore(str(sqlite_store.engine.url))
    errors: list[BaseException] = []

    def run(store: MetadataStore, offset: int) -> None:
        try:
            for i in range(5):
                store.sync(HOME, now=datetime(2026, 1, 1, tzinfo=UTC).replace(minute=offset + i))
                store.save_storage_report({"total_bytes": i})
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread's assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s, n * 10)) for n, s in enumerate((sqlite_store, other))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    other.dispose()

    assert errors == []
    assert sqlite_store.counts()["entities"] == 5 and sqlite_store.counts()["storage_reports"] == 10
    assert sqlite_store.counts()["registry_changes"] == 13  # only the first sync added anything
