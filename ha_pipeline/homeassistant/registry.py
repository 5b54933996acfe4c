"""A point-in-time copy of HA's four registries, and its fingerprint."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from ha_pipeline.homeassistant.models import Area, ConfigEntry, Device, Entity, HAModel, Reject, rows_of

#: The registries in ``as_rows()`` order, each with the model whose declared fields discovery reads.
REGISTRIES: tuple[tuple[str, type[HAModel]], ...] = (
    ("areas", Area),
    ("devices", Device),
    ("entities", Entity),
    ("config_entries", ConfigEntry),
)

# Keys sorted at every depth, ASCII only (a lone surrogate from HA must not break the hash).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
#: Lists HA keeps as sets, so their order may change when HA restarts; discovery stores them sorted.
_SET_FIELDS = frozenset({"aliases", "config_entries", "connections", "identifiers"})


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
        return {table: rows_of(model, getattr(self, table)) for table, model in REGISTRIES}


@lru_cache(maxsize=None)
def _fields(model: type[HAModel]) -> tuple[tuple[str, Any], ...]:
    """(name, default) of each declared field: a missing key reads as the model would fill it."""
    return tuple(
        (name, None if info.is_required() else info.get_default(call_default_factory=True))
        for name, info in model.model_fields.items()
    )


def _set_sorted(value: Any) -> Any:
    return sorted(value, key=_CANONICAL) if isinstance(value, list) and len(value) > 1 else value


def _record_lines(model: type[HAModel], records: Any) -> list[str]:
    """One canonical JSON line per record (unsorted); a table that is not a list is one line."""
    if not isinstance(records, list):
        return ["!" + _CANONICAL(records)]
    fields = _fields(model)
    read_all = itemgetter(*(name for name, _ in fields))
    sets = [i for i, (name, _) in enumerate(fields) if name in _SET_FIELDS]
    lines = []
    # One short string per record: no container per record outlives its line, so the collector
    # has nothing to chase while 100k records are read.
    for record in records:
        if not isinstance(record, dict):
            lines.append("!" + _CANONICAL(record))  # marked: cannot pass for a record's values
            continue
        try:
            values = read_all(record)
        except KeyError:  # a field HA did not send reads as the model's default
            values = tuple(record.get(name, default) for name, default in fields)
        if sets:
            values = list(values)
            for i in sets:
                values[i] = _set_sorted(values[i])
        lines.append(_CANONICAL(values))
    return lines


class RegistryDigest:
    """``payload_fingerprint`` built up as the records arrive (a registry may come in parts)."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def add(self, table: str, records: Any) -> None:
        """Count ``records`` (a list, or whatever HA sent instead) towards ``table``."""
        self._lines.setdefault(table, []).extend(_record_lines(dict(REGISTRIES)[table], records))

    def hexdigest(self) -> str:
        """The sha256; a table never added counts as missing (``None``)."""
        digest = hashlib.sha256()
        for table, model in REGISTRIES:
            lines = self._lines[table] if table in self._lines else _record_lines(model, None)
            names = ",".join(name for name, _ in _fields(model))
            # JSON never holds a raw newline: "\n" separates records and tables unambiguously.
            digest.update(f"{table}({names})\n".encode())
            digest.update("\n".join(sorted(lines)).encode())
            digest.update(b"\n")
        return digest.hexdigest()


def payload_fingerprint(payloads: Mapping[str, Any]) -> str:
    """A sha256 over the four registries as plain dicts (``as_rows()`` layout, or HA's raw records).

    Each record counts by the fields its model declares (a missing key as the model's default,
    unknown keys not at all), serialised as canonical JSON (keys sorted at every depth, lists HA
    keeps as sets sorted), one line per record; the lines of a table are sorted, so HA's list
    order does not matter. Nothing is validated: a malformed record (no id, wrong types, not an
    object, a duplicate) is hashed as it is, so it changes the fingerprint when it appears,
    changes or goes, and keeps it stable while it stays. For well-formed records this equals
    ``registry_fingerprint`` of the snapshot.
    """
    digest = RegistryDigest()
    for table, _ in REGISTRIES:
        digest.add(table, payloads.get(table))
    return digest.hexdigest()


def registry_fingerprint(snapshot: RegistrySnapshot) -> str:
    """``payload_fingerprint`` of ``snapshot.as_rows()``: equal for an unchanged inventory.

    ``fetched_at`` and rejects are left out, so fetching an unchanged home twice gives the same
    fingerprint whatever order HA listed the records in.
    """
    return payload_fingerprint(snapshot.as_rows())
