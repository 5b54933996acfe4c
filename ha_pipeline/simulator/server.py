"""A WebSocket server speaking Home Assistant 2024.1's ``/api/websocket`` protocol for a SimulatedHome.

Runs its own asyncio loop in a background thread so tests and Dagster code can use it from
synchronous code: ``with SimulatorServer(home, token="t") as server: server.url``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import threading
import time
from datetime import datetime
from http import HTTPStatus
from typing import Any, Callable
from zoneinfo import ZoneInfo

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ha_pipeline.simulator import recorder
from ha_pipeline.simulator.history import gc_paused
from ha_pipeline.simulator.home import HA_VERSION, ON_OFF_DOMAINS, USER_ID, SimulatedHome, SimulatorError, context

_LOGGER = logging.getLogger(__name__)
# websockets logs every frame at DEBUG, the client's auth frame (and so its token) included.
_WIRE_LOGGER = logging.getLogger(f"{__name__}.wire")
_WIRE_LOGGER.setLevel(logging.INFO)
WS_PATH = "/api/websocket"
# HA sends registries far larger than websockets' 1 MiB default; accept big client frames too
MAX_SIZE = 256 * 1024 * 1024


def _result(msg_id: int, result: Any) -> dict[str, Any]:
    return {"id": msg_id, "type": "result", "success": True, "result": result}


def _error(msg_id: int | None, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"id": msg_id, "type": "result", "success": False, "error": {"code": code, "message": message, **extra}}


def _parse_time(value: Any, time_zone: str) -> float | None:
    """An ISO datetime as epoch seconds; naive times are in the home's time zone, as in HA."""
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(time_zone))
    return dt.timestamp()


def _entity_ids(data: dict[str, Any]) -> list[str]:
    """Entity ids of a service call from ``target`` and ``service_data`` (str or list)."""
    ids: list[str] = []
    for source in (data.get("target") or {}, data.get("service_data") or {}):
        value = source.get("entity_id")
        if isinstance(value, str):
            ids.extend(v.strip() for v in value.split(","))
        elif isinstance(value, list):
            ids.extend(value)
    return ids


class _Connection:
    """One authenticated client: last id, subscriptions, an outbox that coalesces ready replies."""

    def __init__(self, ws: ServerConnection):
        self.ws = ws
        self.last_id = 0
        self.coalesce = False
        self.subscriptions: dict[int, str | None] = {}
        self.entity_subscriptions: dict[int, frozenset[str] | None] = {}
        self.outbox: asyncio.Queue[str] = asyncio.Queue()

    def send(self, message: dict[str, Any]) -> None:
        with gc_paused():
            self.outbox.put_nowait(json.dumps(message, ensure_ascii=False, separators=(",", ":")))

    def send_result_json(self, msg_id: int, result_json: str) -> None:
        """A success result whose ``result`` is already JSON text (large history responses)."""
        self.outbox.put_nowait(f'{{"id":{msg_id},"type":"result","success":true,"result":{result_json}}}')

    async def writer(self) -> None:
        while True:
            first = await self.outbox.get()
            # let replies that are already being produced join this frame
            await asyncio.sleep(0)
            batch = [first]
            while self.coalesce and not self.outbox.empty():
                batch.append(self.outbox.get_nowait())
            frame = batch[0] if len(batch) == 1 else "[" + ",".join(batch) + "]"
            try:
                await self.ws.send(frame)
            except ConnectionClosed:
                return


class SimulatorServer:
    """Serves ``home`` on ``ws://host:port/api/websocket``; ``url`` is the HTTP base URL."""

    def __init__(self, home: SimulatedHome, host: str = "127.0.0.1", port: int = 0, token: str = "simulator-token",
                 live: bool = False, tick_seconds: float = 1.0):
        """``live``: keep generating history up to the wall clock every ``tick_seconds`` (state_changed events)."""
        self.home = home
        self.live = live
        self.tick_seconds = tick_seconds
        self.host = host
        self.port = port
        self.token = token
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._stopped: asyncio.Event | None = None
        self._connections: set[_Connection] = set()
        self._ready = threading.Event()
        self._loop_thread: int | None = None
        self._error: BaseException | None = None
        self.home.listeners.append(self._on_event)
        self._handler_table = self._handlers()
        self._service_table = self._services()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "SimulatorServer":
        """Start the loop thread; returns once the socket listens."""
        self._thread = threading.Thread(target=self._run, name=f"ha-simulator-{self.port}", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Close all connections and the listening socket; joins the thread."""
        if self._loop is not None and self._stopped is not None and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)
        if self._on_event in self.home.listeners:
            self.home.listeners.remove(self._on_event)

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the server loop, in order with the commands being handled; returns its result."""
        async def run() -> Any:
            return fn(*args, **kwargs)
        assert self._loop is not None, "server not started"
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def set_state(self, entity_id: str, state: str, attributes: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Thread-safe ``home.set_state`` (fires state_changed to subscribers, records history)."""
        return self.call(self.home.set_state, entity_id, state, attributes)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        async with serve(self._handle, self.host, self.port, max_size=MAX_SIZE, process_request=self._check_path,
                         ping_interval=None, compression=None, logger=_WIRE_LOGGER) as server:
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            ticker = asyncio.create_task(self._tick()) if self.live else None
            await self._stopped.wait()
            if ticker is not None:
                ticker.cancel()
            server.close()
            await server.wait_closed()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                self.home.advance(time.time())
            except Exception:  # a broken tick must not end the live home silently
                _LOGGER.exception("simulator: advancing the live home failed")

    @staticmethod
    def _check_path(connection: ServerConnection, request: Request) -> Response | None:
        if request.path != WS_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "404: Not Found\n")
        return None

    # ------------------------------------------------------------------ protocol
    async def _handle(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "auth_required", "ha_version": HA_VERSION}))
        try:
            raw = await asyncio.wait_for(ws.recv(), 10)
            msg = json.loads(raw)
        except (asyncio.TimeoutError, ConnectionClosed, ValueError):
            await ws.close()
            return
        if not isinstance(msg, dict) or msg.get("type") != "auth" or msg.get("access_token") != self.token:
            await ws.send(json.dumps({"type": "auth_invalid", "message": "Invalid access token or password"}))
            await ws.close(1000)
            return
        await ws.send(json.dumps({"type": "auth_ok", "ha_version": HA_VERSION}))
        conn = _Connection(ws)
        self._connections.add(conn)
        writer = asyncio.create_task(conn.writer())
        try:
            async for raw in ws:
                try:
                    payload = json.loads(raw)
                except ValueError:
                    conn.send(_error(None, "invalid_format", "Message incorrectly formatted."))
                    continue
                for msg in payload if isinstance(payload, list) else [payload]:
                    self._dispatch(conn, msg)
                await asyncio.sleep(0)
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(conn)
            # flush what is queued before the writer goes
            while not conn.outbox.empty() and not writer.done():
                await asyncio.sleep(0.01)
            writer.cancel()

    def _dispatch(self, conn: _Connection, msg: Any) -> None:
        if not isinstance(msg, dict) or not isinstance(msg.get("id"), int) or not isinstance(msg.get("type"), str):
            conn.send(_error(msg.get("id") if isinstance(msg, dict) else None, "invalid_format",
                             "Message incorrectly formatted."))
            return
        msg_id = msg["id"]
        if msg_id <= conn.last_id:
            conn.send(_error(msg_id, "id_reuse", "Identifier values have to increase."))
            return
        handler = self._handler_table.get(msg["type"])
        if handler is None:
            # as in HA, only known commands advance the last id: the same id may follow
            conn.send(_error(msg_id, "unknown_command", "Unknown command."))
            return
        conn.last_id = msg_id
        try:
            result = handler(conn, msg)
        except _ServiceNotFound as exc:
            conn.send(_error(msg_id, exc.code, exc.message, translation_key="service_not_found",
                             translation_placeholders={"domain": exc.domain, "service": exc.service},
                             translation_domain="homeassistant"))
            return
        except SimulatorError as exc:
            conn.send(_error(msg_id, exc.code, exc.message))
            return
        except (KeyError, TypeError, ValueError) as exc:
            conn.send(_error(msg_id, "invalid_format", f"Invalid message: {exc!r}"))
            return
        except Exception:
            _LOGGER.exception("simulator: %s failed", msg["type"])
            conn.send(_error(msg_id, "unknown_error", "Unknown error"))
            return
        if isinstance(result, _Followup):
            conn.send(_result(msg_id, None))
            conn.send(result.message)
        elif isinstance(result, _Executor):
            # like HA's recorder jobs: computed off the loop, answered when ready (maybe after later commands)
            asyncio.get_running_loop().create_task(self._run_in_executor(conn, msg_id, result))
        else:
            conn.send({"id": msg_id, "type": "pong"} if msg["type"] == "ping" else _result(msg_id, result))

    async def _run_in_executor(self, conn: _Connection, msg_id: int, job: "_Executor") -> None:
        try:
            result = await asyncio.to_thread(job.fn)
        except SimulatorError as exc:
            conn.send(_error(msg_id, exc.code, exc.message))
            return
        except Exception:
            _LOGGER.exception("simulator: a recorder job failed")
            conn.send(_error(msg_id, "unknown_error", "Unknown error"))
            return
        if job.is_json:
            conn.send_result_json(msg_id, result)
        else:
            conn.send(_result(msg_id, result))

    def _handlers(self) -> dict[str, Callable[[_Connection, dict[str, Any]], Any]]:
        return {
            "supported_features": self._supported_features,
            "ping": lambda c, m: None,
            "get_config": self._get_config,
            "get_states": lambda c, m: list(self.home.states.values()),
            "config/area_registry/list": lambda c, m: list(self.home.areas.values()),
            "config/device_registry/list": lambda c, m: list(self.home.devices.values()),
            "config/entity_registry/list": lambda c, m: list(self.home.entities.values()),
            "config/entity_registry/list_for_display": self._list_for_display,
            "config/entity_registry/get": self._entity_get,
            "config/entity_registry/get_entries": self._get_entries,
            "config/entity_registry/update": self._entity_update,
            "config/entity_registry/remove": self._entity_remove,
            "config/device_registry/update": self._device_update,
            "config_entries/get": self._config_entries,
            "history/history_during_period": self._history,
            "recorder/statistics_during_period": self._statistics,
            "recorder/list_statistic_ids": self._list_statistic_ids,
            "subscribe_events": self._subscribe,
            "unsubscribe_events": self._unsubscribe,
            "subscribe_entities": self._subscribe_entities,
            "call_service": self._call_service,
            "get_services": self._get_services,
        }

    def _supported_features(self, conn: _Connection, msg: dict[str, Any]) -> None:
        conn.coalesce = bool((msg.get("features") or {}).get("coalesce_messages"))
        return None

    def _get_config(self, conn: _Connection, msg: dict[str, Any]) -> dict[str, Any]:
        components = sorted({e["platform"] for e in self.home.entities.values()}
                            | {c["domain"] for c in self.home.config_entries.values()}
                            | {"api", "config", "history", "recorder", "websocket_api"})
        return {
            "latitude": 52.3731, "longitude": 4.8922, "elevation": 2,
            "unit_system": {"length": "km", "accumulated_precipitation": "mm", "mass": "g", "pressure": "Pa",
                            "temperature": "°C", "volume": "L", "wind_speed": "m/s"},
            "location_name": self.home.location_name, "time_zone": self.home.time_zone, "components": components,
            "config_dir": "/config", "whitelist_external_dirs": ["/media", "/config/www"],
            "allowlist_external_dirs": ["/media", "/config/www"], "allowlist_external_urls": [],
            "version": HA_VERSION, "config_source": "storage", "recovery_mode": False, "state": "RUNNING",
            "external_url": None, "internal_url": self.url, "currency": "EUR", "country": "NL", "language": "en",
            "safe_mode": False,
        }

    def _list_for_display(self, conn: _Connection, msg: dict[str, Any]) -> dict[str, Any]:
        return {"entity_categories": {"0": "config", "1": "diagnostic"},
                "entities": [self.home.display_entry(e) for e in self.home.entities.values()
                             if e["disabled_by"] is None]}

    def _entity_get(self, conn: _Connection, msg: dict[str, Any]) -> dict[str, Any]:
        if msg["entity_id"] not in self.home.entities:
            raise SimulatorError("not_found", "Entity not found")
        return self.home.entity_entry(msg["entity_id"])

    def _get_entries(self, conn: _Connection, msg: dict[str, Any]) -> dict[str, Any]:
        ids = msg["entity_ids"]
        if not isinstance(ids, list):
            raise SimulatorError("invalid_format", f"expected a list for dictionary value @ data['entity_ids']. Got {ids!r}")
        return {e: self.home.entity_entry(e) if e in self.home.entities else None for e in ids}

    def _entity_update(self, conn: _Connection, msg: dict[str, Any]) -> dict[str, Any]:
        fields = ("name", "area_id", "disabled_by", "hidden_by", "icon", "new_entity_id")
        changes = {k: msg[k] for k in fields if k in msg}
        entry = self.home.update_entity(msg["entity_id"], **changes)
        result: dict[str, Any] = {"entity_entry": self.home.entity_entry(entry["entity_id"])}
        if "disabled_by" in changes and entry.get("config_entry_id"):
            result["require_restart"] = True
        return result

    def _entity_remove(self, conn: _Connection, msg: dict[str, Any]) -> None:
        self.home.remove_entity(msg["entity_id"])
        return None

    def _device_update(self, conn: _Connection, msg: dict[str, Any]) -> dict[str, Any]:
        changes = {k: msg[k] for k in ("name_by_user", "area_id", "disabled_by") if k in msg}
        return self.home.update_device(msg["device_id"], **changes)

    def _config_entries(self, conn: _Connection, msg: dict[str, Any]) -> list[dict[str, Any]]:
        entries = list(self.home.config_entries.values())
        if msg.get("domain"):
            entries = [e for e in entries if e["domain"] == msg["domain"]]
        type_filter = msg.get("type_filter")
        if type_filter and "integration" not in (type_filter if isinstance(type_filter, list) else [type_filter]):
            entries = []
        return entries

    def _history(self, conn: _Connection, msg: dict[str, Any]) -> Any:
        if "entity_ids" not in msg:
            raise SimulatorError("invalid_format", "required key not provided @ data['entity_ids']. Got None")
        start = _parse_time(msg.get("start_time"), self.home.time_zone)
        if start is None:
            raise SimulatorError("invalid_start_time", "Invalid start_time")
        end = _parse_time(msg["end_time"], self.home.time_zone) if msg.get("end_time") else time.time()
        if end is None:
            raise SimulatorError("invalid_end_time", "Invalid end_time")
        ids = msg["entity_ids"]
        if not isinstance(ids, list):
            ids = [ids]
        if start > time.time() or end < start:
            return {}
        return _Executor(functools.partial(
            recorder.history_json, self.home, start, end, [e.lower() for e in ids],
            include_start_time_state=msg.get("include_start_time_state", True),
            significant_changes_only=msg.get("significant_changes_only", True),
            minimal_response=msg.get("minimal_response", False),
            no_attributes=msg.get("no_attributes", False)), is_json=True)

    def _statistics(self, conn: _Connection, msg: dict[str, Any]) -> Any:
        start = _parse_time(msg.get("start_time"), self.home.time_zone)
        if start is None:
            raise SimulatorError("invalid_start_time", "Invalid start_time")
        end = _parse_time(msg["end_time"], self.home.time_zone) if msg.get("end_time") else time.time()
        if end is None:
            raise SimulatorError("invalid_end_time", "Invalid end_time")
        ids = msg.get("statistic_ids")
        if not isinstance(ids, list) or not ids:
            raise SimulatorError("invalid_format", "length of value must be at least 1 for dictionary value @ data['statistic_ids']")
        period = msg.get("period")
        if period not in ("5minute", "hour", "day", "week", "month"):
            raise SimulatorError("invalid_format", f"value must be one of ['5minute', 'day', 'hour', 'month', 'week'] for dictionary value @ data['period']. Got {period!r}")
        return _Executor(functools.partial(recorder.statistics_during_period, self.home, start, end, ids, period,
                                           msg.get("types"), msg.get("units")))

    def _list_statistic_ids(self, conn: _Connection, msg: dict[str, Any]) -> Any:
        return recorder.list_statistic_ids(self.home, msg.get("statistic_type"))

    def _subscribe(self, conn: _Connection, msg: dict[str, Any]) -> None:
        conn.subscriptions[msg["id"]] = msg.get("event_type")
        return None

    def _unsubscribe(self, conn: _Connection, msg: dict[str, Any]) -> None:
        sub = msg.get("subscription")
        if conn.subscriptions.pop(sub, _MISSING) is _MISSING and conn.entity_subscriptions.pop(sub, _MISSING) is _MISSING:
            raise SimulatorError("not_found", "Subscription not found.")
        return None

    def _subscribe_entities(self, conn: _Connection, msg: dict[str, Any]) -> _Followup:
        ids = msg.get("entity_ids")
        wanted = frozenset(ids) if ids else None
        conn.entity_subscriptions[msg["id"]] = wanted
        initial = {eid: _compressed_state(state) for eid, state in self.home.states.items()
                   if wanted is None or eid in wanted}
        # HA answers the command, then sends every current state as one "a" (add) event
        return _Followup({"id": msg["id"], "type": "event", "event": {"a": initial}})

    def _on_event(self, event: dict[str, Any]) -> None:
        # home changes made from another thread (tests calling home.set_state directly) must
        # reach the connections' queues on the loop thread, or the writers never wake up
        loop = self._loop
        if loop is not None and self._loop_thread != threading.get_ident():
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._publish, event)
            return
        self._publish(event)

    def _publish(self, event: dict[str, Any]) -> None:
        entity_event = None
        if event["event_type"] == "state_changed" and any(c.entity_subscriptions for c in self._connections):
            entity_event = _compressed_change(event["data"])
        for conn in list(self._connections):
            for sub_id, wanted in conn.entity_subscriptions.items():
                if entity_event is not None and (wanted is None or event["data"]["entity_id"] in wanted):
                    conn.send({"id": sub_id, "type": "event", "event": entity_event})
            for sub_id, event_type in conn.subscriptions.items():
                if event_type in (None, "*", event["event_type"]):
                    conn.send({"id": sub_id, "type": "event", "event": event})

    # ------------------------------------------------------------------ services
    def _call_service(self, conn: _Connection, msg: dict[str, Any]) -> dict[str, Any]:
        domain, service = msg["domain"], msg["service"]
        data = msg.get("service_data") or {}
        ts = time.time()
        ctx = context(ts, self.home.rnd, USER_ID)
        fn = self._service_table.get((domain, service))
        if fn is None:
            raise _ServiceNotFound(domain, service)
        fn(_entity_ids(msg), data, ctx)
        return {"context": ctx}

    def _services(self) -> dict[tuple[str, str], Callable[[list[str], dict[str, Any], dict[str, Any]], None]]:
        services: dict[tuple[str, str], Callable[..., None]] = {}
        for domain in (*ON_OFF_DOMAINS, "homeassistant"):
            for service in ("turn_on", "turn_off", "toggle"):
                services[(domain, service)] = self._on_off(domain, service)
        services[("input_number", "set_value")] = self._set_value
        home = self.home
        services.update({
            ("simulator", "set_state"): lambda ids, d, ctx: home.set_state(d["entity_id"], str(d["state"]), d.get("attributes"), ctx),
            ("simulator", "rename_device"): lambda ids, d, ctx: home.update_device(d["device_id"], name_by_user=d.get("name")),
            ("simulator", "move_device"): lambda ids, d, ctx: home.update_device(d["device_id"], area_id=d.get("area_id")),
            ("simulator", "add_device"): lambda ids, d, ctx: home.add_device(d.get("name", "New device"), d.get("area_id"), d.get("model"), d.get("entities")),
            ("simulator", "remove_device"): lambda ids, d, ctx: home.remove_device(d["device_id"]),
            ("simulator", "add_entity"): lambda ids, d, ctx: home.add_entity(d.get("domain", "sensor"), d.get("name", "New sensor"), d.get("device_id"), d.get("state")),
            ("simulator", "remove_entity"): lambda ids, d, ctx: [home.remove_entity(e) for e in ids],
            ("simulator", "rename_entity"): lambda ids, d, ctx: [home.update_entity(
                e, **{k: d[k] for k in ("name", "new_entity_id") if k in d}) for e in ids],
        })
        return services

    def _get_services(self, conn: _Connection, msg: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Descriptions of the services this home answers, in HA's get_services shape."""
        out: dict[str, dict[str, Any]] = {}
        for domain, service in self._service_table:
            entry: dict[str, Any] = {"name": service.replace("_", " ").capitalize(),
                                     "description": f"{service.replace('_', ' ').capitalize()} ({domain}).",
                                     "fields": {}}
            if domain in (*ON_OFF_DOMAINS, "input_number"):
                entry["target"] = {"entity": [{"domain": [domain]}]}
            elif domain == "homeassistant":
                entry["target"] = {"entity": [{}]}
            out.setdefault(domain, {})[service] = entry
        return out

    def _on_off(self, domain: str, service: str) -> Callable[[list[str], dict[str, Any], dict[str, Any]], None]:
        def apply(ids: list[str], data: dict[str, Any], ctx: dict[str, Any]) -> None:
            for eid in ids:
                ent_domain = eid.split(".", 1)[0]
                state = self.home.states.get(eid)
                # HA silently ignores unknown entities and entities of other domains
                if state is None or (domain != "homeassistant" and ent_domain != domain):
                    continue
                if ent_domain not in ON_OFF_DOMAINS:
                    continue
                target = {"turn_on": "on", "turn_off": "off"}.get(service) or ("off" if state["state"] == "on" else "on")
                attrs = dict(state["attributes"])
                if ent_domain == "light":
                    on = target == "on"
                    brightness = data.get("brightness", attrs.get("brightness") or 255) if on else None
                    attrs.update({"color_mode": "brightness" if on else None, "brightness": brightness})
                self.home.set_state(eid, target, attrs, ctx)
        return apply

    def _set_value(self, ids: list[str], data: dict[str, Any], ctx: dict[str, Any]) -> None:
        value = float(data["value"])
        for eid in ids:
            state = self.home.states.get(eid)
            if state is None or not eid.startswith("input_number."):
                continue
            lo, hi = state["attributes"].get("min", -math.inf), state["attributes"].get("max", math.inf)
            if not lo <= value <= hi:
                raise SimulatorError("invalid_format", f"Invalid value for {eid}: {value} (range {lo} - {hi})")
            self.home.set_state(eid, str(value), state["attributes"], ctx)


class _ServiceNotFound(SimulatorError):
    def __init__(self, domain: str, service: str):
        super().__init__("not_found", f"Service {domain}.{service} not found.")
        self.domain = domain
        self.service = service


class _Followup:
    """A handler result: answer ``null``, then send ``message`` (subscribe_entities' first event)."""

    def __init__(self, message: dict[str, Any]):
        self.message = message


def _context_compressed(ctx: dict[str, Any]) -> str | dict[str, Any]:
    """HA sends a bare context id unless the context has a parent or a user."""
    return ctx if ctx.get("parent_id") or ctx.get("user_id") else ctx["id"]


def _context_diff(old: dict[str, Any], new: dict[str, Any]) -> str | dict[str, Any]:
    """Only the context fields that changed, a bare id when only the id did (HA's ``_state_diff``)."""
    changed = {key: new[key] for key in ("parent_id", "user_id") if old.get(key) != new.get(key)}
    return changed | {"id": new["id"]} if changed else new["id"]


def _ts(iso_time: str) -> float:
    return datetime.fromisoformat(iso_time).timestamp()


def _compressed_state(state: dict[str, Any]) -> dict[str, Any]:
    """subscribe_entities' compressed state: s, a, c, lc, and lu only when it differs from lc."""
    out = {"s": state["state"], "a": state["attributes"], "c": _context_compressed(state["context"]),
           "lc": _ts(state["last_changed"])}
    if state["last_updated"] != state["last_changed"]:
        out["lu"] = _ts(state["last_updated"])
    return out


def _compressed_change(data: dict[str, Any]) -> dict[str, Any]:
    """subscribe_entities' diff for a state_changed: {"c": {id: {"+": …, "-": …}}} or {"r": [id]}."""
    eid, old, new = data["entity_id"], data["old_state"], data["new_state"]
    if new is None:
        return {"r": [eid]}
    if old is None:
        return {"a": {eid: _compressed_state(new)}}
    plus: dict[str, Any] = {}
    if new["state"] != old["state"]:
        plus["s"] = new["state"]
    changed = {k: v for k, v in new["attributes"].items() if old["attributes"].get(k, _MISSING) != v}
    if changed:
        plus["a"] = changed
    plus["c"] = _context_diff(old["context"], new["context"])
    if new["last_changed"] != old["last_changed"]:
        plus["lc"] = _ts(new["last_changed"])
    elif new["last_updated"] != old["last_updated"]:
        plus["lu"] = _ts(new["last_updated"])
    diff: dict[str, Any] = {"+": plus}
    removed = [k for k in old["attributes"] if k not in new["attributes"]]
    if removed:
        diff["-"] = {"a": removed}
    return {"c": {eid: diff}}


class _Executor:
    """A handler result to compute in a worker thread; ``is_json``: it returns JSON text."""

    def __init__(self, fn: Callable[[], Any], is_json: bool = False):
        self.fn = fn
        self.is_json = is_json


_MISSING = object()
