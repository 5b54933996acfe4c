"""Errors of the metadata store a user can meet, each with what to do about it."""

from __future__ import annotations


class MetadataStoreError(Exception):
    """Base class of every metadata store error."""


class SchemaNotReadyError(MetadataStoreError):
    """The database has no schema, or an older one than this code needs."""

    def __init__(self, url: str, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        where = f"revision {current}" if current else "no schema"
        super().__init__(
            f"The metadata database {url} is at {where}, this code needs revision {head}: "
            "call MetadataStore.upgrade() (the discovery job does this) before using it."
        )


class InvalidSnapshotError(MetadataStoreError):
    """The snapshot passed to ``sync`` is not shaped like ``RegistrySnapshot.as_rows()``."""


class StoreLockedError(MetadataStoreError):
    """Another process held the SQLite file's write lock longer than the busy timeout (it heals)."""
