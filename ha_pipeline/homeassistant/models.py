"""Pydantic v2 models of the Home Assistant payloads this project reads.

HA adds fields every release (labels, floors, created_at, ...) and older releases lack
some: every model keeps unknown fields (``extra="allow"``) and every field but the id is
optional. ``parse_records`` validates a whole list at once and turns bad records into
``Reject`` entries instead of failing the fetch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

NonEmptyStr = Annotated[str, Field(min_length=1)]


class HAModel(BaseModel):
    """Base of every HA payload model: tolerant of unknown fields."""

    model_config = ConfigDict(extra="allow")

    #: The field that identifies a record in its list (HA's own primary key).
    id_field: ClassVar[str] = ""

    def as_row(self) -> dict[str, Any]:
        """The declared fields as a JSON-ready dict with HA's own field names."""
        return self.model_dump(mode="json", include=_declared_fields(type(self)))


class Area(HAModel):
    """An item of ``config/area_registry/list``."""

    id_field: ClassVar[str] = "area_id"

    area_id: NonEmptyStr
    name: str | None = None
    aliases: list[str] = []
    picture: str | None = None


class Device(HAModel):
    """An item of ``config/device_registry/list`` (the 16 keys of HA 2024.1)."""

    id_field: ClassVar[str] = "id"

    id: NonEmptyStr
    area_id: str | None = None
    config_entries: list[str] = []
    configuration_url: str | None = None
    connections: list[list[Any]] = []
    disabled_by: str | None = None
    entry_type: str | None = None
    hw_version: str | None = None
    identifiers: list[list[Any]] = []
    manufacturer: str | None = None
    model: str | None = None
    name: str | None = None
    name_by_user: str | None = None
    serial_number: str | None = None
    sw_version: str | None = None
    via_device_id: str | None = None


class Entity(HAModel):
    """An entity registry entry enriched by ``get_entries`` and the entity's state.

    The first 16 fields are ``config/entity_registry/list``'s; ``device_class``,
    ``original_device_class`` and ``capabilities`` come from ``get_entries``;
    ``unit_of_measurement`` and ``state_class`` from the state's attributes, and ``has_state``
    says whether HA had a state for the entity at all (a disabled entity has none), so the
    store can tell "no unit" from "no state to read a unit from".
    """

    id_field: ClassVar[str] = "entity_id"

    entity_id: NonEmptyStr
    id: str | None = None
    area_id: str | None = None
    config_entry_id: str | None = None
    device_id: str | None = None
    disabled_by: str | None = None
    entity_category: str | None = None
    has_entity_name: bool | None = None
    hidden_by: str | None = None
    icon: str | None = None
    name: str | None = None
    options: dict[str, Any] | None = None
    original_name: str | None = None
    platform: str | None = None
    translation_key: str | None = None
    unique_id: str | None = None
    device_class: str | None = None
    original_device_class: str | None = None
    capabilities: dict[str, Any] | None = None
    unit_of_measurement: str | None = None
    state_class: str | None = None
    has_state: bool | None = None


class ConfigEntry(HAModel):
    """An item of ``config_entries/get``."""

    id_field: ClassVar[str] = "entry_id"

    entry_id: NonEmptyStr
    domain: str | None = None
    title: str | None = None
    source: str | None = None
    state: str | None = None
    supports_options: bool | None = None
    supports_remove_device: bool | None = None
    supports_unload: bool | None = None
    pref_disable_new_entities: bool | None = None
    pref_disable_polling: bool | None = None
    disabled_by: str | None = None
    reason: str | None = None


class State(HAModel):
    """An item of ``get_states`` (also ``old_state``/``new_state`` of ``state_changed``)."""

    id_field: ClassVar[str] = "entity_id"

    entity_id: NonEmptyStr
    state: str | None = None
    attributes: dict[str, Any] = {}
    last_changed: datetime | None = None
    last_updated: datetime | None = None
    context: dict[str, Any] | None = None


class HAConfig(HAModel):
    """The result of ``get_config``."""

    latitude: float | None = None
    longitude: float | None = None
    elevation: float | None = None
    unit_system: dict[str, Any] = {}
    location_name: str | None = None
    time_zone: str | None = None
    components: list[str] = []
    config_dir: str | None = None
    version: str | None = None
    state: str | None = None
    currency: str | None = None
    country: str | None = None
    language: str | None = None
    external_url: str | None = None
    internal_url: str | None = None
    recovery_mode: bool | None = None
    safe_mode: bool | None = None


@dataclass(frozen=True)
class Reject:
    """A record skipped because it failed validation: which list, which id, which field, why."""

    kind: str
    record_id: str | None
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f".{self.field}" if self.field else ""
        return f"{self.kind} {self.record_id or '<no id>'}{where}: {self.reason}"


M = TypeVar("M", bound=HAModel)


@lru_cache(maxsize=None)
def _declared_fields(model: type[HAModel]) -> frozenset[str]:
    return frozenset(model.model_fields)


@lru_cache(maxsize=None)
def _list_adapter(model: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _record_id(item: Any, id_field: str) -> str | None:
    if isinstance(item, dict):
        value = item.get(id_field)
        return value if isinstance(value, str) and value else (None if value is None else repr(value))
    return None


_CHUNK = 5000


def _validate_chunk(
    model: type[M], items: list[Any], kind: str, rejects: list[Reject]
) -> list[M]:
    adapter = _list_adapter(model)
    try:
        return adapter.validate_python(items)
    except ValidationError as exc:
        bad: dict[int, dict[str, Any]] = {}
        for error in exc.errors(include_url=False, include_input=False):
            bad.setdefault(error["loc"][0], error)  # type: ignore[arg-type]
    for index, error in sorted(bad.items()):
        rejects.append(
            Reject(
                kind,
                _record_id(items[index], model.id_field),
                ".".join(str(part) for part in error["loc"][1:]) or None,
                error["msg"],
            )
        )
    return adapter.validate_python([item for i, item in enumerate(items) if i not in bad])


def parse_records(model: type[M], items: Any, kind: str) -> tuple[list[M], list[Reject]]:
    """Validate a list of raw records; bad records and duplicated ids become ``Reject``s.

    Records are validated a chunk at a time in one pydantic call (fast for 100k
    records); only a chunk that fails is validated again without its bad records.
    Of records sharing an id the first is kept.
    """
    if not isinstance(items, list):
        return [], [Reject(kind, None, None, f"expected a list, got {type(items).__name__}")]
    rejects: list[Reject] = []
    records: list[M] = []
    for start in range(0, len(items), _CHUNK):
        records.extend(_validate_chunk(model, items[start : start + _CHUNK], kind, rejects))
    if not model.id_field:
        return records, rejects
    seen: set[str] = set()
    unique: list[M] = []
    for record in records:
        record_id = getattr(record, model.id_field)
        if record_id in seen:
            rejects.append(Reject(kind, record_id, model.id_field, "duplicate id; the first record was kept"))
            continue
        seen.add(record_id)
        unique.append(record)
    return unique, rejects


def rows_of(model: type[M], records: list[M]) -> list[dict[str, Any]]:
    """``as_row()`` of every record in one pydantic call (fast for 100k records)."""
    return _list_adapter(model).dump_python(
        records, mode="json", include={"__all__": set(_declared_fields(model))}
    )

