"""The real servers of the test bed start, answer, and hold what we put in them."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
import sqlalchemy as sa
from websockets.sync.client import connect

from ha_pipeline_tests.testbed.homeassistant import RealHomeAssistant
from ha_pipeline_tests.testbed.influxdb import InfluxServer
from ha_pipeline_tests.testbed.servers import HAServer, RunningSimulator


def test_influxdb_writes_and_reads_a_point(influxdb_server: InfluxServer) -> None:
    assert influxdb_server.version.startswith("1.")
    assert influxdb_server.url.startswith("http://127.0.0.1:")
    influxdb_server.query("CREATE DATABASE testbed")
    resp = requests.post(f"{influxdb_server.url}/write", params={"db": "testbed", "precision": "s"},
                         data="probe,entity_id=sensor.x value=42.5 1700000000", timeout=10)
    assert resp.status_code == 204, resp.text
    body = influxdb_server.query("SELECT value, entity_id FROM probe", db="testbed")
    series = body["results"][0]["series"][0]
    assert series["values"] == [["2023-11-14T22:13:20Z", 42.5, "sensor.x"]]
    assert influxdb_server.data_dir.is_dir()
    os.kill(influxdb_server.pid, 0)  # the pid we hold is the live server


def _listening_addresses(pid: int) -> list[str]:
    """Local addresses of the TCP sockets in LISTEN state that `pid` holds (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                found.append(cols[1])
    return found


def test_influxdb_listens_on_loopback_only(influxdb_server: InfluxServer) -> None:
    addresses = _listening_addresses(influxdb_server.pid)
    # HTTP API and the RPC (backup/restore) service; 0100007F is 127.0.0.1 in /proc's hex.
    assert len(addresses) == 2, addresses
    assert all(a.startswith("0100007F:") for a in addresses), addresses


def test_influxdb_with_auth_rejects_wrong_credentials(influxdb_auth_server: InfluxServer) -> None:
    url = f"{influxdb_auth_server.url}/query"
    wrong = requests.get(url, params={"q": "SHOW DATABASES"}, auth=("admin", "wrong"), timeout=10)
    assert wrong.status_code == 401 and "authorization failed" in wrong.text
    anonymous = requests.get(url, params={"q": "SHOW DATABASES"}, timeout=10)
    assert anonymous.status_code == 401
    body = influxdb_auth_server.query("SHOW DATABASES", method="GET")
    assert "results" in body


def test_postgres_answers_select_1(postgres_url: str) -> None:
    assert "@127.0.0.1:" in postgres_url
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar() == 1
            assert conn.execute(sa.text("show listen_addresses")).scalar() == "127.0.0.1"
    finally:
        engine.dispose()


def test_real_ha_is_running_2024_1_6(real_ha: RealHomeAssistant) -> None:
    config = real_ha.ws_command("get_config")
    assert config["state"] == "RUNNING"
    assert config["version"] == "2024.1.6"
    assert {"recorder", "history", "websocket_api", "ha_pipeline_testbed"} <= set(config["components"])
    os.kill(real_ha.pid, 0)


def test_real_ha_has_devices_in_areas(real_ha: RealHomeAssistant) -> None:
    areas = {a["area_id"]: a["name"] for a in real_ha.ws_command("config/area_registry/list")}
    devices = real_ha.ws_command("config/device_registry/list")
    ours = {d["name"]: d for d in devices if d["manufacturer"] and "Testbed" not in (d["name"] or "")}
    assert {"Kitchen Smart Plug", "Main Energy Meter", "Bedroom Ceiling Light"} <= set(ours)
    assert all(d["area_id"] in areas for d in ours.values())
    hub = next(d for d in devices if d["name"] == "Testbed Hub")
    assert areas[hub["area_id"]] == "Hallway"
    assert ours["Bedroom Ceiling Light"]["via_device_id"] == hub["id"]
    assert ours["Kitchen Smart Plug"]["manufacturer"] == "TP-Link"
    entries = real_ha.ws_command("config_entries/get", domain="ha_pipeline_testbed")
    assert [e["state"] for e in entries] == ["loaded"]


def test_real_ha_energy_sensor_is_total_increasing(real_ha: RealHomeAssistant) -> None:
    entity_id = "sensor.main_energy_meter_energy"
    got = real_ha.ws_command("config/entity_registry/get_entries", entity_ids=[entity_id])
    assert got[entity_id]["original_device_class"] == "energy"
    state = next(s for s in real_ha.ws_command("get_states") if s["entity_id"] == entity_id)
    assert state["attributes"]["state_class"] == "total_increasing"
    assert state["attributes"]["unit_of_measurement"] == "kWh"


def test_real_ha_records_a_set_state_in_history(real_ha: RealHomeAssistant) -> None:
    entity_id = "sensor.living_room_climate_temperature"
    start = datetime.now(timezone.utc) - timedelta(seconds=5)
    real_ha.set_state(entity_id, "23.25", {"unit_of_measurement": "°C", "device_class": "temperature"})
    deadline = time.monotonic() + 20
    states: list[str] = []
    while time.monotonic() < deadline and "23.25" not in states:
        time.sleep(0.5)  # the recorder commits every second in the test bed config
        rows = real_ha.ws_command("history/history_during_period", start_time=start.isoformat(),
                                  entity_ids=[entity_id], significant_changes_only=False)
        states = [row["s"] for row in rows.get(entity_id, [])]
    assert "23.25" in states


def test_real_ha_call_service_toggles_the_switch(real_ha: RealHomeAssistant) -> None:
    entity_id = "switch.kitchen_smart_plug_relay"
    real_ha.call_service("switch", "turn_on", target={"entity_id": entity_id})
    state = next(s for s in real_ha.ws_command("get_states") if s["entity_id"] == entity_id)
    assert state["state"] == "on"
    real_ha.call_service("switch", "turn_off", target={"entity_id": entity_id})
    state = next(s for s in real_ha.ws_command("get_states") if s["entity_id"] == entity_id)
    assert state["state"] == "off"


def test_real_ha_large_registry_passes_one_mebibyte(real_ha_large: RealHomeAssistant) -> None:
    # Measure the raw frame, as a client with websockets' default 1 MiB cap would receive it.
    with connect(real_ha_large.ws_url, max_size=None) as ws:
        ws.recv(10)
        ws.send(json.dumps({"type": "auth", "access_token": real_ha_large.token}))
        assert json.loads(ws.recv(10))["type"] == "auth_ok"
        ws.send(json.dumps({"id": 1, "type": "config/entity_registry/list"}))
        frame = ws.recv(60)
    assert len(frame.encode() if isinstance(frame, str) else frame) > 1024 * 1024
    assert len(json.loads(frame)["result"]) > 2000


def test_simulator_answers_like_ha(simulator: RunningSimulator) -> None:
    config = simulator.ws_command("get_config")
    assert config["state"] == "RUNNING"
    devices = simulator.ws_command("config/device_registry/list")
    assert devices and len(devices) == len(simulator.home.devices)


def test_ha_server_set_state_is_visible_in_get_states(ha_server: HAServer) -> None:
    entity_id = "sensor.testbed_probe"  # its own entity: the servers are shared by the session
    ha_server.set_state(entity_id, "7.5", {"unit_of_measurement": "W"})
    state = next(s for s in ha_server.backend.ws_command("get_states") if s["entity_id"] == entity_id)
    assert (state["state"], state["attributes"]["unit_of_measurement"]) == ("7.5", "W")


def test_install_ha_covers_every_integration_the_config_loads() -> None:
    # HA runs with --skip-pip: an integration missing from install_ha.sh's DOMAINS would
    # start without its requirements and fail only at runtime.
    root = Path(__file__).resolve().parents[2]
    config = (root / "ha_pipeline_tests/testbed/ha_config/configuration.yaml").read_text()
    loaded = set(re.findall(r"^([a-z_]+):", config, flags=re.M)) - {"homeassistant"}
    script = (root / "scripts/install_ha.sh").read_text()
    domains = set(re.search(r"DOMAINS=\(([^)]*)\)", script).group(1).split())
    assert loaded and loaded <= domains, sorted(loaded - domains)
