"""Fixtures: a small simulated home served on a free loopback port, and a raw websockets client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from ha_pipeline.simulator import SimulatedHome, SimulatorServer

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "ha-samples"
NOW = 1795409157.0  # a fixed end of generated history (2026-11-23T05:25:57Z)
TOKEN = "test-token"


def sample(name: str) -> Any:
    """A recorded real-HA payload from ../shared/ha-samples."""
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture()
def home() -> SimulatedHome:
    return SimulatedHome.generate(seed=7, now=NOW)


@pytest.fixture()
def server(home: SimulatedHome) -> Iterator[SimulatorServer]:
    with SimulatorServer(home, token=TOKEN) as srv:
        yield srv


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
