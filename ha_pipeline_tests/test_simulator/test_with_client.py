"""The project's own HA client against the simulator: every typed helper, no rejected records."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ha_pipeline.homeassistant.client import HomeAssistantClient
from ha_pipeline.simulator import SimulatedHome, SimulatorServer

from .conftest import NOW, TOKEN


def test_client_reads_everything_without_rejects(server: SimulatorServer, home: SimulatedHome) -> None:
    end = datetime.fromtimestamp(NOW, timezone.utc)
    with HomeAssistantClient(server.url, TOKEN) as ha:
        snapshot = ha.registry_snapshot()
        assert snapshot.rejects == []
        assert len(snapshot.devices) == len(home.devices) and len(snapshot.entities) == len(home.entities)
        assert len(snapshot.areas) == len(home.areas) and len(snapshot.config_entries) == len(home.config_entries)
        assert len(ha.states()) == len(home.states)
        assert ha.config().version == "2024.1.6"
        ids = [e for e in home.states if e.startswith("sensor.")][:30]
        history = ha.history_during_period(end - timedelta(hours=6), end, ids, batch_size=7, minimal_response=True)
        assert set(history) == set(ids)
        stats = ha.statistics_during_period(end - timedelta(days=1), end, ids, period="hour")
        assert stats and all(isinstance(r["start"], int) for rows in stats.values() for r in rows)
        result = ha.call_service("input_boolean", "toggle", target={"entity_id": "input_boolean.guest_mode"})
        assert set(result["context"]) == {"id", "parent_id", "user_id"}


def test_client_reads_a_registry_larger_than_one_mebibyte() -> None:
    home = SimulatedHome.generate(seed=2, devices=800, entities_per_device=5, now=NOW)
    with SimulatorServer(home, token=TOKEN) as srv, HomeAssistantClient(srv.url, TOKEN) as ha:
        assert len(ha.entities()) == len(home.entities)
