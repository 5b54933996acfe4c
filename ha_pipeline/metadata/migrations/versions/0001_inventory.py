"""Inventory: areas, config entries, devices, their links, entities, registry changes.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(255)
TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(column: str, target: str) -> sa.ForeignKeyConstraint:
    # Deferred so one transaction can insert a device before the hub it is connected via.
    return sa.ForeignKeyConstraint([column], [target], deferrable=True, initially="DEFERRED")


def _seen() -> list[sa.Column]:
    return [
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("removed_at", TS),
    ]


def upgrade() -> None:
    op.create_table(
        "areas",
        sa.Column("area_id", ID, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("aliases", sa.Text),
        sa.Column("picture", sa.Text),
        *_seen(),
    )
    op.create_table(
        "config_entries",
        sa.Column("entry_id", ID, primary_key=True),
        sa.Column("domain", ID),
        sa.Column("title", sa.Text),
        sa.Column("source", sa.Text),
        sa.Column("state", sa.Text),
        sa.Column("disabled_by", sa.Text),
        *_seen(),
    )
    op.create_index("ix_config_entries_domain", "config_entries", ["domain"])
    op.create_table(
        "devices",
        sa.Column("device_id", ID, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("name_by_user", sa.Text),
        sa.Column("manufacturer", ID),
        sa.Column("model", ID),
        sa.Column("sw_version", sa.Text),
        sa.Column("hw_version", sa.Text),
        sa.Column("serial_number", sa.Text),
        sa.Column("identifiers", sa.Text),
        sa.Column("connections", sa.Text),
        sa.Column("entry_type", sa.Text),
        sa.Column("disabled_by", sa.Text),
        sa.Column("area_id", ID),
        sa.Column("via_device_id", ID),
        sa.Column("configuration_url", sa.Text),
        *_seen(),
        _fk("area_id", "areas.area_id"),
        _fk("via_device_id", "devices.device_id"),
    )
    for col in ("manufacturer", "model", "area_id", "via_device_id"):
        op.create_index(f"ix_devices_{col}", "devices", [col])
    op.create_table(
        "device_config_entries",
        sa.Column("device_id", ID, primary_key=True),
        sa.Column("entry_id", ID, primary_key=True),
        _fk("device_id", "devices.device_id"),
        _fk("entry_id", "config_entries.entry_id"),
    )
    op.create_index("ix_device_config_entries_entry_id", "device_config_entries", ["entry_id"])
    op.create_table(
        "entities",
        sa.Column("entity_id", ID, primary_key=True),
        sa.Column("registry_id", ID),
        sa.Column("unique_id", sa.Text),
        sa.Column("platform", ID),
        sa.Column("domain", ID),
        sa.Column("device_id", ID),
        sa.Column("config_entry_id", ID),
        sa.Column("area_id", ID),
        sa.Column("own_area_id", ID),
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
        _fk("device_id", "devices.device_id"),
        _fk("area_id", "areas.area_id"),
        _fk("own_area_id", "areas.area_id"),
    )
    for col in ("platform", "domain", "device_id", "area_id"):
        op.create_index(f"ix_entities_{col}", "entities", [col])
    op.create_table(
        "registry_changes",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("object_id", ID, nullable=False),
        sa.Column("change_type", sa.String(32), nullable=False),
        sa.Column("old_values", sa.Text),
        sa.Column("new_values", sa.Text),
    )
    op.create_index("ix_registry_changes_changed_at", "registry_changes", ["changed_at"])
    op.create_index("ix_registry_changes_object", "registry_changes", ["table_name", "object_id"])


def downgrade() -> None:
    for table in ("registry_changes", "entities", "device_config_entries", "devices", "config_entries", "areas"):
        op.drop_table(table)
