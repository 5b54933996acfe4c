"""HA's entity-id rule, in one place for the client and the metadata store (stdlib only).

Home Assistant 2024.1 (``homeassistant.core.valid_entity_id``) accepts ``domain.object_id``
where both parts are runs of lowercase ``a-z``, ``_`` and decimal digits (any Unicode digit:
the pattern uses ``\\d`` on text), neither part starts or ends with ``_``, and the id holds
no ``__``. Its pattern ends in ``$`` without a full match, and ``$`` also matches before one
final newline, so HA accepts such an id followed by a single ``"\\n"`` as well (and
``config/entity_registry/update`` renames an entity to one): the rule below says the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SLUG = r"(?!_)[\da-z_]+(?<!_)"
_STRICT = re.compile(rf"{_SLUG}\.{_SLUG}")
# Many ids, newline-joined, in one C-level match: the usual all-valid home needs no Python loop.
_ALL_STRICT = re.compile(rf"(?:{_SLUG}\.{_SLUG}\n)*{_SLUG}\.{_SLUG}")


def valid_entity_id(entity_id: str) -> bool:
    """True when Home Assistant accepts ``entity_id`` (HA's ``valid_entity_id``)."""
    body = entity_id[:-1] if entity_id.endswith("\n") else entity_id
    return "__" not in body and _STRICT.fullmatch(body) is not None


def all_valid_entity_ids(entity_ids: Sequence[str]) -> bool:
    """True when HA accepts every id of ``entity_ids``; fast for a large home of plain ids."""
    joined = "\n".join(entity_ids)
    if joined.count("\n") == len(entity_ids) - 1 and "__" not in joined and _ALL_STRICT.fullmatch(joined):
        return True
    return all(map(valid_entity_id, entity_ids))
