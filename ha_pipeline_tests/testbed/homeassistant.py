"""A real Home Assistant 2024.1.6 from `.ha-venv`, configured and authorised headlessly.

`start_real_ha(config_dir)` writes configuration.yaml (from ha_config/), copies our
custom integration, starts `python -m homeassistant -c DIR --skip-pip` on a free port,
creates the owner user (or logs in on a reused config dir), mints a long-lived token and
waits until HA is RUNNING and the recorder has committed.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests
from websockets.sync.client import connect

from .process import ServerProcess, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
HA_CONFIG_TEMPLATE = Path(__file__).resolve().parent / "ha_config"
OWNER_USERNAME = "owner"
OWNER_PASSWORD = "testbed-owner-pw"
# An entity whose recorded history proves the recorder has committed.
PROBE_ENTITY = "sensor.main_energy_meter_energy"


def ha_python() -> Path:
    """The interpreter of the HA venv (`HA_VENV`, default `.ha-venv`)."""
    venv = Path(os.environ.get("HA_VENV", REPO_ROOT / ".ha-venv"))
    python = venv / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"{python} missing: run `make ha-venv` (scripts/install_ha.sh)")
    return python


@dataclass
class RealHomeAssistant:
    """A running HA: `.url`, `.token`, `.config_dir`, `.pid` plus small test helpers.

    The helpers talk REST / raw WebSocket directly, so the test bed does not depend on
    ha_pipeline's own client (which is what the tests check).
    """

    url: str
    token: str
    config_dir: Path
    pid: int
    startup_seconds: float = 0.0
    process: ServerProcess | None = field(default=None, repr=False)

    @property
    def ws_url(self) -> str:
        """The WebSocket API endpoint."""
        return self.url.replace("http://", "ws://", 1) + "/api/websocket"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def set_state(self, entity_id: str, state: str, attributes: dict[str, Any] | None = None) -> dict:
        """Write a state into HA's state machine (REST POST /api/states/<id>)."""
        resp = requests.post(f"{self.url}/api/states/{entity_id}", headers=self._headers(),
                             json={"state": state, "attributes": attributes or {}}, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def call_service(self, domain: str, service: str, service_data: dict[str, Any] | None = None,
                     target: dict[str, Any] | None = None) -> Any:
        """Call a service over the WebSocket API (`call_service`)."""
        params: dict[str, Any] = {"domain": domain, "service": service}
        if service_data:
            params["service_data"] = service_data
        if target:
            params["target"] = target
        return self.ws_command("call_service", **params)

    def ws_command(self, type: str, timeout: float = 30.0, **params: Any) -> Any:  # noqa: A002
        """One WebSocket command on a fresh authenticated connection; its `result`."""
        return ws_command(self.ws_url, self.token, type, timeout=timeout, **params)

    def stop(self) -> None:
        """Stop HA by its pid (SIGTERM: graceful, the recorder writes its last rows)."""
        if self.process is not None:
            self.process.stop(timeout=60)


def ws_command(ws_url: str, token: str, type: str, timeout: float = 30.0,  # noqa: A002
               **params: Any) -> Any:
    """Authenticate, send one command, return its result; raise RuntimeError on failure."""
    with connect(ws_url, max_size=None, open_timeout=timeout, close_timeout=2) as ws:
        hello = json.loads(ws.recv(timeout))
        if hello.get("type") != "auth_required":
            raise RuntimeError(f"unexpected greeting {hello.get('type')!r}")
        ws.send(json.dumps({"type": "auth", "access_token": token}))
        reply = json.loads(ws.recv(timeout))
        if reply.get("type") != "auth_ok":
            raise RuntimeError(f"WebSocket auth failed: {reply.get('type')}")
        ws.send(json.dumps({"id": 1, "type": type, **params}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(ws.recv(max(0.1, deadline - time.monotonic())))
            if msg.get("id") == 1 and msg.get("type") == "result":
                if not msg.get("success"):
                    raise RuntimeError(f"{type} failed: {msg.get('error')}")
                return msg.get("result")


def write_config(config_dir: Path, port: int, extra_devices: int = 0,
                 extra_entities_per_device: int = 4) -> None:
    """Write configuration.yaml and copy the custom integration into `config_dir`."""
    config_dir.mkdir(parents=True, exist_ok=True)
    template = string.Template((HA_CONFIG_TEMPLATE / "configuration.yaml").read_text())
    (config_dir / "configuration.yaml").write_text(template.substitute(
        port=port, config_dir=config_dir, extra_devices=extra_devices,
        extra_entities_per_device=extra_entities_per_device))
    target = config_dir / "custom_components"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(HA_CONFIG_TEMPLATE / "custom_components", target,
                    ignore=shutil.ignore_patterns("__pycache__"))


def _auth_code(url: str, client_id: str) -> str:
    """Onboard the owner user on first start, else log in; an authorization code."""
    steps = requests.get(f"{url}/api/onboarding", timeout=10).json()
    user_step_done = any(s.get("step") == "user" and s.get("done") for s in steps)
    if not user_step_done:
        resp = requests.post(f"{url}/api/onboarding/users", timeout=30, json={
            "client_id": client_id, "name": "Test Bed Owner", "username": OWNER_USERNAME,
            "password": OWNER_PASSWORD, "language": "en"})
        resp.raise_for_status()
        return resp.json()["auth_code"]
    flow = requests.post(f"{url}/auth/login_flow", timeout=10, json={
        "client_id": client_id, "handler": ["homeassistant", None], "redirect_uri": client_id})
    flow.raise_for_status()
    resp = requests.post(f"{url}/auth/login_flow/{flow.json()['flow_id']}", timeout=30, json={
        "client_id": client_id, "username": OWNER_USERNAME, "password": OWNER_PASSWORD})
    resp.raise_for_status()
    return resp.json()["result"]


def _long_lived_token(url: str) -> str:
    """Owner user → short-lived access token → long-lived token, all without a browser."""
    client_id = f"{url}/"
    code = _auth_code(url, client_id)
    resp = requests.post(f"{url}/auth/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "client_id": client_id})
    resp.raise_for_status()
    access = resp.json()["access_token"]
    ws_url = url.replace("http://", "ws://", 1) + "/api/websocket"
    # client_name must be unique per user: a reused config dir already has earlier tokens.
    return ws_command(ws_url, access, "auth/long_lived_access_token",
                      client_name=f"ha_pipeline test bed {time.time_ns()}", lifespan=3650)


def _recorder_committed(ha: RealHomeAssistant) -> bool:
    """True once history for the probe entity can be read back from the recorder."""
    info = ha.ws_command("recorder/info")
    if not info.get("recording") or info.get("backlog"):
        return False
    start = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    rows = ha.ws_command("history/history_during_period", start_time=start,
                         entity_ids=[PROBE_ENTITY], significant_changes_only=False)
    return bool(rows.get(PROBE_ENTITY))


def start_real_ha(config_dir: Path, extra_devices: int = 0, extra_entities_per_device: int = 4,
                  timeout: float = 180.0) -> RealHomeAssistant:
    """Start a real HA on 127.0.0.1:<free port> with the test bed config; ready when returned.

    `extra_devices` × `extra_entities_per_device` generated sensors grow the registries
    (about 510 bytes per entity registry entry: ~2,100 entities pass 1 MiB).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    write_config(config_dir, port, extra_devices, extra_entities_per_device)
    started = time.monotonic()
    proc = ServerProcess(
        "home-assistant",
        [str(ha_python()), "-m", "homeassistant", "-c", str(config_dir), "--skip-pip",
         "--log-no-color"],
        config_dir / "testbed-stdout.log", cwd=config_dir)
    try:
        proc.wait_ready(lambda: requests.get(f"{url}/api/onboarding", timeout=2).status_code == 200,
                        timeout, "HTTP answers")
        ha = RealHomeAssistant(url=url, token=_long_lived_token(url), config_dir=config_dir,
                               pid=proc.pid, process=proc)
        remaining = max(10.0, timeout - (time.monotonic() - started))
        proc.wait_ready(lambda: ha.ws_command("get_config")["state"] == "RUNNING",
                        remaining, "get_config state RUNNING")
        proc.wait_ready(lambda: _recorder_committed(ha), remaining, "recorder committed")
    except BaseException:
        proc.stop(timeout=30)
        raise
    ha.startup_seconds = time.monotonic() - started
    message = (f"[testbed] real Home Assistant ready at {url} in {ha.startup_seconds:.1f} s "
               f"(pid {proc.pid}, extra_devices={extra_devices})")
    print(message, file=sys.stderr)
    with open(proc.log_path, "a") as log:
        log.write(message + "\n")
    return ha
