"""A SQLite store locked by another process fails in one sentence, not a SQLAlchemy traceback."""

import sqlite3
from datetime import UTC, datetime

import pytest

from ha_pipeline.metadata.errors import StoreLockedError
from ha_pipeline.metadata.store import MetadataStore
from ha_pipeline_tests.test_metadata.home import HOME

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_locked_sqlite_store_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr("ha_pipeline.metadata.store.SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "ha.db"
    store = MetadataStore(f"sqlite:///{path}")
    store.upgrade()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreLockedError) as info:
            store.sync({k: list(v) for k, v in HOME.items()}, now=NOW)
    finally:
        other.execute("ROLLBACK")
        other.close()
    message = str(info.value)
    assert message.startswith(f"The SQLite metadata store {path} stayed locked by another process for 0.2 s")
    assert "HA_PIPELINE_DB_URL" in message and "\n" not in message
    assert not getattr(info.value, "permanent", False)  # waiting heals it: retries stay
