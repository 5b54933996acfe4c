"""Fixtures of the metadata store tests: a fresh store per test on SQLite and PostgreSQL.

``store`` is parametrised over both backends: SQLite gets a file in ``tmp_path``; PostgreSQL
gets its own database, created in the session's throwaway cluster (``postgres_url``) and
dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from ha_pipeline.metadata import MetadataStore
from ha_pipeline_tests.test_metadata.home import HOME, Rows


@pytest.fixture
def home() -> Rows:
    """A small home in HA's own shapes; each test gets its own copy to mutate."""
    return copy.deepcopy(HOME)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[MetadataStore]:
    """An upgraded store on a fresh SQLite file."""
    store = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    store.upgrade()
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
        return
    server_url = make_url(request.getfixturevalue("postgres_url"))
    name = f"meta_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def store(fresh_url: str) -> Iterator[MetadataStore]:
    """An upgraded store, once on SQLite and once on PostgreSQL."""
    store = MetadataStore(fresh_url)
    store.upgrade()
    yield store
    store.dispose()
