"""SQL inventory of a Home Assistant home: tables, migrations, sync and queries.

Imports only SQLAlchemy, Alembic and the standard library; takes plain dicts with HA's
own field names (``RegistrySnapshot.as_rows()``).
"""

from .errors import InvalidSnapshotError, MetadataStoreError, SchemaNotReadyError
from .store import MetadataStore, make_engine
from .sync import CHANGE_TYPES, SyncResult

__all__ = [
    "CHANGE_TYPES",
    "InvalidSnapshotError",
    "MetadataStore",
    "MetadataStoreError",
    "SchemaNotReadyError",
    "SyncResult",
    "make_engine",
]
