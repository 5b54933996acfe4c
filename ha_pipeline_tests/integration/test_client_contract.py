"""Contract tests: the same client tests against the simulator and a real HA 2024.1.6.

`ha_server` (conftest) runs every test once per server kind. What differs between the
two homes (names, counts) is never asserted; what HA guarantees (shapes, references,
behaviour) is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ha_pipeline.homeassistant import (
    AsyncHomeAssistantClient,
    AuthenticationError,
    HomeAssistantClient,
    State,
    registry_fingerprint,
    websocket_url,
)

pytestmark = pytest.mark.timeout(600)

WRONG_TOKEN = "contract-test-wrong-token"
ONE_MIB = 1024 * 1024


def _probe_sensor(states: list[State]) -> State:
    """A numeric sensor whose state a test may overwrite."""
    for state in states:
        if state.entity_id.startswith("sensor.") and state.attributes.get("unit_of_measurement"):
            try:
                float(state.state or "")
            except ValueError:
                continue
            return state
    raise AssertionError("the home has no numeric sensor to probe")


def _switch(states: list[State]) -> State:
    """A switch that is on or off (both homes have one)."""
    return next(s for s in states if s.entity_id.startswith("switch.") and s.state in ("on", "off"))


def test_auth_ok(ha_server: Any) -> None:
    with HomeAssistantClient(ha_server.url, ha_server.token) as ha:
        config = ha.config()
        assert ha.ha_version
    assert config.state == "RUNNING"
    assert config.time_zone


def test_auth_invalid_is_one_clear_line_without_the_token(
    ha_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as info:
        HomeAssistantClient(ha_server.url, WRONG_TOKEN, retry_budget_seconds=5).config()
    message = str(info.value)
    assert message == (
        f"Home Assistant at {websocket_url(ha_server.url)} rejected the access token (auth_invalid): "
        "create a long-lived access token in your Home Assistant profile (Profile → Security → "
        "Long-lived access tokens) and set HA_TOKEN."
    )
    # In-process servers (the simulator) log their own side; only the client's records count.
    client_log = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("websockets.server", "ha_pipeline.simulator"))
    )
    assert '"access_token": "***"' in client_log  # the auth frame was logged, redacted
    for secret in (WRONG_TOKEN, ha_server.token):
        assert secret not in message and secret not in client_log


def test_every_typed_helper(ha_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ha_pipeline.homeassistant")
    with HomeAssistantClient(ha_server.url, ha_server.token) as ha:
        areas, devices, entries = ha.areas(), ha.devices(), ha.config_entries()
        entities, states = ha.entities(), ha.states()
        snapshot = ha.registry_snapshot()
        probe = _probe_sensor(states)
        now = datetime.now(timezone.utc)
        statistics = ha.statistics_during_period(now - timedelta(days=2), now, [probe.entity_id], period="hour")
    assert "Skipped" not in caplog.text  # no record of either server is rejected
    assert areas and devices and entries and entities and states
    assert snapshot.rejects == []
    assert {a.area_id for a in snapshot.areas} == {a.area_id for a in areas}
    assert {e.entity_id for e in snapshot.entities} == {e.entity_id for e in entities}
    assert len(registry_fingerprint(snapshot)) == 64

    area_ids = {a.area_id for a in areas}
    device_ids = {d.id for d in devices}
    entry_ids = {e.entry_id for e in entries}
    assert {d.area_id for d in devices if d.area_id} <= area_ids
    assert {e.device_id for e in entities if e.device_id} <= device_ids
    assert {e.config_entry_id for e in entities if e.config_entry_id} <= entry_ids
    assert any(d.manufacturer and d.model and d.area_id for d in devices)

    # get_entries and the states enrich the registry list.
    assert any(e.device_class or e.original_device_class for e in entities)
    assert any(e.capabilities for e in entities)
    by_id = {e.entity_id: e for e in entities}
    with_unit = [s for s in states if s.entity_id in by_id and s.attributes.get("unit_of_measurement")]
    assert with_unit
    for state in with_unit:
        assert by_id[state.entity_id].unit_of_measurement == state.attributes["unit_of_measurement"]
        assert by_id[state.entity_id].state_class == state.attributes.get("state_class")

    rows = snapshot.as_rows()
    assert {"device_class", "capabilities", "unit_of_measurement", "state_class", "unique_id"} <= set(
        rows["entities"][0]
    )
    assert set(statistics) <= {probe.entity_id}
    for row in statistics.get(probe.entity_id, []):
        assert isinstance(row["start"], int) and row["end"] - row["start"] == 3_600_000


def test_call_service_changes_a_state(ha_server: Any) -> None:
    with HomeAssistantClient(ha_server.url, ha_server.token) as ha:
        switch = _switch(ha.states())
        wanted = "off" if switch.state == "on" else "on"
        result = ha.call_service("switch", f"turn_{wanted}", target={"entity_id": switch.entity_id})
        assert set(result["context"]) >= {"id", "parent_id", "user_id"}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = {s.entity_id: s.state for s in ha.states()}
            if now[switch.entity_id] == wanted:
                break
            time.sleep(0.2)
        assert now[switch.entity_id] == wanted


def test_coalesced_frames_with_many_commands_in_flight(ha_server: Any) -> None:
    async def main() -> tuple[list[Any], int]:
        async with AsyncHomeAssistantClient(ha_server.url, ha_server.token) as client:
            results = await asyncio.gather(*(client.config() for _ in range(100)))
            return results, client.coalesced_frames

    results, coalesced = asyncio.run(main())
    assert len(results) == 100 and all(r.state == "RUNNING" for r in results)
    assert coalesced >= 1  # the server packed several replies into one JSON array


def test_history_after_a_state_change(ha_server: Any) -> None:
    with HomeAssistantClient(ha_server.url, ha_server.token) as ha:
        probe = _probe_sensor(ha.states())
        value = f"{float(probe.state or 0) + 12.5:.1f}"
        before = datetime.now(timezone.utc) - timedelta(seconds=5)
        ha_server.set_state(probe.entity_id, value, probe.attributes)
        # The recorder commits every commit_interval (1 s in the test bed): poll briefly.
        rows: list[dict[str, Any]] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            rows = ha.history_during_period(before, None, [probe.entity_id, "sensor.does_not_exist"]).get(
                probe.entity_id, []
            )
            if any(row["s"] == value for row in rows):
                break
            time.sleep(0.5)
    changed = [row for row in rows if row["s"] == value]
    assert changed, f"no history row with state {value} for {probe.entity_id}: {rows[-3:]}"
    assert abs(changed[-1]["lu"] - time.time()) < 60
    assert set(changed[-1]) <= {"s", "a", "lu", "lc"}


def test_subscribe_events_receives_a_state_change(ha_server: Any) -> None:
    # The change is made by a service call on the same connection: it goes through each
    # server's own event loop, exactly as a user's automation would.
    with HomeAssistantClient(ha_server.url, ha_server.token) as ha:
        switch = _switch(ha.states())
        wanted = "off" if switch.state == "on" else "on"
        with ha.subscribe_events("state_changed") as events:
            ha.call_service("switch", f"turn_{wanted}", target={"entity_id": switch.entity_id})
            deadline = time.monotonic() + 15
            seen: dict[str, Any] | None = None
            while seen is None and time.monotonic() < deadline:
                event = events.next_event(timeout=max(0.1, deadline - time.monotonic()))
                data = event["data"]
                if data["entity_id"] == switch.entity_id and (data["new_state"] or {}).get("state") == wanted:
                    seen = event
        assert ha.config().state == "RUNNING"  # the connection still serves commands after unsubscribing
    assert seen is not None
    assert seen["event_type"] == "state_changed"
    assert State.model_validate(seen["data"]["old_state"]).state == switch.state
    assert State.model_validate(seen["data"]["new_state"]).state == wanted


@pytest.fixture(params=["simulator", "real_ha"])
def large_ha(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(url, token) of a home whose entity registry list is larger than 1 MiB."""
    if request.param == "real_ha":
        ha = request.getfixturevalue("real_ha_large")
        yield ha.url, ha.token
        return
    from ha_pipeline.simulator import SimulatedHome, SimulatorServer

    token = "large-simulator-token"
    server = SimulatorServer(
        SimulatedHome.generate(seed=1, devices=400, entities_per_device=8), host="127.0.0.1", port=0, token=token
    )
    server.start()
    try:
        yield server.url, token
    finally:
        server.stop()


def test_registry_larger_than_one_mebibyte(large_ha: tuple[str, str]) -> None:
    url, token = large_ha
    with HomeAssistantClient(url, token) as ha:
        raw = ha.command("config/entity_registry/list")
        entities = ha.entities()
        snapshot = ha.registry_snapshot()
    assert len(json.dumps(raw)) > ONE_MIB
    assert len(entities) == len(raw) > 2000
    assert snapshot.rejects == [] and len(snapshot.entities) == len(raw)
