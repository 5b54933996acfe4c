"""A point-in-time copy of HA's four registries, and its fingerprint."""

from __future__ import annotations

import hashlib
from operator import attrgetter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ha_pipeline.homeassistant.models import Area, ConfigEntry, Device, Entity, Reject, rows_json, rows_of


@dataclass(repr=False)
class RegistrySnapshot:
    """Areas, devices, entities and config entries as fetched at ``fetched_at``."""

    areas: list[Area]
    devices: list[Device]
    entities: list[Entity]
    config_entries: list[ConfigEntry]
    fetched_at: datetime
    rejects: list[Reject] = field(default_factory=list)

    def __repr__(self) -> str:
        # Counts only: a full repr of 100k models takes tens of seconds (asyncio reprs results).
        return (
            f"RegistrySnapshot(areas={len(self.areas)}, devices={len(self.devices)}, "
            f"entities={len(self.entities)}, config_entries={len(self.config_entries)}, "
            f"rejects={len(self.rejects)}, fetched_at={self.fetched_at.isoformat()})"
        )

    def as_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Rows per table (``areas``, ``devices``, ``entities``, ``config_entries``) with HA's field names."""
        return {
            "areas": rows_of(Area, self.areas),
            "devices": rows_of(Device, self.devices),
            "entities": rows_of(Entity, self.entities),
            "config_entries": rows_of(ConfigEntry, self.config_entries),
        }


def registry_fingerprint(snapshot: RegistrySnapshot) -> str:
    """A sha256 over the rows sorted by id: equal for an unchanged inventory.

    ``fetched_at`` and rejects are left out, so fetching an unchanged home twice gives
    the same fingerprint whatever order HA listed the records in. Rows are serialised
    by pydantic in declared field order (100k entities in about a second); nested dicts
    (``options``, ``capabilities``) keep HA's own key order, which HA keeps stable.
    """
    digest = hashlib.sha256()
    for table, model, records in (
        ("areas", Area, snapshot.areas),
        ("devices", Device, snapshot.devices),
        ("entities", Entity, snapshot.entities),
        ("config_entries", ConfigEntry, snapshot.config_entries),
    ):
        ordered = sorted(records, key=attrgetter(model.id_field))
        digest.update(table.encode())
        digest.update(rows_json(model, ordered))
    return digest.hexdigest()
