"""A point-in-time copy of HA's four registries, and its fingerprint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ha_pipeline.homeassistant.models import Area, ConfigEntry, Device, Entity, Reject, rows_of


@dataclass
class RegistrySnapshot:
    """Areas, devices, entities and config entries as fetched at ``fetched_at``."""

    areas: list[Area]
    devices: list[Device]
    entities: list[Entity]
    config_entries: list[ConfigEntry]
    fetched_at: datetime
    rejects: list[Reject] = field(default_factory=list)

    def as_rows(self) -> dict[str, list[dict[str, Any]]]:
        """Rows per table (``areas``, ``devices``, ``entities``, ``config_entries``) with HA's field names."""
        return {
            "areas": rows_of(Area, self.areas),
            "devices": rows_of(Device, self.devices),
            "entities": rows_of(Entity, self.entities),
            "config_entries": rows_of(ConfigEntry, self.config_entries),
        }


_SORT_KEYS = {"areas": "area_id", "devices": "id", "entities": "entity_id", "config_entries": "entry_id"}


def registry_fingerprint(snapshot: RegistrySnapshot) -> str:
    """A sha256 over the sorted, canonical JSON of the rows: equal iff the inventory is equal.

    ``fetched_at`` and rejects are left out, so fetching an unchanged home twice gives
    the same fingerprint whatever order HA listed the records in.
    """
    rows = snapshot.as_rows()
    canonical = {table: sorted(rows[table], key=lambda row, k=key: row[k]) for table, key in _SORT_KEYS.items()}
    body = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
