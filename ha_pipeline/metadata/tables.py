"""SQLAlchemy Core tables of the metadata store (the shape at the newest migration).

Alembic migrations in ``migrations/versions`` create and change the schema; these objects
only describe it for queries. Primary keys are HA's own ids. JSON values (identifiers,
connections, aliases, change payloads, reports) are stored as canonical JSON text, so a
snapshot can be compared with the stored rows as plain strings on every backend.
Foreign keys are DEFERRABLE INITIALLY DEFERRED so one sync can insert a device before
the hub it is connected through; they are still checked at commit.
"""

from __future__ import annotations

import sqlalchemy as sa

ID = sa.String(255)
TS = sa.DateTime(timezone=True)
# SQLite only auto-increments an INTEGER PRIMARY KEY (its rowid), not a BIGINT one.
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()


def _fk(target: str) -> sa.ForeignKey:
    return sa.ForeignKey(target, deferrable=True, initially="DEFERRED")


def _seen() -> list[sa.Column]:
    return [
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("removed_at", TS),
    ]


areas = sa.Table(
    "areas",
    metadata,
    sa.Column("area_id", ID, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("aliases", sa.Text),
    sa.Column("picture", sa.Text),
    *_seen(),
)

config_entries = sa.Table(
    "config_entries",
    metadata,
    sa.Column("entry_id", ID, primary_key=True),
    sa.Column("domain", ID, index=True),
    sa.Column("title", sa.Text),
    sa.Column("source", sa.Text),
    sa.Column("state", sa.Text),
    sa.Column("disabled_by", sa.Text),
    *_seen(),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("device_id", ID, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("name_by_user", sa.Text),
    sa.Column("manufacturer", ID, index=True),
    sa.Column("model", ID, index=True),
    sa.Column("sw_version", sa.Text),
    sa.Column("hw_version", sa.Text),
    sa.Column("serial_number", sa.Text),
    sa.Column("identifiers", sa.Text),
    sa.Column("connections", sa.Text),
    sa.Column("entry_type", sa.Text),
    sa.Column("disabled_by", sa.Text),
    sa.Column("area_id", ID, _fk("areas.area_id"), index=True),
    sa.Column("via_device_id", ID, _fk("devices.device_id"), index=True),
    sa.Column("configuration_url", sa.Text),
    *_seen(),
)

device_config_entries = sa.Table(
    "device_config_entries",
    metadata,
    sa.Column("device_id", ID, _fk("devices.device_id"), primary_key=True),
    sa.Column("entry_id", ID, _fk("config_entries.entry_id"), primary_key=True, index=True),
)

entities = sa.Table(
    "entities",
    metadata,
    sa.Column("entity_id", ID, primary_key=True),
    sa.Column("registry_id", ID),
    sa.Column("unique_id", sa.Text),
    sa.Column("platform", ID, index=True),
    sa.Column("domain", ID, index=True),
    sa.Column("device_id", ID, _fk("devices.device_id"), index=True),
    sa.Column("config_entry_id", ID),
    sa.Column("area_id", ID, _fk("areas.area_id"), index=True),
    sa.Column("own_area_id", ID, _fk("areas.area_id")),
    sa.Column("original_name", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("device_class", sa.Text),
    sa.Column("original_device_class", sa.Text),
    sa.Column("unit_of_measurement", sa.Text),
    sa.Column("state_class", sa.Text),
    sa.Column("entity_category", sa.Text),
    sa.Column("disabled_by", sa.Text),
    sa.Column("hidden_by", sa.Text),
    sa.Column("has_entity_name", sa.Boolean),
    *_seen(),
)

registry_changes = sa.Table(
    "registry_changes",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("changed_at", TS, nullable=False, index=True),
    sa.Column("table_name", sa.String(32), nullable=False),
    sa.Column("object_id", ID, nullable=False),
    sa.Column("change_type", sa.String(32), nullable=False),
    sa.Column("old_values", sa.Text),
    sa.Column("new_values", sa.Text),
    sa.Index("ix_registry_changes_object", "table_name", "object_id"),
)

storage_reports = sa.Table(
    "storage_reports",
    metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("created_at", TS, nullable=False, index=True),
    sa.Column("total_bytes", sa.BigInteger),
    sa.Column("influxdb_bytes", sa.BigInteger),
    sa.Column("sql_bytes", sa.BigInteger),
    sa.Column("report", sa.Text, nullable=False),
)

# Per inventory table, the fingerprint of the last snapshot synced into it and a signature of
# the stored rows at that moment (row counts and newest timestamps): when both still match,
# a re-sync of the same snapshot has nothing to compare (``sync.py``).
sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("table_name", sa.String(32), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("synced_at", TS, nullable=False),
)

#: Inventory tables in FK-safe insert order, with their primary key column.
INVENTORY: dict[str, tuple[sa.Table, str]] = {
    "areas": (areas, "area_id"),
    "config_entries": (config_entries, "entry_id"),
    "devices": (devices, "device_id"),
    "entities": (entities, "entity_id"),
}
