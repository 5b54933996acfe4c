"""Compile HA's own long-term statistics for given state rows; runs in the real-HA venv.

Imports only Home Assistant and the standard library. Reads JSON on stdin:
``{"start": epoch_s, "end": epoch_s, "entities": [{"entity_id", "state_class",
"rows": [{"s", "lu", "a"?}, ...]}]}`` (rows in time order, any time) and prints
``{"hours": [{"entity_id", "start", "mean", "min", "max", "sum", "state"}]}``: one item per
entity-hour that HA would store, built exactly as the recorder does it:

* every 5-minute period: the state in force before the period plus the period's rows
  (what ``history.get_full_significant_states_with_session`` hands to ``compile_statistics``),
  then HA's ``_entity_history_to_float_and_state``, ``_normalize_states``,
  ``_time_weighted_average``, and for sums the loop of ``compile_statistics`` driven by HA's
  ``reset_detected`` / ``_last_reset_as_utc_isoformat`` and threaded through the previous
  period's ``state``/``sum``/``last_reset`` as ``get_latest_short_term_statistics`` would;
* every hour: mean = average of the period means, min/max of theirs, sum/state of the last
  period (``recorder.statistics._compile_hourly_statistics``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from datetime import datetime, timezone
from typing import Any

from homeassistant.components.sensor import recorder as sensor_recorder
from homeassistant.components.sensor.const import SensorStateClass
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util

PERIOD = 300
HOUR = 3600


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _state(entity_id: str, row: dict[str, Any]) -> State:
    moment = _dt(row["lu"])
    return State(entity_id, row["s"], row.get("a") or {}, last_changed=moment, last_updated=moment)


def _sum_stat(
    hass: HomeAssistant,
    entity_id: str,
    state_class: str,
    valid_float_states: list[tuple[float, State]],
    last_stat: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The ``sum`` branch of ``compile_statistics`` for one entity and period."""
    last_reset = old_last_reset = None
    new_state = old_state = None
    _sum = 0.0
    if last_stat is not None:
        last_reset = sensor_recorder._timestamp_to_isoformat_or_none(last_stat["last_reset"])
        old_last_reset = last_reset
        new_state = old_state = last_stat.get("state")
        _sum = last_stat.get("sum") or 0.0

    for fstate, state in valid_float_states:
        reset = False
        if (
            state_class != SensorStateClass.TOTAL_INCREASING
            and (
                last_reset := sensor_recorder._last_reset_as_utc_isoformat(
                    state.attributes.get("last_reset"), entity_id
                )
            )
            != old_last_reset
            and last_reset is not None
        ):
            reset = True
        elif old_state is None and last_reset is None:
            reset = True
        elif state_class == SensorStateClass.TOTAL_INCREASING:
            try:
                if old_state is None or sensor_recorder.reset_detected(
                    hass, entity_id, fstate, new_state, state
                ):
                    reset = True
            except HomeAssistantError:
                continue
        if reset:
            if old_state is not None and new_state is not None:
                _sum += new_state - old_state
            new_state = fstate
            old_last_reset = last_reset
            old_state = 0.0 if old_state is not None else new_state
        else:
            new_state = fstate

    if new_state is None or old_state is None:
        return None
    _sum += new_state - old_state
    stat: dict[str, Any] = {"sum": _sum, "state": new_state, "last_reset": None}
    if last_reset is not None:
        stat["last_reset"] = dt_util.parse_datetime(last_reset).timestamp()
    return stat


def _compile_entity(hass: HomeAssistant, start: float, end: float, entity: dict[str, Any]) -> list[dict[str, Any]]:
    entity_id, state_class = entity["entity_id"], entity.get("state_class")
    rows = entity["rows"]
    wants_sum = state_class in (SensorStateClass.TOTAL, SensorStateClass.TOTAL_INCREASING)
    last_stat: dict[str, Any] | None = None
    hours: list[dict[str, Any]] = []
    for hour in range(int(start), int(end), HOUR):
        periods: list[dict[str, Any]] = []
        for p_start in range(hour, hour + HOUR, PERIOD):
            p_end = p_start + PERIOD
            before = [r for r in rows if r["lu"] < p_start]
            inside = [r for r in rows if p_start <= r["lu"] < p_end]
            history = [_state(entity_id, r) for r in before[-1:] + inside]
            fstates = sensor_recorder._entity_history_to_float_and_state(history)
            if not fstates:
                continue
            _unit, fstates = sensor_recorder._normalize_states(hass, {}, fstates, entity_id)
            if not fstates:
                continue
            floats = [f for f, _ in fstates]
            stat: dict[str, Any] = {
                "mean": sensor_recorder._time_weighted_average(fstates, _dt(p_start), _dt(p_end)),
                "min": min(floats),
                "max": max(floats),
            }
            if wants_sum:
                sum_stat = _sum_stat(hass, entity_id, state_class, fstates, last_stat)
                if sum_stat is not None:
                    stat.update(sum_stat)
                    last_stat = sum_stat
            periods.append(stat)
        if not periods:
            continue
        with_sum = [p for p in periods if "sum" in p]
        hours.append(
            {
                "entity_id": entity_id,
                "start": hour,
                "mean": sum(p["mean"] for p in periods) / len(periods),
                "min": min(p["min"] for p in periods),
                "max": max(p["max"] for p in periods),
                "sum": with_sum[-1]["sum"] if with_sum else None,
                "state": with_sum[-1]["state"] if with_sum else None,
            }
        )
    return hours


async def _main(payload: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as config_dir:
        hass = HomeAssistant(config_dir)
        # warn_dip/warn_negative look the entity up in the entity sources.
        hass.data["entity_info"] = {}
        hours: list[dict[str, Any]] = []
        for entity in payload["entities"]:
            hours.extend(_compile_entity(hass, payload["start"], payload["end"], entity))
        return {"hours": hours}


if __name__ == "__main__":
    logging.basicConfig(level=logging.CRITICAL)
    json.dump(asyncio.run(_main(json.load(sys.stdin))), sys.stdout)
