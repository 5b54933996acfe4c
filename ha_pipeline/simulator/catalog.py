"""What the simulated home is made of: integrations, device models, entity kinds, area names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, eq=False)  # identity hash: specs key per-spec caches
class EntitySpec:
    """One entity a device model provides."""

    domain: str
    key: str
    name: str | None  # original_name; None = the device's main feature (named after the device)
    kind: str  # numeric | meter | binary | light | constant
    device_class: str | None = None
    unit: str | None = None
    state_class: str | None = None
    category: str | None = None
    disabled: bool = False  # disabled_by "integration" (noisy diagnostics)
    icon: str | None = None
    # history parameters (see history.Source)
    gen: dict[str, Any] = field(default_factory=dict)


def _temp(cat: str | None = None, name: str = "Temperature") -> EntitySpec:
    return EntitySpec("sensor", "temperature", name, "numeric", "temperature", "°C", "measurement", cat,
                      gen=dict(base=20.5, amp=1.5, step=0.15, decimals=1, lo=-30, hi=50))


HUMIDITY = EntitySpec("sensor", "humidity", "Humidity", "numeric", "humidity", "%", "measurement",
                      gen=dict(base=52, amp=6, step=0.8, decimals=0, lo=0, hi=100))
BATTERY = EntitySpec("sensor", "battery", "Battery", "numeric", "battery", "%", "measurement", "diagnostic",
                     gen=dict(base=78, amp=0, step=0.2, decimals=0, lo=0, hi=100, rate_factor=0.1))
POWER = EntitySpec("sensor", "power", "Power", "numeric", "power", "W", "measurement",
                   gen=dict(base=95, amp=60, step=18, decimals=1, lo=0, hi=3600, rate_factor=3.0))
ENERGY = EntitySpec("sensor", "energy", "Energy", "meter", "energy", "kWh", "total_increasing",
                    gen=dict(daily=1.2))
ILLUMINANCE = EntitySpec("sensor", "illuminance", "Illuminance", "numeric", "illuminance", "lx", "measurement",
                         gen=dict(base=180, amp=160, step=25, decimals=0, lo=0, hi=20000))
RSSI = EntitySpec("sensor", "rssi", "Signal strength", "numeric", "signal_strength", "dBm", "measurement",
                  "diagnostic", disabled=True, gen=dict(base=-62, amp=2, step=1.5, decimals=0, lo=-100, hi=0))
VOLTAGE = EntitySpec("sensor", "voltage", "Voltage", "numeric", "voltage", "V", "measurement", "diagnostic",
                     gen=dict(base=230, amp=2, step=0.6, decimals=1, lo=180, hi=260))
CURRENT = EntitySpec("sensor", "current", "Current", "numeric", "current", "A", "measurement", "diagnostic",
                     gen=dict(base=0.6, amp=0.3, step=0.08, decimals=2, lo=0, hi=16))
MOTION = EntitySpec("binary_sensor", "motion", "Motion", "binary", "motion")
DOOR = EntitySpec("binary_sensor", "contact", "Door", "binary", "door", gen=dict(rate_factor=0.5))
CONNECTIVITY = EntitySpec("binary_sensor", "connectivity", "Status", "binary", "connectivity", category="diagnostic",
                          gen=dict(rate_factor=0.05, inverted=True))
SWITCH = EntitySpec("switch", "switch", None, "binary", "outlet", gen=dict(rate_factor=0.5))
LIGHT = EntitySpec("light", "light", None, "light")
CONNECTED = EntitySpec("sensor", "connected_devices", "Connected devices", "numeric", None, None, "measurement",
                       "diagnostic", icon="mdi:lan", gen=dict(base=24, amp=0, step=0.4, decimals=0, lo=0, hi=500,
                                                              rate_factor=0.2))
PRICE = EntitySpec("sensor", "price", "Electricity price", "numeric", None, "EUR/kWh", "measurement",
                   icon="mdi:currency-eur", gen=dict(base=0.24, amp=0.07, step=0.01, decimals=3, lo=0, hi=2,
                                                    rate_factor=0.25))
OUTDOOR = _temp(name="Outdoor temperature")
EXTRAS = (RSSI, VOLTAGE, CURRENT, _temp("diagnostic", "Internal temperature"))


@dataclass(frozen=True)
class Integration:
    """A config entry domain and how its config entry looks."""

    domain: str
    title: str
    hub: tuple[str, str] | None = None  # (manufacturer, model) of the bridge devices hang off
    supports_options: bool = False


INTEGRATIONS: tuple[Integration, ...] = (
    Integration("hue", "Philips Hue", ("Signify Netherlands B.V.", "BSB002"), True),
    Integration("zha", "SkyConnect", ("Nabu Casa", "SkyConnect v1.0")),
    Integration("shelly", "Shelly", None, True),
    Integration("esphome", "ESPHome", None, True),
    Integration("tplink", "TP-Link Kasa", None),
    Integration("homewizard", "HomeWizard Energy", None),
)


@dataclass(frozen=True)
class DeviceModel:
    """A device a shop sells: who makes it, through which integration, what it exposes."""

    integration: str
    manufacturer: str
    model: str
    label: str  # used in generated device names
    entities: tuple[EntitySpec, ...]
    weight: int = 1


MODELS: tuple[DeviceModel, ...] = (
    DeviceModel("hue", "Signify Netherlands B.V.", "LCA001", "Ceiling Light", (LIGHT, RSSI), 4),
    DeviceModel("hue", "Signify Netherlands B.V.", "SML001", "Motion Sensor", (MOTION, _temp(), ILLUMINANCE, BATTERY), 2),
    DeviceModel("zha", "LUMI", "lumi.weather", "Climate Sensor", (_temp(), HUMIDITY, BATTERY, RSSI), 3),
    DeviceModel("zha", "LUMI", "lumi.sensor_magnet.aq2", "Door Sensor", (DOOR, BATTERY, RSSI), 2),
    DeviceModel("zha", "IKEA of Sweden", "TRADFRI bulb E27 WS", "Lamp", (LIGHT, RSSI), 2),
    DeviceModel("shelly", "Shelly", "Shelly Plug S", "Smart Plug", (SWITCH, POWER, ENERGY, _temp("diagnostic", "Device temperature")), 3),
    DeviceModel("shelly", "Shelly", "Shelly 1PM", "Relay", (SWITCH, POWER, ENERGY, VOLTAGE), 1),
    DeviceModel("esphome", "Espressif", "esp32dev", "Air Monitor", (_temp(), HUMIDITY, ILLUMINANCE, RSSI), 1),
    DeviceModel("tplink", "TP-Link", "KP115(EU)", "Energy Plug", (SWITCH, POWER, ENERGY, CURRENT), 2),
    DeviceModel("homewizard", "HomeWizard", "HWE-P1", "Energy Meter",
                (ENERGY, POWER, EntitySpec("sensor", "energy_export", "Energy export", "meter", "energy", "kWh",
                                           "total_increasing", gen=dict(daily=0.6)), VOLTAGE), 1),
)

SERVICE_MODEL = DeviceModel("homewizard", "HomeWizard", "Energy Prices API", "Energy Prices", (PRICE, OUTDOOR))

AREA_NAMES: tuple[str, ...] = (
    "Living Room", "Kitchen", "Bedroom", "Kids' Room", "Bathroom", 'Office "Den", East', "Hallway",
    "Wohnzimmer Süd", "Garage", "Garden", "Attic", "Basement", "Laundry", "Guest Room", "Café, Downstairs",
    "Dining Room", "Porch", "Study", "Nursery", "Workshop",
)

# user-chosen names: people type anything
ODD_NAMES: tuple[str, ...] = (
    'Mum\'s "favourite" lamp', "Lampe, salon ♥", "Küchen-Sensor (alt)", "Éclairage 'nuit'", "温度计",
)
