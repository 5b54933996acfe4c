"""Property: any sequence of snapshots leaves exactly the last one current, FKs intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ha_pipeline.metadata import MetadataStore
from ha_pipeline_tests.test_metadata.home import Rows, area, config_entry, device, entity

AREAS = ["a0", "a1", "a2"]
DEVICES = ["d0", "d1", "d2", "d3"]
ENTITIES = [f"sensor.e{i}" for i in range(6)]
ENTRIES = ["c0", "c1"]


def maybe(values: list[str]) -> st.SearchStrategy[str | None]:
    """None or one of ``values``."""
    return st.none() | st.sampled_from(values)


@st.composite
def snapshots(draw: st.DrawFn) -> Rows:
    """A random home over a small id universe; references may dangle, names may change."""
    areas = draw(st.lists(st.sampled_from(AREAS), unique=True))
    devices = draw(st.lists(st.sampled_from(DEVICES), unique=True))
    entities = draw(st.lists(st.sampled_from(ENTITIES), unique=True))
    entries = draw(st.lists(st.sampled_from(ENTRIES), unique=True))
    return {
        "areas": [area(a, draw(st.sampled_from(["x", "y"]))) for a in areas],
        "config_entries": [config_entry(c, "peer_home", "P") for c in entries],
        "devices": [
            device(d, draw(st.sampled_from(["n1", "n2"])), draw(maybe(AREAS)), draw(st.lists(st.sampled_from(ENTRIES))),
                   via_device_id=draw(maybe(DEVICES)), disabled_by=draw(maybe(["user"])))
            for d in devices
        ],
        "entities": [
            entity(e, draw(maybe(DEVICES)), draw(maybe(ENTRIES)), area_id=draw(maybe(AREAS)),
                   name=draw(maybe(["n"])), unit_of_measurement=draw(maybe(["W", "kW"])))
            for e in entities
        ],
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(snapshots(), min_size=1, max_size=4))
def test_any_sequence_of_snapshots_converges(sequence: list[Rows]) -> None:
    with TemporaryDirectory() as tmp:
        store = MetadataStore(f"sqlite:///{Path(tmp) / 'p.db'}")
        store.upgrade()
        now = datetime(2026, 1, 1, tzinfo=UTC)
        current: dict[str, set[str]] = {t: set() for t in ("areas", "devices", "entities", "config_entries")}
        for step, rows in enumerate(sequence):
            result = store.sync(rows, now=now + timedelta(hours=step))
            ids = {
                "areas": {r["area_id"] for r in rows["areas"]},
                "devices": {r["id"] for r in rows["devices"]},
                "entities": {r["entity_id"] for r in rows["entities"]},
                "config_entries": {r["entry_id"] for r in rows["config_entries"]},
            }
            for table, new in ids.items():
                assert result.added[table] + result.revived[table] == len(new - current[table])
                assert result.removed[table] == len(current[table] - new)
            assert {e["entity_id"] for e in store.entities()} == ids["entities"]
            assert {d["device_id"] for d in store.devices()} == ids["devices"]
            assert store.counts()["areas"] == len(ids["areas"])
            assert store.fk_violations() == []
            assert result.rejects == []
            assert store.sync(rows, now=now + timedelta(hours=step, minutes=30)).rows_written == 0
            current = ids
        store.dispose()
