"""A tiny scripted Home Assistant WebSocket server for the client's failure-mode tests.

It speaks just enough of HA's protocol (auth, results, coalesced frames) and lets a
test decide per command what happens: answer, answer out of order, stay silent or
close the socket. It runs on its own event loop in a thread, on 127.0.0.1 and a free
port, and is stopped by the test that started it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from ha_pipeline_tests.samples import recorded

TOKEN = "s3cr3t-token-value-that-must-never-leak"


def sample(name: str) -> Any:
    """The ``result`` of a recorded HA reply (or the whole message when it has none)."""
    message = recorded(name)
    return message.get("result", message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: What a handler returns for one command: a result, ``CLOSE`` (drop the socket),
#: ``SILENT`` (never answer) or ``Error(code, message)``.
CLOSE = object()
SILENT = object()


@dataclass
class Error:
    code: str
    message: str


def flush(ws: ServerConnection, outbox: list[dict[str, Any]]) -> None:
    """Send the held replies as one coalesced frame."""
    frame = json.dumps(list(outbox))
    outbox.clear()
    asyncio.ensure_future(ws.send(frame))


Handler = Callable[[dict[str, Any]], Any]


def default_handlers() -> dict[str, Handler]:
    """Answers taken from the recorded samples."""
    return {
        "supported_features": lambda msg: None,
        "config/area_registry/list": lambda msg: sample("area_registry_list.json"),
        "config/device_registry/list": lambda msg: sample("device_registry_list.json"),
        "config/entity_registry/list": lambda msg: sample("entity_registry_list.json"),
        "config/entity_registry/get_entries": lambda msg: {
            entity_id: sample("entity_registry_get_entries.json").get(entity_id) for entity_id in msg["entity_ids"]
        },
        "config_entries/get": lambda msg: sample("config_entries_get.json"),
        "get_states": lambda msg: sample("get_states.json"),
        "get_config": lambda msg: sample("get_config.json"),
        "call_service": lambda msg: sample("call_service_result.json"),
        "unsubscribe_events": lambda msg: None,
    }


@dataclass
class ScriptedServer:
    """HA look-alike; ``handlers`` map a command type to a ``Handler``."""

    token: str = TOKEN
    handlers: dict[str, Handler] = field(default_factory=default_handlers)
    coalesce: bool = False
    auth_reply: str | None = None  # e.g. "auth_invalid"
    ws: ServerConnection | None = None  # the latest connection, for handlers that push frames
    array_frames: int = 0  # coalesced frames sent
    reject_first: int = 0  # answer the first N handshakes with HTTP 503
    attempts: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/websocket"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.ws = ws
        await ws.send(json.dumps({"type": "auth_required", "ha_version": "2024.1.6"}))
        auth = json.loads(await ws.recv())
        if self.auth_reply == "auth_invalid" or auth.get("access_token") != self.token:
            await ws.send(json.dumps({"type": "auth_invalid", "message": "Invalid access token or password"}))
            await ws.close()
            return
        await ws.send(json.dumps({"type": "auth_ok", "ha_version": "2024.1.6"}))
        coalescing = False
        outbox: list[dict[str, Any]] = []
        async for frame in ws:
            msg = json.loads(frame)
            self.received.append(msg)
            if msg["type"] == "supported_features":
                coalescing = self.coalesce and bool(msg["features"].get("coalesce_messages"))
            handler = self.handlers.get(msg["type"])
            if handler is None:
                reply: Any = Error("unknown_command", "Unknown command.")
            else:
                reply = handler(msg)
                if asyncio.iscoroutine(reply):
                    reply = await reply
            if reply is CLOSE:
                await ws.close()
                return
            if reply is SILENT:
                continue
            if isinstance(reply, Error):
                message = {
                    "id": msg["id"],
                    "type": "result",
                    "success": False,
                    "error": {"code": reply.code, "message": reply.message},
                }
            else:
                message = {"id": msg["id"], "type": "result", "success": True, "result": reply}
            if coalescing:
                # Hold replies back briefly and send them as one JSON array, as HA does under load.
                outbox.append(message)
                if len(outbox) == 1:
                    self.array_frames += 1
                    asyncio.get_running_loop().call_later(0.05, flush, ws, outbox)
            else:
                await ws.send(json.dumps(message))

    def _process_request(self, connection: ServerConnection, request: Any) -> Any:
        self.attempts += 1
        if self.attempts <= self.reject_first:
            return connection.respond(503, "Home Assistant is starting\n")
        return None

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        async with serve(
            self._handle, "127.0.0.1", self.port, max_size=None, process_request=self._process_request
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            ready.set()
            await self._stop.wait()

    def start(self) -> ScriptedServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._serve(ready),), daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("scripted server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
        if self._loop is not None:
            self._loop.close()

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
