"""The test bed home: areas, devices and entities the integration creates.

Fixed and small on purpose so tests can assert exact names; `extra_devices` in YAML adds
N generated devices (each with `extra_entities_per_device` sensors) to grow the
registries, e.g. past the 1 MiB WebSocket frame size.
"""

from __future__ import annotations

DOMAIN = "ha_pipeline_testbed"
PLATFORMS = ["sensor", "binary_sensor", "switch", "light"]

AREAS = ["Living Room", "Kitchen", "Bedroom", "Hallway", "Garage"]

# key -> device attributes; "via" names the parent device key.
DEVICES: dict[str, dict] = {
    "hub": {"name": "Testbed Hub", "manufacturer": "Acme Home", "model": "Hub H1",
            "sw_version": "3.2.1", "hw_version": "rev2", "area": "Hallway",
            "serial_number": "ACME-0001"},
    "climate_living": {"name": "Living Room Climate", "manufacturer": "Aqara",
                       "model": "WSDCGQ11LM", "sw_version": "1.0.3", "area": "Living Room",
                       "via": "hub"},
    "plug_kitchen": {"name": "Kitchen Smart Plug", "manufacturer": "TP-Link", "model": "HS110",
                     "sw_version": "1.5.6", "area": "Kitchen"},
    "light_bedroom": {"name": "Bedroom Ceiling Light", "manufacturer": "Philips",
                      "model": "LCT015", "sw_version": "1.88.1", "area": "Bedroom", "via": "hub"},
    "motion_hallway": {"name": "Hallway Motion", "manufacturer": "Philips", "model": "SML001",
                       "sw_version": "6.1.1", "area": "Hallway", "via": "hub"},
    "door_front": {"name": "Front Door", "manufacturer": "Aqara", "model": "MCCGQ11LM",
                   "area": "Hallway", "via": "hub"},
    "meter_main": {"name": "Main Energy Meter", "manufacturer": "Shelly", "model": "3EM",
                   "sw_version": "20230913", "area": "Garage"},
}

# (device key, entity key, name, device_class, unit, state_class, initial value, diagnostic)
SENSORS: list[tuple[str, str, str, str | None, str | None, str | None, float, bool]] = [
    ("climate_living", "temperature", "Temperature", "temperature", "°C", "measurement", 21.5, False),
    ("climate_living", "humidity", "Humidity", "humidity", "%", "measurement", 45.0, False),
    ("climate_living", "battery", "Battery", "battery", "%", "measurement", 87.0, True),
    ("plug_kitchen", "power", "Power", "power", "W", "measurement", 120.4, False),
    ("plug_kitchen", "energy", "Energy", "energy", "kWh", "total_increasing", 12.75, False),
    ("motion_hallway", "illuminance", "Illuminance", "illuminance", "lx", "measurement", 230.0, False),
    ("meter_main", "energy", "Energy", "energy", "kWh", "total_increasing", 1234.5, False),
    ("meter_main", "power", "Power", "power", "W", "measurement", 815.0, False),
    ("hub", "uptime", "Uptime", "duration", "s", "total_increasing", 3600.0, True),
]

# (device key, entity key, name, device_class, initially on)
BINARY_SENSORS: list[tuple[str, str, str, str, bool]] = [
    ("motion_hallway", "motion", "Motion", "motion", False),
    ("door_front", "contact", "Door", "door", False),
    ("hub", "connectivity", "Cloud", "connectivity", True),
]

SWITCHES: list[tuple[str, str, str]] = [("plug_kitchen", "relay", "Relay")]
# A name of None makes the light take its device's name (light.bedroom_ceiling_light).
LIGHTS: list[tuple[str, str, str | None]] = [("light_bedroom", "light", None)]

# Generated devices cycle through these sensor kinds.
EXTRA_SENSOR_KINDS: list[tuple[str, str, str, str]] = [
    ("temperature", "temperature", "°C", "measurement"),
    ("humidity", "humidity", "%", "measurement"),
    ("power", "power", "W", "measurement"),
    ("energy", "energy", "kWh", "total_increasing"),
    ("voltage", "voltage", "V", "measurement"),
    ("battery", "battery", "%", "measurement"),
]


def extra_device_key(index: int) -> str:
    """Device key of the index-th generated device."""
    return f"extra_{index:05d}"
