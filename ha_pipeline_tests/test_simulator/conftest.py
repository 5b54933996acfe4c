"""Fixtures: a small simulated home on a free loopback port, the real HA beside it, a raw client.

The simulator's fidelity is judged live: a test sends the same commands to the simulator
(`sim`) and to the test bed's real Home Assistant (`real`) and compares the replies' shapes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from ha_pipeline.simulator import SimulatedHome, SimulatorServer
from ha_pipeline_tests.testbed.homeassistant import RealHomeAssistant

NOW = 1795409157.0  # a fixed end of generated history (2026-11-23T05:25:57Z)
TOKEN = "test-token"


@dataclass(frozen=True)
class Side:
    """One server of a live comparison: where it is, and which of its entities to ask about."""

    name: str
    url: str
    token: str = field(repr=False)
    history_start: str  # a window holding recorded rows
    history_end: str
    temperature: str
    binary_sensor: str
    light: str
    runtime_start: str  # rows after this are the ones the test itself causes


def _side(name: str, url: str, token: str, entity_ids: list[str], end: float, span: timedelta) -> Side:
    """A side whose entities are picked by the same rule on either server."""
    end_time = datetime.fromtimestamp(end, timezone.utc)
    return Side(
        name=name, url=url, token=token,
        history_start=(end_time - span).isoformat(), history_end=end_time.isoformat(),
        temperature=next(e for e in entity_ids if e.startswith("sensor.") and "temperature" in e),
        binary_sensor=next(e for e in entity_ids if e.startswith("binary_sensor.")),
        light=next(e for e in entity_ids if e.startswith("light.")),
        runtime_start=max(end_time, datetime.now(timezone.utc)).isoformat(),
    )


@pytest.fixture()
def home() -> SimulatedHome:
    return SimulatedHome.generate(seed=7, now=NOW)


@pytest.fixture()
def server(home: SimulatedHome) -> Iterator[SimulatorServer]:
    with SimulatorServer(home, token=TOKEN) as srv:
        yield srv


@pytest.fixture()
def sim(server: SimulatorServer, home: SimulatedHome) -> Side:
    """The simulator as one side of a comparison (24 h of generated history up to NOW)."""
    registered = [e for e in home.states if e in home.entities]
    return _side("simulator", server.url, TOKEN, registered, NOW, timedelta(days=1))


@pytest.fixture()
def real(real_ha: RealHomeAssistant) -> Side:
    """The test bed's real HA as the other side (its recorder holds the rows since its start)."""
    registered = {e["entity_id"] for e in real_ha.ws_command("config/entity_registry/list")}
    ids = [s["entity_id"] for s in real_ha.ws_command("get_states") if s["entity_id"] in registered]
    now = datetime.now(timezone.utc).timestamp()
    return _side("real HA", real_ha.url, real_ha.token, ids, now, timedelta(hours=1))


class RawClient:
    """Minimal HA WebSocket client on raw ``websockets`` (the project client is tested elsewhere)."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.next_id = 1
        self.pending: list[dict[str, Any]] = []
        self.frames: list[Any] = []

    @classmethod
    async def open(cls, url: str, token: str = TOKEN, coalesce: bool = False) -> "RawClient":
        ws = await connect(url.replace("http://", "ws://") + "/api/websocket", max_size=None)
        assert json.loads(await ws.recv())["type"] == "auth_required"
        await ws.send(json.dumps({"type": "auth", "access_token": token}))
        reply = json.loads(await ws.recv())
        assert reply["type"] == "auth_ok", reply
        client = cls(ws)
        if coalesce:
            await client.command("supported_features", features={"coalesce_messages": 1})
        return client

    async def send(self, type_: str, msg_id: int | None = None, **params: Any) -> int:
        msg_id = self.next_id if msg_id is None else msg_id
        self.next_id = max(self.next_id, msg_id + 1)
        await self.ws.send(json.dumps({"id": msg_id, "type": type_, **params}))
        return msg_id

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        while not self.pending:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            self.frames.append(frame)
            self.pending.extend(frame if isinstance(frame, list) else [frame])
        return self.pending.pop(0)

    async def reply(self, msg_id: int, timeout: float = 10) -> dict[str, Any]:
        """The result message for ``msg_id`` (other messages stay queued)."""
        while True:
            for i, msg in enumerate(self.pending):
                if msg.get("id") == msg_id and msg.get("type") in ("result", "pong"):
                    return self.pending.pop(i)
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            self.frames.append(frame)
            self.pending.extend(frame if isinstance(frame, list) else [frame])

    async def command(self, type_: str, **params: Any) -> dict[str, Any]:
        return await self.reply(await self.send(type_, **params))

    async def events(self, sub_id: int, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """The next ``count`` events of subscription ``sub_id``."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            for msg in list(self.pending):
                if msg.get("type") == "event" and msg.get("id") == sub_id and len(found) < count:
                    self.pending.remove(msg)
                    found.append(msg["event"])
            if len(found) < count:
                frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
                self.frames.append(frame)
                self.pending.extend(frame if isinstance(frame, list) else [frame])
        return found

    async def close(self) -> None:
        await self.ws.close()
