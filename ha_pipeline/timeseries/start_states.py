"""The state in force at an hour's start, which every summary starts from.

HA's own answer comes first: the archive stores HA's start-time state of each entity at each
archived hour (``home_assistant_start_states``, see ``archive.py``), so a sensor that held its
value for days still has a summary row every hour, as HA's statistics do. Where the archive has
none (hours archived by an older version), the last stored event in a lookback stands in, and
failing that the first event's ``previous_state``. HA's start row does not say the last number
before the hour when its state is not a number (``unavailable``): that comes from the lookback.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ha_pipeline.timeseries.events import parse_numbers, parse_unique_numbers
from ha_pipeline.timeseries.rollups import StartState, start_states_from_events


def ha_start_states(frame: pd.DataFrame) -> dict[pd.Timestamp, dict[str, StartState]]:
    """HA's start-time states read back from the archive, per hour start and entity."""
    if frame.empty or "state" not in frame.columns:
        return {}
    numbers = parse_unique_numbers(frame["state"].to_numpy(dtype=object))
    resets = frame["last_reset"] if "last_reset" in frame.columns else pd.Series(None, index=frame.index)
    out: dict[pd.Timestamp, dict[str, StartState]] = {}
    for at, entity, state, number, reset in zip(
        pd.to_datetime(frame["time"], utc=True), frame["entity_id"], frame["state"], numbers, resets
    ):
        if isinstance(entity, str) and isinstance(state, str):
            out.setdefault(at, {})[entity] = {
                "state": state,
                "last_numeric": None if np.isnan(number) else float(number),
                "last_reset": reset if isinstance(reset, str) else None,
            }
    return out


class LastStates:
    """Per-row facts of an event frame, computed once, so the state in force at each hour's
    start is found by binary search over the lookback instead of re-grouping it every hour."""

    def __init__(self, rows: pd.DataFrame) -> None:
        rows = rows.sort_values("time", kind="stable").reset_index(drop=True)
        self._time = rows["time"]
        self._codes, self._ids = pd.factorize(rows["entity_id"])
        self._states = rows["state_value"].to_numpy(dtype=object)
        self._has_state = rows["state_value"].notna().to_numpy() & (self._codes >= 0)
        self._numbers = parse_numbers(rows["state_value"]).to_numpy()
        self._has_number = ~np.isnan(self._numbers) & (self._codes >= 0)
        resets = rows["last_reset"] if "last_reset" in rows.columns else pd.Series(None, index=rows.index, dtype=object)
        self._resets = resets.to_numpy(dtype=object)
        self._has_reset = resets.notna().to_numpy() & (self._codes >= 0)

    def at(self, since: datetime | None = None, until: datetime | None = None) -> dict[str, StartState]:
        """Per entity, its last state, last number and last `last_reset` in [since, until)."""
        lo = 0 if since is None else int(self._time.searchsorted(pd.Timestamp(since), side="left"))
        hi = len(self._time) if until is None else int(self._time.searchsorted(pd.Timestamp(until), side="left"))
        last_state, last_number, last_reset = (
            self._last_index(mask, lo, hi) for mask in (self._has_state, self._has_number, self._has_reset)
        )
        states: dict[str, StartState] = {}
        for code, i in last_state.items():
            j, k = last_number.get(code), last_reset.get(code)
            states[self._ids[code]] = {
                "state": self._states[i],
                "last_numeric": None if j is None else float(self._numbers[j]),
                "last_reset": None if k is None else self._resets[k],
            }
        return states

    def _last_index(self, mask: np.ndarray, lo: int, hi: int) -> dict[int, int]:
        """Entity code -> index of its last row in [lo, hi) where `mask` holds."""
        idx = lo + np.flatnonzero(mask[lo:hi])
        if not len(idx):
            return {}
        newest_first = idx[::-1]
        codes, first = np.unique(self._codes[newest_first], return_index=True)
        return dict(zip(codes.tolist(), newest_first[first].tolist()))


def hour_start_states(
    last: LastStates,
    in_hour: pd.DataFrame,
    start: datetime,
    lookback: timedelta,
    from_ha: Mapping[str, StartState] | None = None,
) -> dict[str, StartState]:
    """The state in force at an hour's start per entity: HA's start-time state (``from_ha``), else
    the last stored event in the lookback, else the first event's ``previous_state``."""
    states = start_states_from_events(in_hour)
    states.update(last.at(start - lookback, start))
    for entity, ha in (from_ha or {}).items():
        known = states.get(entity) or {}
        states[entity] = {
            "state": ha["state"],
            "last_numeric": ha.get("last_numeric") if ha.get("last_numeric") is not None else known.get("last_numeric"),
            "last_reset": ha.get("last_reset") or known.get("last_reset"),
        }
    return states


def start_states(before: pd.DataFrame, in_window: pd.DataFrame) -> dict[str, StartState]:
    """`hour_start_states` over a `before` frame that is exactly the lookback."""
    states = start_states_from_events(in_window)
    if not before.empty:
        states.update(LastStates(before).at())
    return states
