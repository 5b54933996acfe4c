"""Storage reports and prune(): what goes, what stays, and that foreign keys hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ha_pipeline.metadata import MetadataStore
from ha_pipeline_tests.test_metadata.home import Rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def test_storage_reports_round_trip(store: MetadataStore) -> None:
    first = store.save_storage_report({"generated_at": day(0).isoformat(), "total_bytes": 1000,
                                       "influxdb_bytes": 900, "sql": {"bytes": 100}, "buckets": {}})
    store.save_storage_report({"total_bytes": 1500.0, "note": "ünïcode"}, created_at=day(2))

    reports = store.storage_reports()
    assert [r["id"] for r in reports][0] == first
    assert [(r["created_at"], r["total_bytes"], r["influxdb_bytes"], r["sql_bytes"]) for r in reports] == [
        (day(0), 1000, 900, 100), (day(2), 1500, None, None)]
    assert reports[1]["report"] == {"total_bytes": 1500.0, "note": "ünïcode"}
    assert [r["created_at"] for r in store.storage_reports(since=day(1))] == [day(2)]


def test_prune_drops_old_changes_and_reports_and_keeps_recent(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=day(0))
    home["devices"][2]["name_by_user"] = "Renamed"
    store.sync(home, now=day(20))
    store.save_storage_report({"total_bytes": 1}, created_at=day(0))
    store.save_storage_report({"total_bytes": 2}, created_at=day(20))

    removed = store.prune(changes_older_than_days=10, removed_older_than_days=None, reports_older_than_days=10,
                          now=day(21))

    assert removed["registry_changes"] == 13 and removed["storage_reports"] == 1
    assert [c["change_type"] for c in store.registry_changes()] == ["renamed"]
    assert [r["total_bytes"] for r in store.storage_reports()] == [2]
    assert store.counts()["entities"] == 5  # inventory untouched


def test_prune_purges_long_removed_rows_with_their_links(store: MetadataStore, home: Rows) -> None:
    store.sync(home, now=day(0))
    # Day 1: the lamp goes with its light; the hub goes too, but the thermometer is
    # still connected via it and one of the hub's entities stays: both keep it as an FK target.
    home["devices"] = [d for d in home["devices"] if d["id"] == "therm"]
    home["entities"] = [e for e in home["entities"] if e["device_id"] in ("therm", "hub")]
    home["areas"] = [a for a in home["areas"] if a["area_id"] != "garden"]
    home["config_entries"] = [c for c in home["config_entries"] if c["entry_id"] != "e2"]
    store.sync(home, now=day(1))
    # Day 50: the humidity sensor goes (recently removed: kept).
    home["entities"] = [e for e in home["entities"] if e["entity_id"] != "sensor.kitchen_humidity"]
    store.sync(home, now=day(50))

    removed = store.prune(changes_older_than_days=None, removed_older_than_days=30, reports_older_than_days=None,
                          now=day(60))

    assert removed == {"registry_changes": 0, "entities": 2, "devices": 1, "device_config_entries": 1, "areas": 1,
                       "config_entries": 1, "storage_reports": 0}
    assert store.device("lamp") is None and store.entity("light.garden_lamp") is None
    assert store.entity("sun.sun") is None
    assert store.device("hub")["removed_at"] == day(1)  # still referenced
    assert store.entity("sensor.kitchen_humidity")["removed_at"] == day(50)
    assert store.area("garden") is None and store.config_entry("e2") is None
    with store.engine.connect() as conn:
        links = conn.execute(sa.text("SELECT device_id FROM device_config_entries ORDER BY device_id")).scalars()
        assert list(links) == ["hub", "therm"]
    assert store.fk_violations() == []
    assert store.counts()["entities"] == 2
