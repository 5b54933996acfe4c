"""The WebSocket client against a scripted HA look-alike: helpers, concurrency, failures."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ha_pipeline.homeassistant import (
    AsyncHomeAssistantClient,
    AuthenticationError,
    CannotConnectError,
    CommandError,
    CommandTimeoutError,
    ConnectionLostError,
    HomeAssistantClient,
    HomeAssistantError,
    websocket_url,
)
from ha_pipeline.homeassistant.registry import registry_fingerprint
from ha_pipeline_tests.test_homeassistant.scripted_server import (
    CLOSE,
    SILENT,
    Error,
    TOKEN,
    ScriptedServer,
    free_port,
    sample,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


def client_log(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the client side logged (the scripted server's own logs are not ours)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server"))


def assert_no_token(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    assert TOKEN not in str(exc) and TOKEN not in repr(exc)
    assert "s3cr3t" not in client_log(caplog)
    assert "\n" not in str(exc)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8123", "ws://127.0.0.1:8123/api/websocket"),
        ("https://ha.example:443/", "wss://ha.example:443/api/websocket"),
        ("http://proxy/ha", "ws://proxy/ha/api/websocket"),
        ("ws://127.0.0.1:8123/api/websocket", "ws://127.0.0.1:8123/api/websocket"),
        ("wss://ha.example", "wss://ha.example/api/websocket"),
    ],
)
def test_websocket_url(given: str, expected: str) -> None:
    assert websocket_url(given) == expected


def test_websocket_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="HA_URL must look like"):
        websocket_url("ftp://x")


def test_sync_helpers_against_recorded_payloads(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with HomeAssistantClient(server.http_url, TOKEN) as ha:
        assert ha.ha_version == "2024.1.6"
        assert [a.area_id for a in ha.areas()] == [a["area_id"] for a in sample("area_registry_list.json")]
        assert len(ha.devices()) == len(sample("device_registry_list.json"))
        assert len(ha.config_entries()) == len(sample("config_entries_get.json"))
        assert len(ha.states()) == len(sample("get_states.json"))
        assert ha.config().location_name == "Peer Home"
        assert ha.call_service("input_boolean", "toggle", target={"entity_id": "input_boolean.x"}) == sample(
            "call_service_result.json"
        )
    assert server.connections == 1  # one connection for every call inside the with block
    first = server.received[0]
    assert first == {"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}}
    ids = [msg["id"] for msg in server.received]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert '"access_token": "***"' in client_log(caplog) and "s3cr3t" not in client_log(caplog)


def test_older_ha_without_supported_features_still_works(server: ScriptedServer) -> None:
    del server.handlers["supported_features"]  # the scripted server answers unknown_command
    with HomeAssistantClient(server.url, TOKEN) as ha:
        assert ha.config().version == "2024.1.6"
    assert [m["type"] for m in server.received] == ["supported_features", "get_config"]


def test_entities_are_enriched_from_get_entries_and_states(server: ScriptedServer) -> None:
    entries = sample("entity_registry_get_entries.json")
    states = {s["entity_id"]: s for s in sample("get_states.json")}
    with HomeAssistantClient(server.url, TOKEN) as ha:
        entities = {e.entity_id: e for e in ha.entities()}
    assert len(entities) == len(sample("entity_registry_list.json"))
    for entity_id, entry in entries.items():
        if entity_id in entities:
            assert entities[entity_id].capabilities == entry["capabilities"]
            assert entities[entity_id].device_class == entry["device_class"]
            assert entities[entity_id].original_device_class == entry["original_device_class"]
    with_unit = [e for e in entities.values() if e.entity_id in states and e.unit_of_measurement]
    assert with_unit, "samples hold sensors with units"
    for entity in with_unit:
        assert entity.unit_of_measurement == states[entity.entity_id]["attributes"]["unit_of_measurement"]
    assert {e.entity_id for e in entities.values() if e.has_state} == set(entities) & set(states)
    assert any(not e.has_state for e in entities.values()), "samples hold an entity without a state"
    requested = [m for m in server.received if m["type"] == "config/entity_registry/get_entries"]
    assert sorted(sum((m["entity_ids"] for m in requested), [])) == sorted(entities)


def test_registry_snapshot_collects_rejects_without_failing(server: ScriptedServer) -> None:
    areas = sample("area_registry_list.json") + [{"name": "no id"}]
    server.handlers["config/area_registry/list"] = lambda msg: areas
    with HomeAssistantClient(server.url, TOKEN) as ha:
        snapshot = ha.registry_snapshot()
    assert len(snapshot.areas) == len(areas) - 1
    assert [(r.kind, r.field) for r in snapshot.rejects] == [("area", "area_id")]
    rows = snapshot.as_rows()
    assert len(rows["entities"]) == len(sample("entity_registry_list.json"))


def test_sync_facade_shares_one_connection_between_threads(server: ScriptedServer) -> None:
    with HomeAssistantClient(server.url, TOKEN) as ha, ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(lambda _: ha.config().version, range(40)))
    assert versions == ["2024.1.6"] * 40
    assert server.connections == 1
    ids = [msg["id"] for msg in server.received]
    assert ids == list(range(1, 42))  # supported_features + 40 commands, ids increasing on the wire


def test_nested_with_is_refused(server: ScriptedServer) -> None:
    client = HomeAssistantClient(server.url, TOKEN)
    with client, pytest.raises(HomeAssistantError, match="already open"):
        with client:
            pass
    assert server.connections == 1


def test_call_outside_with_opens_and_closes_its_own_connection(server: ScriptedServer) -> None:
    ha = HomeAssistantClient(server.url, TOKEN)
    assert len(ha.areas()) == len(sample("area_registry_list.json"))
    assert len(ha.devices()) == len(sample("device_registry_list.json"))
    assert server.connections == 2


def test_many_commands_in_flight_answered_out_of_order() -> None:
    held: list[dict[str, Any]] = []
    server = ScriptedServer()

    def echo(msg: dict[str, Any]) -> Any:
        held.append(msg)
        if len(held) == 50:
            # Answer all 50 at once, newest first, some as coalesced arrays.
            replies = [{"id": m["id"], "type": "result", "success": True, "result": m["n"]} for m in reversed(held)]
            ws = server.ws
            assert ws is not None
            for start in range(0, 50, 7):
                chunk = replies[start : start + 7]
                asyncio.ensure_future(ws.send(json.dumps(chunk if start % 2 else chunk[0])))
                for single in chunk[1:] if not start % 2 else []:
                    asyncio.ensure_future(ws.send(json.dumps(single)))
        return SILENT

    server.handlers["test/echo"] = echo

    async def main() -> list[int]:
        async with AsyncHomeAssistantClient(server.url, TOKEN) as client:
            return await asyncio.gather(*(client.command("test/echo", n=n) for n in range(50)))

    with server:
        assert asyncio.run(main()) == list(range(50))


def test_coalesced_frames_are_split_into_messages() -> None:
    async def main(url: str) -> tuple[list[Any], int]:
        async with AsyncHomeAssistantClient(url, TOKEN) as client:
            results = await asyncio.gather(client.areas(), client.devices(), client.config(), client.states())
            return results, client.coalesced_frames

    with ScriptedServer(coalesce=True) as server:
        (areas, devices, config, states), coalesced = asyncio.run(main(server.url))
        assert coalesced == server.array_frames >= 2  # supported_features reply + the batch of four
    assert len(areas) == len(sample("area_registry_list.json"))
    assert len(devices) == len(sample("device_registry_list.json"))
    assert config.version == "2024.1.6"
    assert len(states) == len(sample("get_states.json"))


def test_frames_larger_than_one_mebibyte(server: ScriptedServer) -> None:
    template = sample("entity_registry_list.json")[0]
    big = [dict(template, entity_id=f"sensor.big_{i}", unique_id=f"u{i}") for i in range(12_000)]
    assert len(json.dumps(big)) > 2 * 1024 * 1024
    server.handlers["config/entity_registry/list"] = lambda msg: big
    server.handlers["get_states"] = lambda msg: []
    with HomeAssistantClient(server.url, TOKEN) as ha:
        entities = ha.entities()
    assert len(entities) == 12_000
    requests = [m for m in server.received if m["type"] == "config/entity_registry/get_entries"]
    assert [len(m["entity_ids"]) for m in requests] == [5000, 5000, 2000]


def test_history_is_requested_in_batches_and_merged(server: ScriptedServer) -> None:
    def history(msg: dict[str, Any]) -> dict[str, Any]:
        return {eid: [{"s": "1", "lu": 1.0}] for eid in msg["entity_ids"] if not eid.endswith("_none")}

    server.handlers["history/history_during_period"] = history
    ids = [f"sensor.s{i}" for i in range(450)] + ["sensor.s0", "sensor.x_none"]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with HomeAssistantClient(server.url, TOKEN) as ha:
        result = ha.history_during_period(start, start + timedelta(hours=1), ids, batch_size=200)
    assert len(result) == 450 and result["sensor.s449"] == [{"s": "1", "lu": 1.0}]
    requests = [m for m in server.received if m["type"] == "history/history_during_period"]
    assert [len(m["entity_ids"]) for m in requests] == [200, 200, 51]
    assert requests[0]["start_time"] == "2026-01-01T00:00:00+00:00"
    assert requests[0]["end_time"] == "2026-01-01T01:00:00+00:00"
    assert requests[0]["significant_changes_only"] is False
    assert requests[0]["include_start_time_state"] is True


@pytest.mark.parametrize(
    "name",
    [
        "history_full_1h.json",
        "history_minimal_24h.json",
        "history_minimal_attrs_6h.json",
        "history_no_end_time.json",
        "history_light_attr_changes_sig_false.json",
        "history_light_attr_changes_sig_true.json",
    ],
)
def test_recorded_history_passes_through_unchanged_across_batches(server: ScriptedServer, name: str) -> None:
    recorded = sample(name)
    server.handlers["history/history_during_period"] = lambda msg: {
        eid: rows for eid, rows in recorded.items() if eid in msg["entity_ids"]
    }
    start = datetime(2026, 11, 22, tzinfo=timezone.utc)
    with HomeAssistantClient(server.url, TOKEN) as ha:
        result = ha.history_during_period(start, None, [*recorded, "sensor.unknown"], batch_size=1)
    assert result == recorded
    assert all(set(row) <= {"s", "a", "lu", "lc"} for rows in result.values() for row in rows)


@pytest.mark.parametrize(
    "name", ["error_unknown_command.json", "error_id_reuse.json", "error_history_missing_entity_ids.json"]
)
def test_recorded_errors_become_command_errors(server: ScriptedServer, name: str) -> None:
    error = sample(name)["error"]
    server.handlers["get_config"] = lambda msg: Error(error["code"], error["message"])
    with HomeAssistantClient(server.url, TOKEN) as ha, pytest.raises(CommandError) as info:
        ha.config()
    assert (info.value.code, info.value.message) == (error["code"], error["message"])
    assert str(info.value) == f"Home Assistant rejected command 'get_config' ({error['code']}): {error['message']}"


def test_history_refuses_naive_datetimes(server: ScriptedServer) -> None:
    with HomeAssistantClient(server.url, TOKEN) as ha, pytest.raises(ValueError, match="time zone"):
        ha.history_during_period(datetime(2026, 1, 1), None, ["sensor.a"])


def test_statistics_during_period_params(server: ScriptedServer) -> None:
    recorded = sample("statistics_during_period_hour.json")
    server.handlers["recorder/statistics_during_period"] = lambda msg: recorded
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with HomeAssistantClient(server.url, TOKEN) as ha:
        result = ha.statistics_during_period(start, None, list(recorded), period="day", units={"energy": "Wh"})
    assert result == recorded
    request = server.received[-1]
    assert request["period"] == "day" and request["units"] == {"energy": "Wh"} and "end_time" not in request
    with HomeAssistantClient(server.url, TOKEN) as ha:
        assert ha.statistics_during_period(start, None, []) == {}


def test_subscribe_events_delivers_events_and_unsubscribes(server: ScriptedServer) -> None:
    event = sample("state_changed_event.json")["event"]

    def subscribe(msg: dict[str, Any]) -> None:
        ws = server.ws
        assert ws is not None
        frame = json.dumps({"id": msg["id"], "type": "event", "event": event})
        for _ in range(2):
            asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(ws.send(frame)))
        return None

    server.handlers["subscribe_events"] = subscribe

    async def main(url: str) -> list[dict[str, Any]]:
        async with AsyncHomeAssistantClient(url, TOKEN) as client:
            async with client.subscribe_events("state_changed") as events:
                return [await asyncio.wait_for(anext(events), 5) for _ in range(2)]

    received = asyncio.run(main(server.url))
    assert received == [event, event]
    subscribe_msg = next(m for m in server.received if m["type"] == "subscribe_events")
    assert subscribe_msg["event_type"] == "state_changed"
    assert {"id": subscribe_msg["id"] + 1, "type": "unsubscribe_events", "subscription": subscribe_msg["id"]} in (
        server.received
    )


def test_sync_subscription_next_event_with_timeout(server: ScriptedServer) -> None:
    server.handlers["subscribe_events"] = lambda msg: None
    with HomeAssistantClient(server.url, TOKEN) as ha, ha.subscribe_events("state_changed") as events:
        with pytest.raises(TimeoutError):
            events.next_event(timeout=0.2)
    assert server.received[-1]["type"] == "unsubscribe_events"


def test_a_frame_that_is_not_json_is_skipped(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    def garbage_then_answer(msg: dict[str, Any]) -> Any:
        assert server.ws is not None
        asyncio.ensure_future(server.ws.send("<html>proxy error</html>"))
        return sample("get_config.json")

    server.handlers["get_config"] = garbage_then_answer
    with HomeAssistantClient(server.url, TOKEN) as ha:
        assert ha.config().version == "2024.1.6"
        assert len(ha.areas()) == len(sample("area_registry_list.json"))
    assert "not JSON" in caplog.text


def test_command_error_carries_code_and_message(server: ScriptedServer) -> None:
    with HomeAssistantClient(server.url, TOKEN) as ha, pytest.raises(CommandError) as info:
        ha.command("no/such/command")
    assert info.value.code == "unknown_command"
    assert str(info.value) == "Home Assistant rejected command 'no/such/command' (unknown_command): Unknown command."


# -- failure modes: one clear line each, never the token -----------------------------


def test_auth_invalid(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as info:
        with HomeAssistantClient(server.http_url, "wrong-" + TOKEN):
            pass
    assert str(info.value) == (
        f"Home Assistant at {server.url} rejected the access token (auth_invalid): create a long-lived "
        "access token in your Home Assistant profile (Profile → Security → Long-lived access tokens) "
        "and set HA_TOKEN."
    )
    assert server.connections == 1  # a rejected token is not retried
    assert info.value.__cause__ is None
    assert_no_token(info.value, caplog)
    assert "wrong-" not in client_log(caplog)
    assert '"access_token": "***"' in client_log(caplog)  # the auth frame was logged, redacted


def test_connection_refused_ends_in_cannot_connect_after_the_budget(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"ws://127.0.0.1:{free_port()}/api/websocket"
    with pytest.raises(CannotConnectError) as info:
        HomeAssistantClient(url, TOKEN, retry_budget_seconds=1.5).areas()
    message = str(info.value)
    assert message.startswith(f"Cannot reach Home Assistant at {url} after ")
    assert ": connection refused. Check HA_URL and that Home Assistant is running." in message
    attempts = int(message.split(" after ")[1].split(" ")[0])
    seconds = float(message.split(" over ")[1].split(" s:")[0])
    assert attempts >= 3 and 1.4 <= seconds < 5
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert_no_token(info.value, caplog)


def test_server_that_never_completes_the_handshake_times_out(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as listener:  # accepts TCP connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}/api/websocket"
        started = time.monotonic()
        with pytest.raises(CannotConnectError) as info:
            HomeAssistantClient(url, TOKEN, connect_timeout=0.3, retry_budget_seconds=1).config()
        elapsed = time.monotonic() - started
    assert f"Cannot reach Home Assistant at {url} after " in str(info.value)
    assert ": no answer within 0.3 s. Check HA_URL" in str(info.value)
    assert elapsed < 5
    assert_no_token(info.value, caplog)


def test_http_503_while_starting_is_retried_until_it_works() -> None:
    with ScriptedServer(reject_first=2) as server:
        with HomeAssistantClient(server.url, TOKEN, retry_budget_seconds=10) as ha:
            assert ha.config().version == "2024.1.6"
        assert server.attempts == 3


def test_socket_closed_right_after_auth_is_retried() -> None:
    server = ScriptedServer()
    server.handlers["supported_features"] = lambda msg: CLOSE if server.connections == 1 else None
    with server, HomeAssistantClient(server.url, TOKEN, retry_budget_seconds=10) as ha:
        assert ha.config().version == "2024.1.6"
        assert server.connections == 2


def test_peer_that_is_not_home_assistant_fails_at_once() -> None:
    server = ScriptedServer()

    async def not_ha(ws: Any) -> None:
        await ws.send(json.dumps({"hello": "world"}))
        await ws.wait_closed()

    server._handle = not_ha  # type: ignore[method-assign]
    started = time.monotonic()
    with server, pytest.raises(CannotConnectError) as info:
        HomeAssistantClient(server.url, TOKEN, retry_budget_seconds=10).config()
    assert time.monotonic() - started < 5
    assert info.value.permanent
    assert str(info.value) == (
        f"The server at {server.url} is not Home Assistant's WebSocket API (expected auth_required, "
        "got 'None'): set HA_URL to your Home Assistant's address, e.g. http://homeassistant.local:8123."
    )


def test_an_unreachable_home_assistant_is_not_permanent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CannotConnectError) as info:
        HomeAssistantClient(f"http://127.0.0.1:{port}", TOKEN, retry_budget_seconds=0.5).config()
    assert not info.value.permanent and "connection refused" in str(info.value)


def test_a_rejected_or_missing_token_is_permanent(server: ScriptedServer) -> None:
    with pytest.raises(AuthenticationError) as rejected:
        HomeAssistantClient(server.url, "wrong-token").config()
    with pytest.raises(AuthenticationError) as missing:
        HomeAssistantClient(server.url, " ").config()
    assert rejected.value.permanent and missing.value.permanent
    assert str(missing.value).startswith("No Home Assistant access token was given") and "HA_TOKEN" in str(missing.value)


def test_an_unauthorized_command_is_permanent_and_says_what_to_do(server: ScriptedServer) -> None:
    server.handlers["config/entity_registry/list"] = lambda msg: Error("unauthorized", "Unauthorized")
    with pytest.raises(CommandError) as info:
        HomeAssistantClient(server.url, TOKEN).command("config/entity_registry/list")
    assert info.value.permanent
    assert str(info.value).endswith("the token's user must be an administrator: create the token as one and set HA_TOKEN.")
    server.handlers["config/entity_registry/list"] = lambda msg: Error("home_assistant_error", "busy")
    with pytest.raises(CommandError) as busy:
        HomeAssistantClient(server.url, TOKEN).command("config/entity_registry/list")
    assert not busy.value.permanent


def test_command_parameters_named_name_or_method_pass_through(server: ScriptedServer) -> None:
    seen = []
    server.handlers["echo"] = lambda msg: seen.append(msg) or {"ok": True}
    assert HomeAssistantClient(server.url, TOKEN).command("echo", name="Kitchen", method="x") == {"ok": True}
    assert (seen[0]["name"], seen[0]["method"]) == ("Kitchen", "x")


def test_http_503_forever_names_the_status(caplog: pytest.LogCaptureFixture) -> None:
    with ScriptedServer(reject_first=10_000) as server, pytest.raises(CannotConnectError) as info:
        HomeAssistantClient(server.url, TOKEN, retry_budget_seconds=1).config()
    assert "HTTP 503 during the WebSocket handshake" in str(info.value)
    assert_no_token(info.value, caplog)


def test_socket_closed_mid_command(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.handlers["get_states"] = lambda msg: CLOSE
    with HomeAssistantClient(server.url, TOKEN) as ha:
        with pytest.raises(ConnectionLostError) as info:
            ha.states()
        with pytest.raises(ConnectionLostError):
            ha.areas()  # the connection stays lost; no silent hang
    message = str(info.value)
    assert message.startswith(f"Home Assistant at {server.url} closed the connection during 'get_states' (")
    assert message.endswith("retry once Home Assistant is running again.")
    assert_no_token(info.value, caplog)


def test_command_timeout(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    server.handlers["get_config"] = lambda msg: SILENT
    with HomeAssistantClient(server.url, TOKEN, command_timeout=0.5) as ha:
        with pytest.raises(CommandTimeoutError) as info:
            ha.config()
        assert len(ha.areas()) == len(sample("area_registry_list.json"))  # the connection still works
    assert str(info.value) == (
        f"Home Assistant at {server.url} did not answer 'get_config' within 0.5 s; "
        "raise the command timeout or check the Home Assistant load."
    )
    assert_no_token(info.value, caplog)


def test_repr_never_shows_the_token(server: ScriptedServer) -> None:
    assert TOKEN not in repr(HomeAssistantClient(server.url, TOKEN))
    assert TOKEN not in repr(AsyncHomeAssistantClient(server.url, TOKEN))
    assert TOKEN not in repr(vars(HomeAssistantClient(server.url, TOKEN)))


def test_registry_fingerprint_matches_the_snapshot_and_is_bounded_in_time(server: ScriptedServer) -> None:
    with HomeAssistantClient(server.url, TOKEN) as ha:
        assert ha.registry_fingerprint() == registry_fingerprint(ha.registry_snapshot())
    server.handlers["config/entity_registry/get_entries"] = lambda msg: SILENT
    with HomeAssistantClient(server.url, TOKEN, command_timeout=30) as ha:
        started = time.monotonic()
        with pytest.raises(CommandTimeoutError, match="did not send its registries within 0.5 s"):
            ha.registry_fingerprint(timeout=0.5)
        assert time.monotonic() - started < 5
        assert ha.config().version == "2024.1.6"  # the connection is still usable


def test_an_entity_id_ha_would_refuse_does_not_sink_get_entries(server: ScriptedServer) -> None:
    listed = sample("entity_registry_list.json")
    bad = {**listed[0], "entity_id": "Sensor.Not Valid", "id": "bad-id", "unique_id": "bad"}
    server.handlers["config/entity_registry/list"] = lambda msg: [*listed, bad]
    default = server.handlers["config/entity_registry/get_entries"]
    # As HA's cv.entity_ids: one invalid id fails the whole request.
    server.handlers["config/entity_registry/get_entries"] = lambda msg: (
        Error("invalid_format", "Invalid entity ID") if bad["entity_id"] in msg["entity_ids"] else default(msg)
    )
    with HomeAssistantClient(server.url, TOKEN) as ha:
        fingerprint = ha.registry_fingerprint()
        entities = ha.registry_payloads()["entities"]
    assert len(fingerprint) == 64
    assert [e["device_class"] for e in entities if e["entity_id"] == bad["entity_id"]] == [None]
    enriched = {e["entity_id"]: e for e in entities}
    entry = sample("entity_registry_get_entries.json")
    assert all(enriched[i]["original_device_class"] == entry[i]["original_device_class"] for i in entry if i in enriched)


def test_an_entity_id_with_the_trailing_newline_ha_accepts_is_asked_about(server: ScriptedServer) -> None:
    listed = sample("entity_registry_list.json")
    renamed = {**listed[0], "entity_id": listed[0]["entity_id"] + "\n"}
    server.handlers["config/entity_registry/list"] = lambda msg: [renamed, *listed[1:]]
    entry = sample("entity_registry_get_entries.json")[listed[0]["entity_id"]]
    default = server.handlers["config/entity_registry/get_entries"]
    server.handlers["config/entity_registry/get_entries"] = lambda msg: {
        **default(msg), **({renamed["entity_id"]: entry} if renamed["entity_id"] in msg["entity_ids"] else {})
    }
    with HomeAssistantClient(server.url, TOKEN) as ha:
        entities = {e["entity_id"]: e for e in ha.registry_payloads()["entities"]}
    assert entities[renamed["entity_id"]]["capabilities"] == entry["capabilities"]
