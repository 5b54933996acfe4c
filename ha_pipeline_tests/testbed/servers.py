"""What tests see of the simulator and of either HA (real or simulated)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .homeassistant import RealHomeAssistant, ws_command


@dataclass
class RunningSimulator:
    """The in-process simulator: `.url`, `.token`, `.home` (the `SimulatedHome`)."""

    url: str
    token: str
    home: Any
    server: Any

    def set_state(self, entity_id: str, state: str, attributes: dict[str, Any] | None = None) -> Any:
        """Set a state in the simulated home (fires state_changed like HA).

        Runs on the server's loop so it is ordered with the commands being handled."""
        return self.server.call(self.home.set_state, entity_id, state, attributes or {})

    def ws_command(self, type: str, **params: Any) -> Any:  # noqa: A002
        """One raw WebSocket command against the simulator."""
        return ws_command(self.ws_url, self.token, type, **params)

    @property
    def ws_url(self) -> str:
        """The WebSocket API endpoint."""
        return self.url.replace("http://", "ws://", 1) + "/api/websocket"


@dataclass
class HAServer:
    """What contract tests see of either HA: `.url`, `.token`, `.kind` and two helpers."""

    kind: str
    backend: RealHomeAssistant | RunningSimulator

    @property
    def url(self) -> str:
        """Base URL (http://127.0.0.1:PORT)."""
        return self.backend.url

    @property
    def token(self) -> str:
        """A valid long-lived access token."""
        return self.backend.token

    def set_state(self, entity_id: str, state: str, attributes: dict[str, Any] | None = None) -> Any:
        """Change an entity's state the way each server allows (REST for real HA)."""
        return self.backend.set_state(entity_id, state, attributes)

    def call_service(self, domain: str, service: str, service_data: dict[str, Any] | None = None,
                     target: dict[str, Any] | None = None) -> Any:
        """`call_service` over a raw WebSocket connection."""
        params: dict[str, Any] = {"domain": domain, "service": service}
        if service_data:
            params["service_data"] = service_data
        if target:
            params["target"] = target
        return self.backend.ws_command("call_service", **params)
