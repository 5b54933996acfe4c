"""HA's entity-id rule: our copy answers as HA 2024.1's own ``valid_entity_id`` does."""

from __future__ import annotations

import json
import subprocess

from ha_pipeline.entity_id import all_valid_entity_ids, valid_entity_id
from ha_pipeline_tests.testbed.homeassistant import ha_python

CANDIDATES = [
    "sensor.x", "sensor.kitchen_temperature", "light.a1", "a.b", "sensor.x\n", "sensor.x\n\n", "\nsensor.x",
    "sensor.x\r", "sensor.x \n", "sensor._x", "sensor.x_", "_sensor.x", "sensor_.x", "sensor.x__y", "sen__sor.x",
    "sensor.x_\n", "sensor.x__y\n", "sensor.x\ny", "sensor.x\n_", "Sensor.x", "sensor.X", "sensor", "sensor.",
    ".x", "sensor.x.y", "sensor.x y", "sensor.x-y", "sensor.é", "sensor.\u0663", "sensor.x\u0663\n", "", "\n",
    "sensor.x\x00", "sensor.x\t", "1.2", "sensor.x\u2028",
]


def _ha_answers(ids: list[str]) -> list[bool]:
    """What Home Assistant itself says of each id (its venv, its code)."""
    script = (
        "import json, sys\n"
        "from homeassistant.core import valid_entity_id\n"
        "print(json.dumps([valid_entity_id(i) for i in json.load(sys.stdin)]))\n"
    )
    out = subprocess.run(
        [str(ha_python()), "-c", script], input=json.dumps(ids), capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout)


def test_the_rule_is_home_assistants_own() -> None:
    ha = _ha_answers(CANDIDATES)
    assert ha[CANDIDATES.index("sensor.x\n")] is True, "HA accepts one trailing newline"
    assert [valid_entity_id(i) for i in CANDIDATES] == ha
    for i, ok in zip(CANDIDATES, ha):
        assert all_valid_entity_ids(["sensor.a", i, "light.b"]) is ok, repr(i)
    assert all_valid_entity_ids([c for c, ok in zip(CANDIDATES, ha) if ok])
    assert all_valid_entity_ids([])
