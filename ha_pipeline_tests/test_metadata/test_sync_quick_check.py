"""sync()'s quick check and its `added` rows, on SQLite and PostgreSQL.

An unchanged re-sync skips reading and comparing a table whose snapshot fingerprint and
stored-row signature both match `sync_state`; anything written behind the store's back that
changes the signature (a row added, deleted, marked removed) is still healed, and
`full_compare=True` heals what it cannot see (a column edited by hand).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ha_pipeline.metadata import MetadataStore
from ha_pipeline.metadata.records import Snapshot, fingerprint, normalise
from ha_pipeline.metadata.sync import ADDED_COLUMNS, TABLES
from ha_pipeline_tests.test_metadata.home import Rows, by_type, find

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)


def _statements(store: MetadataStore) -> tuple[list[str], object]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    return seen, record


def _exec(store: MetadataStore, sql: str) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql(sql)


def test_added_rows_name_the_record_and_match_what_is_stored(store: MetadataStore, home: Rows) -> None:
    result = store.sync(home, now=T0)

    stored = {(c["table_name"], c["object_id"], c["change_type"]): c for c in store.registry_changes()}
    returned = by_type(result.changes)
    assert stored.keys() == returned.keys() and len(stored) == 13
    for key, change in returned.items():
        assert change["old_values"] is None
        assert stored[key]["new_values"] == change["new_values"], key
        assert set(change["new_values"]) <= {*ADDED_COLUMNS[key[0]], "config_entries"}
    assert returned[("devices", "therm", "added")]["new_values"] == {
        "name": "Thermometer", "manufacturer": "Climatix", "model": "M1", "area_id": "kitchen",
        "via_device_id": "hub", "config_entries": ["e1"],
    }
    # Nulls are left out; the entity's effective area comes from its device.
    assert returned[("entities", "sensor.kitchen_humidity", "added")]["new_values"] == {
        "original_name": "Value", "platform": "peer_home", "device_id": "therm", "area_id": "kitchen",
    }
    assert returned[("areas", "hall", "added")]["new_values"] == {"name": "Hall"}
    # The added rows are built on access: indexing, slicing and iterating agree.
    every = list(result.changes)
    assert len(result.changes) == 13 and result.changes == every and result.changes != every[:-1]
    assert [result.changes[i] for i in range(-13, 13)] == every + every
    assert result.changes[4:9] == every[4:9] and result.changes[::-3] == every[::-3]


def test_an_unchanged_resync_reads_no_rows(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    statements, record = _statements(store)
    result = store.sync(home, now=T1)
    sa.event.remove(store.engine, "before_cursor_execute", record)

    assert result.quick_checked == list(TABLES)
    assert result.unchanged == {"areas": 3, "config_entries": 2, "devices": 3, "entities": 5}
    assert result.rows_written == 0 and result.changes == []
    assert not [s for s in statements if s.startswith("SELECT removed_at")]
    assert not [s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]


def test_the_list_order_of_a_snapshot_does_not_matter(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    reordered = {table: list(reversed(items)) for table, items in home.items()}
    for device in reordered["devices"]:
        device["identifiers"] = list(reversed(device["identifiers"]))

    assert store.sync(reordered, now=T1).quick_checked == list(TABLES)


def test_a_change_is_compared_only_in_its_own_table(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    find(home["entities"], "entity_id", "sun.sun")["name"] = "Sun"

    result = store.sync(home, now=T1)

    assert result.quick_checked == ["areas", "config_entries", "devices"]
    assert result.changed["entities"] == 1 and result.unchanged["entities"] == 4
    # The new state is remembered: the next sync of the same snapshot is quick again.
    assert store.sync(home, now=T2).quick_checked == list(TABLES)


def test_rows_removed_or_deleted_behind_the_stores_back_are_healed(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    _exec(store, "UPDATE devices SET removed_at = last_seen WHERE device_id = 'lamp'")
    _exec(store, "DELETE FROM entities WHERE entity_id = 'sun.sun'")

    result = store.sync(home, now=T1)

    assert result.quick_checked == ["areas", "config_entries"]
    assert result.revived["devices"] == 1 and result.added["entities"] == 1
    assert store.device("lamp")["removed_at"] is None and store.entity("sun.sun") is not None
    assert store.sync(home, now=T2).quick_checked == list(TABLES)


def test_a_column_edited_by_hand_is_healed_by_a_full_compare(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    _exec(store, "UPDATE areas SET name = 'Edited' WHERE area_id = 'hall'")

    # The signature cannot see an in-place edit: the quick check trusts the table ...
    assert store.sync(home, now=T1).quick_checked == list(TABLES)
    assert store.area("hall")["name"] == "Edited"
    # ... and a full compare finds and logs it.
    result = store.sync(home, now=T2, full_compare=True)
    assert result.quick_checked == []
    assert by_type(result.changes)[("areas", "hall", "renamed")]["new_values"] == {"name": "Hall"}
    assert store.area("hall")["name"] == "Hall"


def test_pruning_removed_rows_makes_the_next_sync_compare(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=T0)
    home["entities"] = [e for e in home["entities"] if e["entity_id"] != "sun.sun"]
    store.sync(home, now=T1)
    assert store.prune(None, removed_older_than_days=0, reports_older_than_days=None, now=T2)["entities"] == 1

    result = store.sync(home, now=T2)

    assert "entities" not in result.quick_checked and result.rows_written == 0


def _snap(rows: Rows) -> Snapshot:
    return normalise(rows, {"areas": set(), "config_entries": set(), "devices": set()}, {})


def test_the_fingerprint_sees_every_difference(home: Rows) -> None:
    base = {table: fingerprint(table, _snap(home)) for table in TABLES}
    assert base == {table: fingerprint(table, _snap(copy.deepcopy(home))) for table in TABLES}

    def changed(edit) -> set[str]:  # type: ignore[no-untyped-def]
        rows = copy.deepcopy(home)
        edit(rows)
        return {table for table in TABLES if fingerprint(table, _snap(rows)) != base[table]}

    assert changed(lambda r: find(r["areas"], "area_id", "hall").update(picture="None")) == {"areas"}
    assert changed(lambda r: find(r["entities"], "entity_id", "sun.sun").update(has_entity_name=False)) == {"entities"}
    assert changed(lambda r: find(r["entities"], "entity_id", "sun.sun").update(has_entity_name=None)) == {"entities"}
    assert changed(lambda r: find(r["devices"], "id", "lamp").update(config_entries=["e1", "e2"])) == {"devices"}
    # A device moving area moves the effective area of its entities too.
    assert changed(lambda r: find(r["devices"], "id", "lamp").update(area_id="hall")) == {"devices"}
    assert changed(lambda r: find(r["devices"], "id", "therm").update(area_id="hall")) == {"devices", "entities"}
    # Values that would run together in a plain concatenation stay apart.
    assert changed(lambda r: find(r["config_entries"], "entry_id", "e2").update(domain="hu", title="eHue")) == {
        "config_entries"
    }
    # A record rejected (kept as stored) is not the same as a record gone (marked removed).
    gone = copy.deepcopy(home)
    gone["entities"] = [e for e in gone["entities"] if e["entity_id"] != "sun.sun"]
    rejected = copy.deepcopy(home)
    find(rejected["entities"], "entity_id", "sun.sun")["platform"] = 42
    assert _snap(gone).rows["entities"] == _snap(rejected).rows["entities"]
    assert fingerprint("entities", _snap(gone)) != fingerprint("entities", _snap(rejected))
