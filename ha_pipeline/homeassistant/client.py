"""Home Assistant WebSocket API client: async core plus a blocking facade.

One connection carries many commands at once: a reader task reads every frame
(a single message, or a JSON array of them once ``coalesce_messages`` is on) and
hands each result to the future of the command with the same id.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from datetime import datetime, timezone
from itertools import count
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic_core import from_json
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from ha_pipeline.entity_id import valid_entity_id
from ha_pipeline.homeassistant.errors import (
    AuthenticationError,
    CannotConnectError,
    CommandError,
    CommandTimeoutError,
    ConnectionLostError,
    HomeAssistantError,
)
from ha_pipeline.homeassistant.models import (
    Area,
    ConfigEntry,
    Device,
    Entity,
    HAConfig,
    HAModel,
    Reject,
    State,
    parse_records,
)
from ha_pipeline.homeassistant.registry import RegistryDigest, RegistrySnapshot

logger = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=HAModel)

#: Requests in flight when a helper splits its work into batches: enough to keep HA and
#: the client busy at the same time, few enough not to queue a whole home on HA's side.
_BATCHES_IN_FLIGHT = 4
_GET_ENTRIES_BATCH = 5000
_MAX_BACKOFF_SECONDS = 8.0
#: Frames at least this large are parsed with the garbage collector paused (see ``_parse_frame``).
_LARGE_FRAME_BYTES = 1 << 20


def websocket_url(url: str) -> str:
    """``http(s)://host:port[/path]`` → ``ws(s)://host:port[/path]/api/websocket``; ws URLs pass through."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(
            f"HA_URL must look like http://host:8123 or ws://host:8123/api/websocket (got {url!r})."
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/api/websocket"):
        path += "/api/websocket"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone: pass timezone-aware datetimes to Home Assistant.")
    return moment.astimezone(timezone.utc).isoformat()


class _HideAuthFrames(logging.Filter):
    """websockets logs frames at DEBUG, the auth frame included: keep the token out of logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "access_token" in record.getMessage():
            record.msg, record.args = "> TEXT {\"type\": \"auth\", \"access_token\": \"***\"}", ()
        return True


_wire_logger = logging.getLogger(f"{__name__}.wire")
_wire_logger.addFilter(_HideAuthFrames())


class _NotHomeAssistant(Exception):
    """The peer speaks WebSocket but not HA's auth protocol: retrying will not help."""


def _message_type(message: Any) -> str:
    return str(message.get("type")) if isinstance(message, dict) else type(message).__name__


def _attributes_by_entity(states: Any) -> dict[str, dict[str, Any]]:
    """The attributes of each raw ``get_states`` item, by entity id.

    Read from the raw list: validating 100k ``State`` models only to read two attributes
    would double the cost of a registry snapshot, and a malformed state must not
    reject its registry entry.
    """
    return {
        state["entity_id"]: state["attributes"]
        for state in (states if isinstance(states, list) else [])
        if isinstance(state, dict) and isinstance(state.get("entity_id"), str) and isinstance(state.get("attributes"), dict)
    }


def _batches(items: list[T], size: int) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


_FROM_ENTRIES = ("device_class", "original_device_class", "capabilities")
# get_entries refuses a whole request that holds one id breaking HA's rule, so such ids are not
# asked about: their records keep no device classes.
_FROM_STATE = ("unit_of_measurement", "state_class")


def _enrich_entities(items: list[Any], details: Any, attributes_by_entity: dict[str, dict[str, Any]]) -> None:
    """Add ``get_entries``' device classes and capabilities, the state's unit and state class
    (None unless strings) and ``has_state`` to registry items, in place; keys an item already
    has win."""
    if not isinstance(details, dict):
        details = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(entity_id := item.get("entity_id"), str):
            continue
        extra = details.get(entity_id)
        if not isinstance(extra, dict):
            extra = {}
        for key in _FROM_ENTRIES:
            item.setdefault(key, extra.get(key))
        attributes = attributes_by_entity.get(entity_id)
        item.setdefault("has_state", attributes is not None)
        if attributes is None:
            attributes = {}
        for key in _FROM_STATE:
            value = attributes.get(key)
            item.setdefault(key, value if isinstance(value, str) else None)


def _parse_frame(frame: bytes | str) -> Any:
    """JSON of one frame. A registry frame makes millions of objects in one call; the collector,
    run while they are made, re-scans the growing result over and over (2-3x the parse time of
    a 100k-entity registry), so it is paused for large frames. The parser holds the GIL
    throughout, so no other thread runs with the collector off."""
    if len(frame) < _LARGE_FRAME_BYTES or not gc.isenabled():
        return from_json(frame)
    gc.disable()
    try:
        return from_json(frame)
    finally:
        gc.enable()


class AsyncHomeAssistantClient:
    """Async client of HA's WebSocket API; ``async with`` opens an authenticated connection."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        connect_timeout: float = 10,
        command_timeout: float = 60,
        retry_budget_seconds: float = 30,
    ) -> None:
        self.url = websocket_url(url)
        self._token = token
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.retry_budget_seconds = retry_budget_seconds
        self.ha_version: str | None = None
        #: Frames that carried a JSON array of messages (HA's ``coalesce_messages``).
        self.coalesced_frames = 0
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = count(1)
        self._send_lock = asyncio.Lock()
        self._pending: dict[int, tuple[asyncio.Future[Any], str]] = {}
        self._subscriptions: dict[int, asyncio.Queue[Any]] = {}
        self._lost: str | None = None

    def __repr__(self) -> str:
        return f"AsyncHomeAssistantClient(url={self.url!r})"

    async def __aenter__(self) -> AsyncHomeAssistantClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- connection -------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(exc, ConnectionResetError):
            reason = "connection reset"
        elif isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            reason = f"no answer within {self.connect_timeout:g} s"
        elif isinstance(exc, InvalidStatus):
            reason = f"HTTP {exc.response.status_code} during the WebSocket handshake"
        elif isinstance(exc, (ConnectionClosed, ConnectionLostError)):
            reason = "the connection closed during the handshake"
        elif isinstance(exc, socket.gaierror):
            reason = f"cannot resolve the host name ({exc.strerror})"
        elif isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror
        else:
            reason = str(exc) or type(exc).__name__
        return self._scrub(reason)

    @staticmethod
    def _is_transient(exc: BaseException) -> bool:
        if isinstance(exc, InvalidStatus):
            # 5xx: HA is starting or a proxy in front of it is; 4xx will not get better.
            return exc.response.status_code >= 500
        # ConnectionLostError: HA closed right after auth_ok, as it does while shutting down.
        return isinstance(
            exc, (OSError, TimeoutError, asyncio.TimeoutError, ConnectionClosed, InvalidHandshake, ConnectionLostError)
        )

    async def connect(self) -> None:
        """Connect and authenticate, retrying transient failures within the retry budget."""
        if not self._token.strip():
            raise AuthenticationError(
                "No Home Assistant access token was given: create a long-lived access token in your "
                "Home Assistant profile (Profile → Security → Long-lived access tokens) and set HA_TOKEN."
            )
        started = time.monotonic()
        attempts = 0
        delay = 0.25
        while True:
            attempts += 1
            try:
                await asyncio.wait_for(self._open(), self.connect_timeout)
                break
            except BaseException as exc:
                await self._drop()
                if isinstance(exc, InvalidURI):
                    raise ValueError(f"HA_URL {self.url!r} is not a valid WebSocket URL.") from None
                if not isinstance(exc, Exception) or isinstance(exc, (AuthenticationError, CommandError)):
                    raise
                elapsed = time.monotonic() - started
                reason = self._reason(exc)
                remaining = self.retry_budget_seconds - elapsed
                if not self._is_transient(exc):
                    raise CannotConnectError(
                        f"The server at {self.url} is not Home Assistant's WebSocket API ({reason}): "
                        "set HA_URL to your Home Assistant's address, e.g. http://homeassistant.local:8123.",
                        permanent=True,
                    ) from None
                if remaining <= 0:
                    raise CannotConnectError(
                        f"Cannot reach Home Assistant at {self.url} after {attempts} attempt"
                        f"{'s' if attempts != 1 else ''} over {elapsed:.1f} s: {reason}. "
                        "Check HA_URL and that Home Assistant is running."
                    ) from None
                # Full jitter: many clients retrying a restarting HA do not arrive in step.
                pause = min(remaining, random.uniform(delay / 2, delay))
                logger.info("Home Assistant at %s not reachable (%s); retrying in %.1f s", self.url, reason, pause)
                await asyncio.sleep(pause)
                delay = min(delay * 2, _MAX_BACKOFF_SECONDS)

    async def _open(self) -> None:
        ws = await connect(
            self.url,
            max_size=None,  # registries pass 1 MiB at about 2k entities
            open_timeout=self.connect_timeout,
            ping_timeout=self.command_timeout,
            close_timeout=2,
            logger=_wire_logger,
        )
        self._ws = ws
        hello = _message_type(json.loads(await ws.recv()))
        if hello != "auth_required":
            raise _NotHomeAssistant(f"expected auth_required, got {hello[:40]!r}")
        await ws.send(json.dumps({"type": "auth", "access_token": self._token}))
        reply = json.loads(await ws.recv())
        if _message_type(reply) == "auth_invalid":
            raise AuthenticationError(
                f"Home Assistant at {self.url} rejected the access token (auth_invalid): create a "
                "long-lived access token in your Home Assistant profile (Profile → Security → "
                "Long-lived access tokens) and set HA_TOKEN."
            )
        if _message_type(reply) != "auth_ok":
            raise _NotHomeAssistant(f"expected auth_ok, got {_message_type(reply)[:40]!r}")
        self.ha_version = reply.get("ha_version")
        self._ids = count(1)
        self._lost = None
        self._reader = asyncio.create_task(self._read(ws))
        try:
            await self.command("supported_features", features={"coalesce_messages": 1})
        except CommandError:
            logger.debug("Home Assistant at %s does not support supported_features", self.url)

    async def _drop(self) -> None:
        """Close a connection that failed during connect and forget it."""
        ws, self._ws = self._ws, None
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if ws is not None:
            await ws.close()

    async def close(self) -> None:
        """Close the connection; pending commands fail with ``ConnectionLostError``."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None

    async def _read(self, ws: ClientConnection) -> None:
        reason = "closed"
        try:
            while True:
                # Bytes: the parser checks UTF-8 itself, a str copy of a 50 MB registry is wasted.
                frame = await ws.recv(decode=False)
                try:
                    payload = _parse_frame(frame)
                except ValueError:
                    logger.warning("Ignored a frame from %s that is not JSON", self.url)
                    continue
                if isinstance(payload, list):
                    self.coalesced_frames += 1
                for message in payload if isinstance(payload, list) else [payload]:
                    if isinstance(message, dict):
                        self._dispatch(message)
        except ConnectionClosed as exc:
            reason = f"close code {exc.rcvd.code}" if exc.rcvd else "no close frame"
        except OSError as exc:
            reason = self._reason(exc)
        finally:
            self._lost = reason
            for future, command_type in self._pending.values():
                if not future.done():
                    future.set_exception(self._lost_error(command_type))
            for queue in self._subscriptions.values():
                queue.put_nowait(None)

    def _lost_error(self, command_type: str) -> ConnectionLostError:
        return ConnectionLostError(
            f"Home Assistant at {self.url} closed the connection during {command_type!r} "
            f"({self._lost}); retry once Home Assistant is running again."
        )

    def _dispatch(self, message: dict[str, Any]) -> None:
        msg_id = message.get("id")
        if message.get("type") == "event":
            queue = self._subscriptions.get(msg_id)  # type: ignore[arg-type]
            if queue is not None:
                queue.put_nowait(message.get("event"))
            return
        pending = self._pending.get(msg_id)  # type: ignore[arg-type]
        if pending is None or pending[0].done():
            # The command already timed out, or HA sent a pong; nobody waits for it.
            return
        future, command_type = pending
        if message.get("success", True):
            future.set_result(message.get("result"))
        else:
            error = message.get("error") or {}
            future.set_exception(
                CommandError(str(error.get("code", "unknown_error")), str(error.get("message", "")), command_type)
            )

    # -- commands ---------------------------------------------------------------------

    async def command(self, type: str, **params: Any) -> Any:  # noqa: A002 - HA's own key
        """Send one command and return its ``result``; raise ``CommandError`` on ``success: false``."""
        return await self._command({"type": type, **params})

    async def _command(self, message: dict[str, Any], events: asyncio.Queue[Any] | None = None) -> Any:
        command_type = message["type"]
        ws = self._ws
        if ws is None:
            raise HomeAssistantError(
                f"Not connected to Home Assistant at {self.url}: use 'async with AsyncHomeAssistantClient(...)'."
            )
        if self._lost is not None:
            raise self._lost_error(command_type)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # HA requires ids to increase in the order it receives them: number and send together.
        async with self._send_lock:
            msg_id = next(self._ids)
            self._pending[msg_id] = (future, command_type)
            if events is not None:
                self._subscriptions[msg_id] = events
            try:
                await ws.send(json.dumps({"id": msg_id, **message}))
            except ConnectionClosed:
                self._pending.pop(msg_id, None)
                self._subscriptions.pop(msg_id, None)
                self._lost = self._lost or "closed"
                raise self._lost_error(command_type) from None
        try:
            result = await asyncio.wait_for(future, self.command_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            self._subscriptions.pop(msg_id, None)
            raise CommandTimeoutError(
                f"Home Assistant at {self.url} did not answer {command_type!r} within "
                f"{self.command_timeout:g} s; raise the command timeout or check the Home Assistant load."
            ) from None
        except HomeAssistantError:
            self._subscriptions.pop(msg_id, None)
            raise
        finally:
            self._pending.pop(msg_id, None)
        if events is not None:
            return msg_id
        return result

    async def _gather_limited(self, calls: list[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run the calls with at most ``_BATCHES_IN_FLIGHT`` in flight, results in order."""
        gate = asyncio.Semaphore(_BATCHES_IN_FLIGHT)

        async def run(call: Callable[[], Awaitable[T]]) -> T:
            async with gate:
                return await call()

        return list(await asyncio.gather(*(run(call) for call in calls)))

    async def _records(self, model: type[M], kind: str, command_type: str) -> tuple[list[M], list[Reject]]:
        return parse_records(model, await self.command(command_type), kind)

    @staticmethod
    def _warn_rejects(rejects: list[Reject]) -> None:
        if rejects:
            shown = "; ".join(str(reject) for reject in rejects[:5])
            more = f" (and {len(rejects) - 5} more)" if len(rejects) > 5 else ""
            logger.warning("Skipped %d invalid Home Assistant records: %s%s", len(rejects), shown, more)

    async def areas(self) -> list[Area]:
        """``config/area_registry/list``; invalid records are logged and skipped."""
        records, rejects = await self._records(Area, "area", "config/area_registry/list")
        self._warn_rejects(rejects)
        return records

    async def devices(self) -> list[Device]:
        """``config/device_registry/list``; invalid records are logged and skipped."""
        records, rejects = await self._records(Device, "device", "config/device_registry/list")
        self._warn_rejects(rejects)
        return records

    async def config_entries(self) -> list[ConfigEntry]:
        """``config_entries/get``; invalid records are logged and skipped."""
        records, rejects = await self._records(ConfigEntry, "config_entry", "config_entries/get")
        self._warn_rejects(rejects)
        return records

    async def states(self) -> list[State]:
        """``get_states``; invalid records are logged and skipped."""
        records, rejects = await self._records(State, "state", "get_states")
        self._warn_rejects(rejects)
        return records

    async def config(self) -> HAConfig:
        """``get_config``."""
        return HAConfig.model_validate(await self.command("get_config"))

    async def entities(self) -> list[Entity]:
        """The entity registry enriched with device classes, capabilities, unit and state class."""
        records, rejects = await self._entities()
        self._warn_rejects(rejects)
        return records

    async def _entities(self) -> tuple[list[Entity], list[Reject]]:
        return parse_records(Entity, await self._entity_payloads(), "entity")

    async def _entity_payloads(self, digest: RegistryDigest | None = None) -> Any:
        """The entity registry list, each item enriched by ``_enrich_entities``; a list's
        enriched parts are added to ``digest`` as they are ready."""
        states = asyncio.ensure_future(self.command("get_states"))
        try:
            raw = await self.command("config/entity_registry/list")
            if not isinstance(raw, list):
                return raw
            if digest is not None:
                digest.add("entities", [])
            attributes_by_entity: dict[str, dict[str, Any]] | None = None

            async def enrich(items: list[Any]) -> None:
                nonlocal attributes_by_entity
                ids = [
                    item["entity_id"]
                    for item in items
                    if isinstance(item, dict)
                    and isinstance(item.get("entity_id"), str)
                    and valid_entity_id(item["entity_id"])
                ]
                details = (
                    await self.command("config/entity_registry/get_entries", entity_ids=list(dict.fromkeys(ids)))
                    if ids
                    else {}
                )
                state_list = await states
                if attributes_by_entity is None:
                    attributes_by_entity = _attributes_by_entity(state_list)
                _enrich_entities(items, details, attributes_by_entity)
                # Each part is merged and hashed as it arrives, while HA serialises the next ones.
                if digest is not None:
                    digest.add("entities", items)

            await self._gather_limited(
                [lambda items=items: enrich(items) for items in _batches(raw, _GET_ENTRIES_BATCH)]
            )
            return raw
        finally:
            if not states.done():
                states.cancel()
            elif not states.cancelled():
                states.exception()  # seen: the error raised is the list's or get_entries'

    async def registry_payloads(self) -> dict[str, Any]:
        """The four registries as HA sent them, unvalidated, keyed like ``as_rows()`` (entities
        enriched as in ``entities()``). All requests go out at once: HA serialises one list while
        the client parses another."""
        areas, devices, entries, entities = await asyncio.gather(
            self.command("config/area_registry/list"),
            self.command("config/device_registry/list"),
            self.command("config_entries/get"),
            self._entity_payloads(),
        )
        return {"areas": areas, "devices": devices, "entities": entities, "config_entries": entries}

    async def registry_snapshot(self) -> RegistrySnapshot:
        """All four registries (entities enriched as in ``entities()``) with every reject."""
        fetched_at = datetime.now(timezone.utc)
        payloads = await self.registry_payloads()
        records: dict[str, list[Any]] = {}
        rejects: list[Reject] = []
        for table, model, kind in (
            ("areas", Area, "area"),
            ("devices", Device, "device"),
            ("entities", Entity, "entity"),
            ("config_entries", ConfigEntry, "config_entry"),
        ):
            records[table], table_rejects = parse_records(model, payloads[table], kind)
            rejects += table_rejects
        self._warn_rejects(rejects)
        return RegistrySnapshot(**records, fetched_at=fetched_at, rejects=rejects)

    async def registry_fingerprint(self, timeout: float | None = None) -> str:
        """``payload_fingerprint(registry_payloads())``: what the registry sensor compares.

        No models are built and the entities are hashed part by part as they arrive, so it is
        about half the time of fingerprinting ``registry_snapshot()`` (and equal to it for a
        well-formed home). ``timeout`` bounds the whole fetch (``CommandTimeoutError``),
        whatever the per-command timeout.
        """
        digest = RegistryDigest()

        async def add(table: str, command_type: str) -> None:
            digest.add(table, await self.command(command_type))

        async def add_entities() -> None:
            raw = await self._entity_payloads(digest)
            if not isinstance(raw, list):
                digest.add("entities", raw)

        try:
            await asyncio.wait_for(
                asyncio.gather(
                    add("areas", "config/area_registry/list"),
                    add("devices", "config/device_registry/list"),
                    add("config_entries", "config_entries/get"),
                    add_entities(),
                ),
                timeout,
            )
        except (TimeoutError, asyncio.TimeoutError):
            raise CommandTimeoutError(
                f"Home Assistant at {self.url} did not send its registries within {timeout} s; "
                "check the Home Assistant load."
            ) from None
        return digest.hexdigest()

    async def history_during_period(
        self,
        start: datetime,
        end: datetime | None,
        entity_ids: list[str],
        *,
        batch_size: int = 200,
        significant_changes_only: bool = False,
        minimal_response: bool = False,
        no_attributes: bool = False,
        include_start_time_state: bool = True,
    ) -> dict[str, list[dict[str, Any]]]:
        """``history/history_during_period`` with entity ids sent in batches, results merged.

        Rows are HA's compressed dicts ``{"s", "a"?, "lu", "lc"?}`` (float epoch seconds).
        """
        params: dict[str, Any] = {
            "start_time": _iso(start),
            "significant_changes_only": significant_changes_only,
            "minimal_response": minimal_response,
            "no_attributes": no_attributes,
            "include_start_time_state": include_start_time_state,
        }
        if end is not None:
            params["end_time"] = _iso(end)
        merged: dict[str, list[dict[str, Any]]] = {}
        for part in await self._gather_limited(
            [
                lambda batch=batch: self.command("history/history_during_period", entity_ids=batch, **params)
                for batch in _batches(list(dict.fromkeys(entity_ids)), batch_size)
            ]
        ):
            merged.update(part or {})
        return merged

    async def statistics_during_period(
        self,
        start: datetime,
        end: datetime | None,
        statistic_ids: list[str],
        *,
        period: str = "hour",
        units: dict[str, str] | None = None,
        types: list[str] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """``recorder/statistics_during_period``; ``start``/``end`` of rows are epoch milliseconds."""
        if not statistic_ids:
            return {}  # HA rejects an empty list as invalid_format
        params: dict[str, Any] = {"start_time": _iso(start), "statistic_ids": statistic_ids, "period": period}
        if end is not None:
            params["end_time"] = _iso(end)
        if units is not None:
            params["units"] = units
        if types is not None:
            params["types"] = types
        return await self.command("recorder/statistics_during_period", **params) or {}

    def subscribe_events(self, event_type: str | None = None) -> EventSubscription:
        """Events of one type (all if None); use ``async with`` so HA is told to stop on exit."""
        return EventSubscription(self, event_type)

    async def call_service(
        self,
        domain: str,
        service: str,
        service_data: dict[str, Any] | None = None,
        target: dict[str, Any] | None = None,
    ) -> Any:
        """``call_service``; returns HA's result (``{"context": ...}``)."""
        params: dict[str, Any] = {"domain": domain, "service": service}
        if service_data is not None:
            params["service_data"] = service_data
        if target is not None:
            params["target"] = target
        return await self.command("call_service", **params)


class EventSubscription(AsyncIterator[dict[str, Any]]):
    """Async iterator over HA events; subscribes on entry (or first ``anext``), unsubscribes on exit."""

    def __init__(self, client: AsyncHomeAssistantClient, event_type: str | None) -> None:
        self._client = client
        self._event_type = event_type
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._subscription_id: int | None = None
        self._closed = False

    async def __aenter__(self) -> EventSubscription:
        await self.subscribe()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def subscribe(self) -> None:
        """Ask HA to start sending events; returns once HA confirmed."""
        if self._subscription_id is None:
            message: dict[str, Any] = {"type": "subscribe_events"}
            if self._event_type is not None:
                message["event_type"] = self._event_type
            self._subscription_id = await self._client._command(message, events=self._queue)

    async def __anext__(self) -> dict[str, Any]:
        if self._closed:
            raise StopAsyncIteration
        await self.subscribe()
        event = await self._queue.get()
        if event is None:  # the reader saw the connection close
            raise self._client._lost_error("subscribe_events")
        return event

    async def aclose(self) -> None:
        """Unsubscribe (best effort: a closed connection has no subscription left)."""
        if self._closed:
            return
        self._closed = True
        subscription_id, self._subscription_id = self._subscription_id, None
        if subscription_id is None:
            return
        self._client._subscriptions.pop(subscription_id, None)
        if self._client._ws is not None and self._client._lost is None:
            try:
                await self._client.command("unsubscribe_events", subscription=subscription_id)
            except HomeAssistantError as exc:
                logger.debug("unsubscribe_events failed: %s", exc)


class HomeAssistantClient:
    """Blocking facade over ``AsyncHomeAssistantClient`` for Dagster assets and sensors.

    The async client runs on a private event loop in a background thread. Inside
    ``with HomeAssistantClient(...) as ha:`` every call reuses one connection; a call
    outside a ``with`` block opens and closes its own.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        connect_timeout: float = 10,
        command_timeout: float = 60,
        retry_budget_seconds: float = 30,
    ) -> None:
        self._factory = lambda: AsyncHomeAssistantClient(
            url,
            token,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            retry_budget_seconds=retry_budget_seconds,
        )
        self.url = websocket_url(url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: AsyncHomeAssistantClient | None = None

    def __repr__(self) -> str:
        return f"HomeAssistantClient(url={self.url!r})"

    def __enter__(self) -> HomeAssistantClient:
        if self._loop is not None:
            raise HomeAssistantError(f"{self!r} is already open: use one 'with' block per client.")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="home-assistant-client", daemon=True)
        self._thread.start()
        client = self._factory()
        try:
            self._submit(client.connect()).result()
        except BaseException:
            self._stop_loop()
            raise
        self._client = client
        return self

    def __exit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        try:
            if client is not None and self._loop is not None:
                self._submit(client.close()).result()
        finally:
            self._stop_loop()

    def _submit(self, coroutine: Awaitable[T]) -> Future[T]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    def _call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        # Positional-only: commands have parameters of any name (``name``, ``method``) to pass on.
        if self._client is None:
            with self:
                return self._call(method, *args, **kwargs)
        return self._submit(getattr(self._client, method)(*args, **kwargs)).result()

    @property
    def ha_version(self) -> str | None:
        """The version HA reported at login (None before connecting)."""
        return self._client.ha_version if self._client else None

    @property
    def coalesced_frames(self) -> int:
        """Frames of the open connection that carried several messages."""
        return self._client.coalesced_frames if self._client else 0

    def command(self, type: str, **params: Any) -> Any:  # noqa: A002 - HA's own key
        """Send one command and return its ``result``."""
        return self._call("command", type, **params)

    def areas(self) -> list[Area]:
        """``config/area_registry/list``."""
        return self._call("areas")

    def devices(self) -> list[Device]:
        """``config/device_registry/list``."""
        return self._call("devices")

    def entities(self) -> list[Entity]:
        """Entity registry enriched with device classes, capabilities, unit and state class."""
        return self._call("entities")

    def config_entries(self) -> list[ConfigEntry]:
        """``config_entries/get``."""
        return self._call("config_entries")

    def states(self) -> list[State]:
        """``get_states``."""
        return self._call("states")

    def config(self) -> HAConfig:
        """``get_config``."""
        return self._call("config")

    def registry_snapshot(self) -> RegistrySnapshot:
        """All four registries with every reject."""
        return self._call("registry_snapshot")

    def registry_payloads(self) -> dict[str, Any]:
        """The four registries as HA sent them, unvalidated (``as_rows()`` layout)."""
        return self._call("registry_payloads")

    def registry_fingerprint(self, timeout: float | None = None) -> str:
        """The registries' fingerprint without building models; ``timeout`` bounds the whole fetch."""
        return self._call("registry_fingerprint", timeout)

    def history_during_period(
        self, start: datetime, end: datetime | None, entity_ids: list[str], **options: Any
    ) -> dict[str, list[dict[str, Any]]]:
        """``history/history_during_period`` in batches (options as in the async client)."""
        return self._call("history_during_period", start, end, entity_ids, **options)

    def statistics_during_period(
        self, start: datetime, end: datetime | None, statistic_ids: list[str], **options: Any
    ) -> dict[str, list[dict[str, Any]]]:
        """``recorder/statistics_during_period`` (options as in the async client)."""
        return self._call("statistics_during_period", start, end, statistic_ids, **options)

    def call_service(
        self,
        domain: str,
        service: str,
        service_data: dict[str, Any] | None = None,
        target: dict[str, Any] | None = None,
    ) -> Any:
        """``call_service``."""
        return self._call("call_service", domain, service, service_data, target)

    def subscribe_events(self, event_type: str | None = None) -> SyncEventSubscription:
        """Blocking iterator over events; use inside ``with HomeAssistantClient(...)``."""
        if self._client is None:
            raise HomeAssistantError(
                "subscribe_events needs an open connection: use 'with HomeAssistantClient(...) as ha'."
            )
        return SyncEventSubscription(self, self._client.subscribe_events(event_type))


class SyncEventSubscription(Iterator[dict[str, Any]]):
    """Blocking view of an ``EventSubscription``; ``with`` subscribes and unsubscribes."""

    def __init__(self, owner: HomeAssistantClient, subscription: EventSubscription) -> None:
        self._owner = owner
        self._subscription = subscription

    def __enter__(self) -> SyncEventSubscription:
        self._owner._submit(self._subscription.subscribe()).result()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __next__(self) -> dict[str, Any]:
        return self.next_event()

    def next_event(self, timeout: float | None = None) -> dict[str, Any]:
        """The next event; ``TimeoutError`` if none arrives within ``timeout`` seconds."""
        future = self._owner._submit(self._subscription.__anext__())
        try:
            return future.result(timeout)
        except StopAsyncIteration:
            raise StopIteration from None
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        """Unsubscribe."""
        if self._owner._loop is not None:
            self._owner._submit(self._subscription.aclose()).result()
