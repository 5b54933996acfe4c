"""Entity include/exclude filters follow HA's influxdb integration precedence."""

import os
import subprocess
import sys

from ha_pipeline.defs.assets.history import EntityFilter


def test_no_filter_accepts_everything():
    assert EntityFilter().accepts("sensor.anything")


def test_include_domains_is_an_allow_list():
    f = EntityFilter(include_domains=["sensor"])
    assert f.accepts("sensor.power")
    assert not f.accepts("light.kitchen")


def test_excludes_only_is_a_deny_list():
    f = EntityFilter(exclude_domains=["automation"], exclude_entity_globs=["sensor.*_rssi"])
    assert f.accepts("sensor.power")
    assert not f.accepts("automation.morning")
    assert not f.accepts("sensor.plug_rssi")


def test_glob_include_beats_domain_exclude_and_entity_beats_glob():
    f = EntityFilter(
        include_entity_globs=["sensor.energy_*"],
        exclude_domains=["sensor"],
        exclude_entities=["sensor.energy_debug"],
    )
    assert f.accepts("sensor.energy_total")
    assert not f.accepts("sensor.energy_debug")
    assert not f.accepts("sensor.temperature")


def test_filters_default_from_the_environment_so_scheduled_runs_use_them():
    # Defaults are read when the code location loads, so load it in a fresh interpreter.
    code = (
        "from ha_pipeline.defs.assets.history import EntityFilter as F; f = F(); "
        "print(f.exclude_domains, f.include_entity_globs, f.accepts('light.hall'), "
        "f.accepts('sensor.energy_total'), f.accepts('sensor.other'))"
    )
    env = {**os.environ, "HA_PIPELINE_EXCLUDE_DOMAINS": "light, automation",
           "HA_PIPELINE_INCLUDE_ENTITY_GLOBS": "sensor.energy_*"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == "['light', 'automation'] ['sensor.energy_*'] False True False"
