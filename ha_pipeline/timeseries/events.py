"""Normalise Home Assistant history rows into the event point schema (DESIGN.md).

Input is what ``history/history_during_period`` returns with ``include_start_time_state``:
``{entity_id: [{"s": state, "a"?: attributes, "lu": epoch s, "lc"?: epoch s}, ...]}``.

Window edge rules (HA 2024.1 recorder semantics):

* HA puts the state in force at ``start_time`` first, with ``lu`` clamped to ``start_time``
  and ``lc`` its real ``last_changed`` when that differs. That row is context, not an event
  of the window: it gives the first event's ``previous_state`` and the start of its
  ``duration_seconds`` (its ``lc`` when present, else the window start).
* HA's own queries use ``last_updated < start`` for the start state and
  ``last_updated > start`` for window rows, so a row stamped exactly at the window start is
  never returned by a fetch that starts there. The archive therefore fetches from 1 µs before
  the window (``fetched_from``, see ``timeseries/archive.py``): every row HA sends at
  ``fetched_from`` is a start-time row (after an entity-id rename HA sends it twice), every
  other row is an event, and a row stamped exactly at the window start is the window's.
  Without ``fetched_from`` (a fetch that starts at the window), the *first* row of an entity
  at ``lu == window_start`` is taken as the start-time row and any further rows at that
  instant are events.
* An entity whose first row is after the window start had no state before it: its first
  event has no ``previous_state`` and a NaN ``duration_seconds``.

Every later row, attribute-only updates included, is one event, so the event count equals
the rows HA kept.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

# HA 2024.1 homeassistant/helpers/state.py::state_as_number, except that "unknown" is
# absent here (HA returns 0 for it; DESIGN.md says unknown/unavailable carry no value).
ON_STATES: frozenset[str] = frozenset({"on", "locked", "above_horizon", "open", "home"})
OFF_STATES: frozenset[str] = frozenset({"off", "unlocked", "below_horizon", "closed", "not_home"})
UNAVAILABLE = "unavailable"
UNKNOWN = "unknown"
MAX_STATE_LENGTH = 255
_NO_ATTRIBUTES: dict[str, Any] = {}

# The event point schema (DESIGN.md): tags, then fields; one home, imported by writer and readers.
EVENT_TAGS: tuple[str, ...] = (
    "entity_id",
    "domain",
    "device_class",
    "area",
    "device_name",
    "integration",
    "registry_id",
)
EVENT_FIELDS: tuple[str, ...] = (
    "state_value",
    "normalized_value",
    "previous_state",
    "duration_seconds",
    "unit_of_measurement",
)
EVENT_COLUMNS: tuple[str, ...] = ("time", *EVENT_TAGS, *EVENT_FIELDS)
# Not in DESIGN.md's schema but stored too: the `last_reset` attribute, which rollups need to
# detect new cycles of state_class `total` sensors.
EXTRA_COLUMNS: tuple[str, ...] = ("last_reset",)
START_STATE_COLUMNS: tuple[str, ...] = ("time", "entity_id", "domain", "state", "last_reset")



def _parse_finite(text: str) -> float | None:
    """Python float() like HA, but only finite values (InfluxDB and statistics refuse nan/inf)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def state_as_number(state: str | None) -> float | None:
    """HA's ``state_as_number`` on a state string; None when it has no number (incl. unknown)."""
    if not isinstance(state, str):
        return None
    if state in ON_STATES:
        return 1.0
    if state in OFF_STATES:
        return 0.0
    return _parse_finite(state)


def parse_unique_numbers(uniques: np.ndarray) -> np.ndarray:
    """Finite float of each distinct state that Python's float() accepts (HA statistics' rule).

    The pandas parser does the bulk; Python's float() only the leftovers it refuses
    (``"1_000"``, non-ASCII digits), which are few distinct strings.
    """
    uniq = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    values = pd.to_numeric(uniq, errors="coerce").astype("float64").to_numpy(copy=True)
    values[~np.isfinite(values)] = np.nan
    for i in np.flatnonzero(np.isnan(values)):
        parsed = _parse_finite(uniq.iat[i]) if isinstance(uniq.iat[i], str) else None
        if parsed is not None:
            values[i] = parsed
    return values


def parse_numbers(states: pd.Series) -> pd.Series:
    """Finite float of each state that Python's float() accepts, else NaN (see above).

    Works on the unique strings only: sensors repeat their values.
    """
    codes, uniques = pd.factorize(states, use_na_sentinel=True)
    if len(uniques) == 0:
        return pd.Series(np.full(len(states), np.nan), index=states.index)
    values = parse_unique_numbers(np.asarray(uniques, dtype=object))
    out = np.where(codes >= 0, values[np.maximum(codes, 0)], np.nan)
    return pd.Series(out, index=states.index, dtype="float64")


def states_as_numbers(states: pd.Series) -> pd.Series:
    """Vectorised :func:`state_as_number` over a Series of state strings (NaN for None)."""
    codes, uniques = pd.factorize(states, use_na_sentinel=True)
    uniques = np.asarray(uniques, dtype=object)
    values = np.r_[parse_unique_numbers(uniques), np.nan]  # code -1 (missing) -> NaN
    values[:-1][np.isin(uniques, list(ON_STATES))] = 1.0
    values[:-1][np.isin(uniques, list(OFF_STATES))] = 0.0
    return pd.Series(values[codes], index=states.index, dtype="float64")


def _to_epoch(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds as float64 (NaN where invalid) plus a mask of values that were missing."""
    if set(map(type, values)) <= {float, int, type(None)}:
        # HA sends floats: let numpy convert in C (None -> NaN).
        epoch = np.array(values, dtype=np.float64)
        missing = np.isnan(epoch)
        epoch[~np.isfinite(epoch)] = np.nan
        return epoch, missing
    missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    # Only real numbers are timestamps: a bool or a numeric string is garbage, not a time.
    numeric = np.fromiter((type(v) in (float, int) for v in values), dtype=bool, count=len(values))
    epoch = np.full(len(values), np.nan)
    epoch[numeric] = np.array([v for v, ok in zip(values, numeric) if ok], dtype=np.float64)
    epoch[~np.isfinite(epoch)] = np.nan
    return epoch, missing


def _objects(values: np.ndarray) -> pd.Series:
    """An object-dtype column (None stays None)."""
    return pd.Series(values, dtype=object, copy=False)


def _pluck(items: list[dict[str, Any]], key: str) -> list[Any]:
    """``[item.get(key) for item in items]`` without a Python-level loop (C map over dict.get)."""
    return list(map(dict.get, items, itertools.repeat(key)))


def _attribute(attrs: list[dict[str, Any]], has_attrs: np.ndarray, key: str) -> pd.Series:
    """Per-row string attribute: "" where absent, None where the row had no attributes at all
    (those rows inherit the entity's previous value)."""
    values = pd.Series(_pluck(attrs, key), dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        is_str = values.notna().to_numpy()
    else:
        is_str = (values.map(type) == str).to_numpy()
    return values.where(is_str, "").where(has_attrs, None)


def _as_utc_epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def empty_events() -> pd.DataFrame:
    """An event frame with no rows and the right columns."""
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS + EXTRA_COLUMNS})
    frame["time"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["normalized_value"] = pd.Series(dtype="float64")
    frame["duration_seconds"] = pd.Series(dtype="float64")
    return frame


def history_to_events(
    history: Mapping[str, Sequence[Mapping[str, Any]]],
    window_start: datetime,
    window_end: datetime,
    tags_by_entity: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    fetched_from: datetime | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Events of ``[window_start, window_end)`` from HA history rows, plus rejected rows by reason.

    Tags come from ``tags_by_entity`` (the SQL inventory); ``device_class`` and
    ``unit_of_measurement`` fall back to the row's attributes (inherited by rows that carry
    none, as with ``minimal_response``).
    """
    tags_by_entity = tags_by_entity or {}
    rejects: Counter[str] = Counter()
    start_s = _as_utc_epoch(window_start)
    end_s = _as_utc_epoch(window_end)
    from_s = start_s if fetched_from is None else _as_utc_epoch(fetched_from)

    entity_ids = list(history.keys())
    lengths = np.fromiter((len(v) for v in history.values()), dtype=np.int64, count=len(entity_ids))
    rows = list(itertools.chain.from_iterable(history.values()))
    if not rows:
        return empty_events(), dict(rejects)
    entity_code = np.repeat(np.arange(len(entity_ids)), lengths)
    if set(map(type, rows)) == {dict}:
        is_dict = np.ones(len(rows), dtype=bool)
    else:
        is_dict = np.fromiter((isinstance(r, dict) for r in rows), dtype=bool, count=len(rows))
        rejects["malformed_row"] += int((~is_dict).sum())
        rows = [r if ok else {} for r, ok in zip(rows, is_dict)]

    states = _pluck(rows, "s")
    lu, lu_missing = _to_epoch(_pluck(rows, "lu"))
    # Only the start-time row's last_changed is used, and that row is always an entity's first.
    first_rows = np.cumsum(lengths) - lengths
    lc = np.full(len(rows), np.nan)
    lc[first_rows[lengths > 0]] = _to_epoch(_pluck([rows[i] for i in first_rows[lengths > 0]], "lc"))[0]
    attrs = _pluck(rows, "a")
    if set(map(type, attrs)) <= {dict}:
        has_attrs = np.ones(len(rows), dtype=bool)
    else:
        has_attrs = np.fromiter((type(a) is dict for a in attrs), dtype=bool, count=len(attrs))
        attrs = [a if ok else _NO_ATTRIBUTES for a, ok in zip(attrs, has_attrs)]

    state_s = pd.Series(states, dtype=object)
    if set(map(type, states)) == {str}:
        is_str = np.ones(len(states), dtype=bool)
    else:
        is_str = np.fromiter((isinstance(v, str) for v in states), dtype=bool, count=len(states))
    state_missing = state_s.isna().to_numpy()
    lengths_ok = np.ones(len(states), dtype=bool)
    if is_str.all():
        lengths_ok = np.fromiter(map(len, states), dtype=np.int64, count=len(states)) <= MAX_STATE_LENGTH
    else:
        lengths_ok[is_str] = [len(v) <= MAX_STATE_LENGTH for v, ok in zip(states, is_str) if ok]

    # Position of each row inside its entity's list, to find the start-time row (always first).
    pos = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    if fetched_from is None:
        is_start_row = (pos == 0) & (lu == start_s) & is_dict
    else:
        # HA sets the start-time row's lu to the fetch start; real rows are whole microseconds after it.
        is_start_row = (np.abs(lu - from_s) < 5e-7) & is_dict

    reasons = [
        ("malformed_row", ~is_dict),
        ("missing_lu", is_dict & lu_missing),
        ("invalid_lu", is_dict & ~lu_missing & np.isnan(lu)),
        ("outside_window", ~np.isnan(lu) & ~is_start_row & ((lu < start_s) | (lu >= end_s))),
        ("missing_state", is_dict & state_missing),
        ("non_string_state", ~state_missing & ~is_str),
        ("state_too_long", is_str & ~lengths_ok),
    ]
    bad = np.zeros(len(rows), dtype=bool)
    for reason, mask in reasons:
        mask = mask & ~bad
        if reason != "malformed_row":
            rejects[reason] += int(mask.sum())
        bad |= mask

    # Rows in entity order, start row first, then by time (HA already sends them so; sorting
    # is only paid for when they are not).
    idx = np.flatnonzero(~bad)
    code, t = entity_code[idx], lu[idx]
    ordered = np.all((code[1:] > code[:-1]) | ((code[1:] == code[:-1]) & (t[1:] >= t[:-1])))
    if not ordered:
        order = np.lexsort((t, ~is_start_row[idx], code))
        idx, code, t = idx[order], code[order], t[order]
    start_rows = is_start_row[idx]
    state_arr = state_s.to_numpy(dtype=object)[idx]

    first_of_entity = np.r_[True, code[1:] != code[:-1]]
    prev_state = np.r_[np.array([None], dtype=object), state_arr[:-1]]
    prev_lu = np.r_[np.nan, t[:-1]]
    # For the first event the previous state began at the start row's real last_changed.
    start_lc = np.r_[np.nan, lc[idx][:-1]]
    prev_is_start = np.r_[False, start_rows[:-1]]
    began = np.where(prev_is_start & ~np.isnan(start_lc), start_lc, prev_lu)
    # A start-time row without its real last_changed counts from the window start, not the fetch start.
    began = np.where(prev_is_start & np.isnan(start_lc), np.maximum(began, start_s), began)
    prev_state[first_of_entity] = None
    began[first_of_entity] = np.nan

    rejects_out = {k: v for k, v in rejects.items() if v}
    is_event = ~start_rows
    if not is_event.any():
        return empty_events(), rejects_out
    ev_code, ev_t = code[is_event], t[is_event]
    # HA stamps rows in whole microseconds; float seconds carry ~0.1 µs of error, so round
    # (truncating would store many rows 1 µs early).
    ev_us = np.round(ev_t * 1e6).astype(np.int64)
    # Two rows of one entity at the same instant are one point in InfluxDB (the later write
    # wins): keep HA's later row and count the earlier, instead of a count that can never match.
    superseded = np.r_[(ev_code[:-1] == ev_code[1:]) & (ev_us[:-1] == ev_us[1:]), False]
    attrs_arr = np.empty(len(attrs), dtype=object)
    attrs_arr[:] = attrs

    def tag(key: str) -> np.ndarray:
        per_entity = [(tags_by_entity.get(e) or {}).get(key) or None for e in entity_ids]
        return np.asarray(per_entity, dtype=object)

    def from_attributes(key: str, entities: np.ndarray) -> np.ndarray:
        """The attribute per event for the given entities (None elsewhere); rows without
        attributes inherit the entity's previous value."""
        rows_needed = entities[code]
        out = np.full(len(ev_code), None, dtype=object)
        if not rows_needed.any():
            return out
        sub = idx[rows_needed]
        values = _attribute(attrs_arr[sub], has_attrs[sub], key)
        if not has_attrs[sub].all():
            values = values.groupby(code[rows_needed]).ffill()
        full = np.full(len(idx), None, dtype=object)
        full[rows_needed] = values.replace("", None).to_numpy(dtype=object)
        return full[is_event]

    device_class, unit = tag("device_class"), tag("unit_of_measurement")
    ev_device_class = np.where(
        pd.isna(device_class[ev_code]), from_attributes("device_class", pd.isna(device_class)), device_class[ev_code]
    )
    ev_unit = np.where(pd.isna(unit[ev_code]), from_attributes("unit_of_measurement", pd.isna(unit)), unit[ev_code])
    # last_reset matters to state_class total only; unknown entities are looked at too.
    state_class = tag("state_class")
    wants_reset = pd.isna(state_class) | (state_class == "total")

    ids = np.asarray(entity_ids, dtype=object)
    domains = np.asarray([e.split(".", 1)[0] if isinstance(e, str) else None for e in entity_ids], dtype=object)
    ev_state = pd.Series(state_arr[is_event], dtype=object)
    # Object columns on purpose: inferring pandas' string dtype costs a pass per column.
    out = pd.DataFrame(
        {
            "time": pd.to_datetime(ev_us, unit="us", utc=True),
            "entity_id": _objects(ids[ev_code]),
            "domain": _objects(domains[ev_code]),
            "device_class": _objects(ev_device_class),
            "area": _objects(tag("area")[ev_code]),
            "device_name": _objects(tag("device_name")[ev_code]),
            "integration": _objects(tag("integration")[ev_code]),
            "registry_id": _objects(tag("registry_id")[ev_code]),
            "state_value": _objects(ev_state.to_numpy()),
            "normalized_value": states_as_numbers(ev_state).to_numpy(),
            "previous_state": _objects(prev_state[is_event]),
            "duration_seconds": ev_t - began[is_event],
            "unit_of_measurement": _objects(ev_unit),
            "last_reset": _objects(from_attributes("last_reset", wants_reset)),
        }
    )
    if superseded.any():
        out = out[~superseded].reset_index(drop=True)
        rejects_out["duplicate_time"] = int(superseded.sum())
    return out, rejects_out


def start_states_from_history(
    history: Mapping[str, Sequence[Mapping[str, Any]]], fetched_from: datetime, window_start: datetime
) -> pd.DataFrame:
    """HA's start-time state of each entity (its row at ``fetched_from``), stamped at ``window_start``.

    Columns ``START_STATE_COLUMNS``; ``last_reset`` from the row's attributes when it has them.
    Entities HA holds nothing before the window for have no row.
    """
    from_s = _as_utc_epoch(fetched_from)
    entity_ids, states, resets = [], [], []
    for entity_id, rows in history.items():
        first = rows[0] if rows else None
        if not isinstance(first, dict) or not isinstance(first.get("s"), str):
            continue
        lu = first.get("lu")
        if type(lu) not in (float, int) or abs(lu - from_s) >= 5e-7 or len(first["s"]) > MAX_STATE_LENGTH:
            continue
        attrs = first.get("a")
        reset = attrs.get("last_reset") if isinstance(attrs, dict) else None
        entity_ids.append(entity_id)
        states.append(first["s"])
        resets.append(reset if isinstance(reset, str) else None)
    stamp = pd.Timestamp(window_start)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return pd.DataFrame(
        {
            "time": pd.Series([stamp] * len(entity_ids), dtype="datetime64[ns, UTC]"),
            "entity_id": pd.Series(entity_ids, dtype=object),
            "domain": pd.Series([e.split(".", 1)[0] for e in entity_ids], dtype=object),
            "state": pd.Series(states, dtype=object),
            "last_reset": pd.Series(resets, dtype=object),
        }
    )
