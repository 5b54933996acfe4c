"""The WebSocket protocol of the simulator, checked against recorded real HA 2024.1.6 payloads."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ha_pipeline.simulator import SimulatedHome, SimulatorServer

from .conftest import NOW, TOKEN, RawClient, sample


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def assert_same_shape(ours: Any, theirs: Any, where: str = "") -> None:
    """Same keys and same JSON types, field for field (null matches anything: fields are nullable)."""
    if theirs is None or ours is None:
        return
    if isinstance(theirs, bool) or isinstance(ours, bool):
        assert type(ours) is type(theirs), f"{where}: {ours!r} vs {theirs!r}"
    elif isinstance(theirs, (int, float)):
        assert isinstance(ours, (int, float)), f"{where}: {ours!r} vs {theirs!r}"
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict), where
        assert set(ours) == set(theirs), f"{where}: keys {sorted(ours)} vs {sorted(theirs)}"
        for key in theirs:
            assert_same_shape(ours[key], theirs[key], f"{where}.{key}")
    else:
        assert type(ours) is type(theirs), f"{where}: {ours!r} vs {theirs!r}"


def assert_records_like(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], where: str) -> None:
    """Every record has exactly the keys of the sample's records, each with the sample's type."""
    assert ours, f"{where}: nothing returned"
    keys = set(theirs[0])
    assert all(set(t) == keys for t in theirs)
    by_key: dict[str, set[type]] = {}
    for record in theirs:
        for k, v in record.items():
            if v is not None:
                by_key.setdefault(k, set()).add(bool if isinstance(v, bool) else type(v))
    for record in ours:
        assert set(record) == keys, f"{where}: {sorted(set(record) ^ keys)}"
        for k, v in record.items():
            if v is not None and k in by_key:
                assert (bool if isinstance(v, bool) else type(v)) in by_key[k], f"{where}.{k}: {v!r}"


def test_auth_messages_match_samples(server: SimulatorServer) -> None:
    async def go() -> None:
        async with connect(server.url.replace("http", "ws") + "/api/websocket") as ws:
            assert json.loads(await ws.recv()) == sample("auth_required.json")
            await ws.send(json.dumps({"type": "auth", "access_token": TOKEN}))
            assert json.loads(await ws.recv()) == sample("auth_ok.json")
        for bad in ({"type": "auth", "access_token": "wrong"}, {"type": "auth"}):
            async with connect(server.url.replace("http", "ws") + "/api/websocket") as ws:
                await ws.recv()
                await ws.send(json.dumps(bad))
                assert json.loads(await ws.recv()) == sample("auth_invalid.json")
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd.code == 1000
    run(go())


def test_server_logs_never_hold_the_token(server: SimulatorServer, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with connect(server.url.replace("http", "ws") + "/api/websocket") as ws:
            await ws.recv()
            await ws.send(json.dumps({"type": "auth", "access_token": TOKEN}))
            await ws.recv()
            await ws.send(json.dumps({"id": 1, "type": "ping"}))
            await ws.recv()
    with caplog.at_level(logging.DEBUG):
        run(go())
    client_side = [r.getMessage() for r in caplog.records if r.name == "websockets.client"]
    server_side = [r.getMessage() for r in caplog.records if r.name != "websockets.client"]
    # the raw test client logs its own auth frame: proof that DEBUG frames were captured
    assert any(TOKEN in message for message in client_side)
    assert not any(TOKEN in message for message in server_side)


def test_only_the_websocket_path_is_served(server: SimulatorServer) -> None:
    async def go() -> None:
        with pytest.raises(InvalidStatus):
            async with connect(server.url.replace("http", "ws") + "/websocket"):
                pass
    run(go())


LIST_COMMANDS = [
    ("config/area_registry/list", {}, "area_registry_list.json"),
    ("config/device_registry/list", {}, "device_registry_list.json"),
    ("config/entity_registry/list", {}, "entity_registry_list.json"),
    ("config_entries/get", {}, "config_entries_get.json"),
    ("get_states", {}, "get_states.json"),
    ("recorder/list_statistic_ids", {}, "recorder_list_statistic_ids.json"),
]


@pytest.mark.parametrize(("command", "params", "name"), LIST_COMMANDS, ids=[c[2] for c in LIST_COMMANDS])
def test_list_commands_match_samples(server: SimulatorServer, command: str, params: dict[str, Any], name: str) -> None:
    async def go() -> dict[str, Any]:
        client = await RawClient.open(server.url)
        try:
            return await client.command(command, **params)
        finally:
            await client.close()
    reply = run(go())
    expected = sample(name)
    assert set(reply) == set(expected) and reply["success"] is True
    if command == "get_states":
        # attributes differ per entity; the state envelope and the context must match
        for state in reply["result"]:
            assert set(state) == set(expected["result"][0])
            assert_same_shape(state["context"], expected["result"][0]["context"])
            assert isinstance(state["attributes"], dict) and isinstance(state["state"], str)
    else:
        assert_records_like(reply["result"], expected["result"], name)


def test_single_shape_commands_match_samples(server: SimulatorServer, home: SimulatedHome) -> None:
    some = [e for e in home.states if e in home.entities][:3]

    async def go() -> dict[str, dict[str, Any]]:
        client = await RawClient.open(server.url)
        try:
            out = {
                "supported_features.json": await client.command("supported_features", features={"coalesce_messages": 1}),
                "ping.json": await client.command("ping"),
                "get_config.json": await client.command("get_config"),
                "entity_registry_get_entries.json": await client.command("config/entity_registry/get_entries",
                                                                        entity_ids=some),
                "entity_registry_list_for_display.json": await client.command("config/entity_registry/list_for_display"),
                "subscribe_events_result.json": await client.command("subscribe_events", event_type="state_changed"),
            }
            return out
        finally:
            await client.close()

    replies = run(go())
    for name, reply in replies.items():
        expected = sample(name)
        if name == "ping.json":
            assert set(reply) == set(expected) and reply["type"] == "pong"
        elif name == "entity_registry_get_entries.json":
            assert set(reply["result"]) == set(some)
            assert_records_like(list(reply["result"].values()), list(expected["result"].values()), name)
        elif name == "entity_registry_list_for_display.json":
            assert reply["result"]["entity_categories"] == expected["result"]["entity_categories"]
            allowed = {"ei", "pl", "ai", "di", "tk", "ec", "hb", "en", "dp"}
            seen = {k for item in expected["result"]["entities"] for k in item}
            assert seen <= allowed
            for item in reply["result"]["entities"]:
                assert {"ei", "pl"} <= set(item) <= allowed
            assert {k for item in reply["result"]["entities"] for k in item} >= seen
        else:
            assert_same_shape(reply, expected, name)


def _history_params(home: SimulatedHome) -> tuple[list[str], str, str]:
    ids = [next(e for e in home.states if e.startswith("sensor.") and "temperature" in e),
           next(e for e in home.states if e.startswith("binary_sensor.")),
           "input_boolean.guest_mode"]
    return ids, "2026-11-22T05:25:57+00:00", "2026-11-23T05:25:57+00:00"


@pytest.mark.parametrize(("name", "params"), [
    ("history_full_1h.json", {"significant_changes_only": False}),
    ("history_no_end_time.json", {}),
    ("history_minimal_attrs_6h.json", {"minimal_response": True}),
    ("history_minimal_24h.json", {"minimal_response": True, "no_attributes": True}),
])
def test_history_rows_match_samples(server: SimulatorServer, home: SimulatedHome, name: str,
                                    params: dict[str, Any]) -> None:
    ids, start, end = _history_params(home)

    async def go() -> dict[str, Any]:
        client = await RawClient.open(server.url)
        try:
            return await client.command("history/history_during_period", start_time=start, end_time=end,
                                        entity_ids=ids, **params)
        finally:
            await client.close()

    reply = run(go())
    expected = sample(name)
    assert set(reply) == set(expected)
    assert set(reply["result"]) == set(ids)
    theirs = [row for rows in expected["result"].values() for row in rows]
    for rows in reply["result"].values():
        # first rows are full unless no_attributes; later rows as in the sample
        first_keys = {k for rows_ in expected["result"].values() for k in rows_[0]}
        assert set(rows[0]) == first_keys
        later_keys = {k for rows_ in expected["result"].values() for row in rows_[1:] for k in row}
        for row in rows[1:]:
            assert set(row) - {"lc"} == later_keys - {"lc"}
            assert isinstance(row["s"], str) and isinstance(row["lu"], float)
    assert all(isinstance(r["lu"], float) for r in theirs)


def test_light_attribute_changes_match_samples(server: SimulatorServer, home: SimulatedHome) -> None:
    light = next(e for e in home.states if e.startswith("light."))

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        client = await RawClient.open(server.url)
        try:
            await client.command("call_service", domain="light", service="turn_off", target={"entity_id": light})
            await client.command("call_service", domain="light", service="turn_on", target={"entity_id": light},
                                 service_data={"brightness": 120})
            await client.command("call_service", domain="light", service="turn_on", target={"entity_id": light},
                                 service_data={"brightness": 200})
            start = "2026-11-23T05:26:00+00:00"  # after the generated history: runtime rows only
            full = await client.command("history/history_during_period", start_time=start, entity_ids=[light],
                                        significant_changes_only=False, include_start_time_state=False)
            sig = await client.command("history/history_during_period", start_time=start, entity_ids=[light],
                                       significant_changes_only=True, include_start_time_state=False)
            return full, sig
        finally:
            await client.close()

    full, sig = run(go())
    full_rows, sig_rows = full["result"][light], sig["result"][light]
    sample_full = sample("history_light_attr_changes_sig_false.json")["result"]["light.kitchen_ceiling_light"]
    # as in the sample: on (a state change), then on again with other attributes and an lc
    assert [sorted(r) for r in full_rows[-2:]] == [sorted(r) for r in sample_full[1:3]]
    assert full_rows[-1]["lc"] == full_rows[-2]["lu"]
    assert (full_rows[-2]["a"]["brightness"], full_rows[-1]["a"]["brightness"]) == (120, 200)
    assert len(sig_rows) == len(full_rows) - 1 and all("lc" not in r for r in sig_rows)


def test_statistics_match_samples(server: SimulatorServer, home: SimulatedHome) -> None:
    energy = next(e for e, s in home.states.items() if s["attributes"].get("device_class") == "energy")
    temp = next(e for e in home.states if e.startswith("sensor.") and "temperature" in e)

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        client = await RawClient.open(server.url)
        try:
            hour = await client.command("recorder/statistics_during_period", start_time="2026-11-21T05:00:00+00:00",
                                        end_time="2026-11-23T05:00:00+00:00", statistic_ids=[energy, temp],
                                        period="hour", types=["mean", "min", "max", "state", "sum", "change"])
            day = await client.command("recorder/statistics_during_period", start_time="2026-11-20T05:00:00+00:00",
                                       end_time="2026-11-23T05:00:00+00:00", statistic_ids=[energy, temp],
                                       period="day", units={"energy": "Wh"})
            return hour, day
        finally:
            await client.close()

    hour, day = run(go())
    for reply, name in ((hour, "statistics_during_period_hour.json"), (day, "statistics_during_period_day_Wh.json")):
        expected = sample(name)
        theirs = [r for rows in expected["result"].values() for r in rows]
        ours = [r for rows in reply["result"].values() for r in rows]
        assert_records_like(ours, theirs, name)
    hours = [r for rows in hour["result"].values() for r in rows]
    assert {r["end"] - r["start"] for r in hours} == {3_600_000}
    # hourly rows start at or after the requested start, and only closed hours exist
    assert min(r["start"] for r in hours) >= int(NOW * 1000) - 2 * 86_400_000 - 3_600_000
    # days are local (Europe/Amsterdam, UTC+1 in November) midnights, as in the sample
    days = [r for rows in day["result"].values() for r in rows]
    assert {(r["start"] // 1000) % 86400 for r in days} == {23 * 3600}


def test_errors_match_samples(server: SimulatorServer) -> None:
    async def go() -> dict[str, dict[str, Any]]:
        client = await RawClient.open(server.url)
        try:
            out = {"missing": await client.command("history/history_during_period", start_time="2026-11-23T00:00:00Z")}
            out["bad_time"] = await client.command("history/history_during_period", start_time="yesterday",
                                                   entity_ids=["sensor.x"])
            await client.command("ping")
            last = client.next_id - 1
            out["unknown"] = await client.reply(await client.send("no/such/command", msg_id=last + 1))
            # an unknown command does not advance the id: the same id is accepted next
            out["same_id_ok"] = await client.reply(await client.send("ping", msg_id=last + 1))
            out["reuse"] = await client.reply(await client.send("ping", msg_id=last + 1))
            out["service"] = await client.command("call_service", domain="nope", service="nothing")
            return out
        finally:
            await client.close()

    out = run(go())
    assert out["missing"]["error"] == sample("error_history_missing_entity_ids.json")["error"]
    assert out["bad_time"]["error"]["code"] == "invalid_start_time"
    assert out["unknown"]["error"] == sample("error_unknown_command.json")["error"]
    assert out["same_id_ok"]["type"] == "pong"
    assert out["reuse"]["error"] == sample("error_id_reuse.json")["error"]
    err = out["service"]["error"]
    assert err["code"] == "not_found" and {"translation_key", "translation_placeholders", "translation_domain"} <= set(err)
    for reply in out.values():
        assert set(reply) == {"id", "type", "success", "error"} or reply["type"] == "pong"


def test_coalesced_frames_hold_ready_replies(server: SimulatorServer) -> None:
    # Replies coalesce only when several are ready in one turn of the server's loop: a burst
    # large enough that the server reads many requests per socket read makes that certain.
    burst = 200

    async def go(coalesce: bool) -> list[Any]:
        client = await RawClient.open(server.url, coalesce=coalesce)
        try:
            ids = [await client.send("ping") for _ in range(burst)]
            for msg_id in ids:
                assert (await client.reply(msg_id))["type"] == "pong"
            return client.frames
        finally:
            await client.close()

    frames = run(go(True))
    arrays = [f for f in frames if isinstance(f, list)]
    # every reply arrives exactly once (plus supported_features' own result)
    assert arrays and sum(len(a) for a in arrays) + sum(1 for f in frames if isinstance(f, dict)) == burst + 1
    assert not any(isinstance(f, list) for f in run(go(False)))


def test_call_service_fires_state_changed_like_the_sample(server: SimulatorServer, home: SimulatedHome) -> None:
    switch = "input_boolean.guest_mode"  # an input_boolean, like the recorded event

    async def go() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        client = await RawClient.open(server.url)
        try:
            sub = await client.send("subscribe_events", event_type="state_changed")
            await client.reply(sub)
            result = await client.command("call_service", domain="homeassistant", service="toggle",
                                          target={"entity_id": [switch]})
            events = await client.events(sub, 1)
            history = await client.command("history/history_during_period", start_time="2026-11-23T05:26:00Z",
                                           entity_ids=[switch])
            await client.command("unsubscribe_events", subscription=sub)
            return result, events, history
        finally:
            await client.close()

    result, events, history = run(go())
    assert_same_shape(result, sample("call_service_result.json"))
    event = events[0]
    expected = sample("state_changed_event.json")["event"]
    assert_same_shape(event, expected)
    assert event["data"]["entity_id"] == switch
    assert event["context"] == result["result"]["context"] == event["data"]["new_state"]["context"]
    assert event["data"]["old_state"]["state"] != event["data"]["new_state"]["state"]
    rows = history["result"][switch]
    assert rows[-1]["s"] == event["data"]["new_state"]["state"]


def test_registry_edit_commands_fire_events(server: SimulatorServer, home: SimulatedHome) -> None:
    device_id = next(d for d, dev in home.devices.items() if not dev["disabled_by"] and dev["area_id"])
    area = next(a for a in home.areas if a != home.devices[device_id]["area_id"])
    old_area = home.devices[device_id]["area_id"]
    eid = next(e for e in home.states if e.startswith("sensor.") and e in home.entities)

    async def go() -> dict[str, Any]:
        client = await RawClient.open(server.url)
        try:
            subs = {t: await client.send("subscribe_events", event_type=t)
                    for t in ("device_registry_updated", "entity_registry_updated")}
            for sub in subs.values():
                await client.reply(sub)
            out = {"device": await client.command("config/device_registry/update", device_id=device_id,
                                                  area_id=area, name_by_user="Gästezimmer, \"neu\"")}
            out["device_event"] = (await client.events(subs["device_registry_updated"], 1))[0]
            out["entity"] = await client.command("config/entity_registry/update", entity_id=eid,
                                                 new_entity_id="sensor.moved_probe", name="Probe")
            out["entity_event"] = (await client.events(subs["entity_registry_updated"], 1))[0]
            out["remove"] = await client.command("config/entity_registry/remove", entity_id="sensor.moved_probe")
            out["remove_event"] = (await client.events(subs["entity_registry_updated"], 1))[0]
            out["missing"] = await client.command("config/entity_registry/remove", entity_id="sensor.moved_probe")
            out["add"] = await client.command("call_service", domain="simulator", service="add_device",
                                              service_data={"name": "New Plug", "model": "Shelly Plug S"})
            out["add_event"] = (await client.events(subs["device_registry_updated"], 1))[0]
            return out
        finally:
            await client.close()

    out = run(go())
    device_rows = sample("device_registry_list.json")["result"]
    assert_records_like([out["device"]["result"]], device_rows, "device update")
    assert out["device_event"]["event_type"] == "device_registry_updated"
    assert out["device_event"]["data"] == {"action": "update", "device_id": device_id,
                                           "changes": {"area_id": old_area, "name_by_user": None}}
    assert out["entity"]["result"]["entity_entry"]["entity_id"] == "sensor.moved_probe"
    data = out["entity_event"]["data"]
    assert data["action"] == "update" and data["entity_id"] == "sensor.moved_probe"
    assert data["old_entity_id"] == eid and data["changes"]["entity_id"] == eid and "name" in data["changes"]
    assert out["remove"]["result"] is None
    assert out["remove_event"]["data"] == {"action": "remove", "entity_id": "sensor.moved_probe"}
    assert out["missing"]["error"]["code"] == "not_found"
    assert out["add_event"]["data"]["action"] == "create"
    assert out["add_event"]["data"]["device_id"] in home.devices


def test_large_registry_frames_exceed_one_mebibyte() -> None:
    home = SimulatedHome.generate(seed=1, devices=800, entities_per_device=5, now=NOW)
    with SimulatorServer(home, token=TOKEN) as srv:
        async def go() -> int:
            client = await RawClient.open(srv.url)
            try:
                await client.send("config/entity_registry/list")
                raw = await client.ws.recv()
                return len(raw.encode())
            finally:
                await client.close()
        assert run(go()) > 1024 * 1024


def test_changes_made_from_another_thread_reach_subscribers(server: SimulatorServer, home: SimulatedHome) -> None:
    device_id = next(iter(home.devices))

    async def go() -> dict[str, Any]:
        client = await RawClient.open(server.url)
        try:
            sub = await client.send("subscribe_events", event_type="device_registry_updated")
            await client.reply(sub)
            # the test thread is not the server's loop thread
            await asyncio.to_thread(home.update_device, device_id, name_by_user="Renamed elsewhere")
            return (await client.events(sub, 1, timeout=5))[0]
        finally:
            await client.close()

    event = run(go())
    assert event["data"]["device_id"] == device_id


def test_services_change_states_and_registries(server: SimulatorServer, home: SimulatedHome) -> None:
    light = next(e for e in home.states if e.startswith("light."))
    device_id = next(d for d, dev in home.devices.items() if not dev["disabled_by"] and dev["entry_type"] is None)
    area = next(iter(home.areas))

    async def go() -> list[dict[str, Any]]:
        client = await RawClient.open(server.url, coalesce=True)
        try:
            sub = await client.send("subscribe_events")  # all event types
            await client.reply(sub)
            calls = [
                ("homeassistant", "turn_on", {"brightness": 77}, {"entity_id": light}),
                ("input_number", "set_value", {"value": 22.5}, {"entity_id": "input_number.target_temperature"}),
                ("simulator", "rename_device", {"device_id": device_id, "name": "Renamed ✓"}, None),
                ("simulator", "move_device", {"device_id": device_id, "area_id": area}, None),
                ("simulator", "add_entity", {"domain": "sensor", "name": "Extra probe", "state": "12.5"}, None),
                ("simulator", "rename_entity", {"new_entity_id": "sensor.extra_probe_renamed"},
                 {"entity_id": "sensor.extra_probe"}),
                ("simulator", "remove_entity", {}, {"entity_id": "sensor.extra_probe_renamed"}),
                ("simulator", "set_state", {"entity_id": "sensor.made_up", "state": 3, "attributes": {"unit_of_measurement": "W"}}, None),
                ("simulator", "remove_device", {"device_id": device_id}, None),
            ]
            for domain, service, data, target in calls:
                params: dict[str, Any] = {"domain": domain, "service": service, "service_data": data}
                if target:
                    params["target"] = target
                reply = await client.command("call_service", **params)
                assert reply["success"], reply
            await client.command("ping")
            return [m["event"] for m in client.pending if m.get("type") == "event"]
        finally:
            await client.close()

    events = run(go())
    kinds = [(e["event_type"], e["data"].get("action")) for e in events]
    assert home.states[light]["state"] == "on" and home.states[light]["attributes"]["brightness"] == 77
    assert home.states["input_number.target_temperature"]["state"] == "22.5"
    assert ("device_registry_updated", "update") in kinds and ("device_registry_updated", "remove") in kinds
    assert ("entity_registry_updated", "create") in kinds and ("entity_registry_updated", "remove") in kinds
    assert home.states["sensor.made_up"]["state"] == "3"
    assert "sensor.extra_probe_renamed" not in home.entities and device_id not in home.devices
    moved = [e for e in events if e["event_type"] == "device_registry_updated" and "area_id" in e["data"].get("changes", {})]
    assert moved


def test_live_server_streams_generated_state_changes() -> None:
    import time as _time

    home = SimulatedHome.generate(seed=5, devices=10, event_rate=3600.0, now=_time.time() - 1)
    with SimulatorServer(home, token=TOKEN, live=True, tick_seconds=0.2) as srv:
        async def go() -> list[dict[str, Any]]:
            client = await RawClient.open(srv.url)
            try:
                sub = await client.send("subscribe_events", event_type="state_changed")
                await client.reply(sub)
                return await client.events(sub, 3, timeout=10)
            finally:
                await client.close()
        events = run(go())
    assert all(e["data"]["new_state"]["entity_id"] == e["data"]["entity_id"] for e in events)
    assert all(e["data"]["old_state"] != e["data"]["new_state"] for e in events)


def test_subscribe_entities_matches_samples(server: SimulatorServer, home: SimulatedHome) -> None:
    probe = "input_boolean.vacation_mode"

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        client = await RawClient.open(server.url)
        try:
            sub = await client.send("subscribe_entities", entity_ids=[probe])
            assert (await client.reply(sub))["result"] is None
            initial = (await client.events(sub, 1))[0]
            await client.command("call_service", domain="input_boolean", service="toggle", target={"entity_id": probe})
            change = (await client.events(sub, 1))[0]
            return initial, change
        finally:
            await client.close()

    initial, change = run(go())
    sample_initial = sample("subscribe_entities_initial.json")["event"]["a"]["input_boolean.peer_probe"]
    assert list(initial) == ["a"] and set(initial["a"]) == {probe}
    assert set(initial["a"][probe]) - {"lu"} == set(sample_initial)
    assert_same_shape(initial["a"][probe]["a"], sample_initial["a"])
    sample_change = sample("subscribe_entities_change.json")["event"]["c"]["input_boolean.peer_probe"]
    ours = change["c"][probe]
    assert set(ours) == set(sample_change) and set(ours["+"]) == {"s", "lc", "c"}
    # a service call carries the user: the context comes as a dict, as HA does then
    assert isinstance(ours["+"]["c"], dict) and ours["+"]["c"]["user_id"]


def test_get_services_matches_sample(server: SimulatorServer) -> None:
    async def go() -> dict[str, Any]:
        client = await RawClient.open(server.url)
        try:
            return await client.command("get_services")
        finally:
            await client.close()

    reply = run(go())
    expected = sample("get_services.json")["result"]["input_boolean"]
    ours = reply["result"]["input_boolean"]
    for service in ("turn_on", "turn_off", "toggle"):
        assert set(ours[service]) == set(expected[service])
        assert ours[service]["target"] == expected[service]["target"]
    assert {"rename_device", "move_device", "add_device", "remove_device"} <= set(reply["result"]["simulator"])
