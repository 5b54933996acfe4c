"""Hourly summaries, and their daily and monthly reduction, with the meaning of Home Assistant's long-term statistics.

HA 2024.1 (``components/sensor/recorder.py`` and ``recorder/statistics.py``) compiles a
statistic every 5 minutes and an hourly one from those. Its rules, which this module follows:

* Only states that parse as finite floats count; other rows (``unavailable``, ``on``) are
  dropped, so inside a 5-minute period the last number holds through a gap.
* Each 5-minute period starts from the state in force at its start. If that state is not a
  number, the period starts at its first numeric row; a period with no number has no statistic.
* Period mean is time-weighted; period min/max run over its numeric rows *including* the
  state in force at its start. Hourly mean = plain average of the period means present;
  hourly min/max = min/max of the period ones.
* ``sum`` (state_class total / total_increasing) chains every numeric row: an increase adds
  ``value - previous``; a new cycle adds the new value from zero. total_increasing: a reading
  below 90 % of the previous one is a new cycle and negative readings are skipped; total: a
  change of the ``last_reset`` attribute is a new cycle. The first number ever is the zero point.

Beyond HA: ``last``, ``count`` (rows in the window), ``unavailable_seconds``, ``on_seconds``
(entities with on/off-like states) and ``covered_seconds`` (time carried by the period means). Fields that do not apply are NaN, meaning "not written".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from ha_pipeline.timeseries.calendar import Period, period_start
from ha_pipeline.timeseries.events import OFF_STATES, ON_STATES, UNAVAILABLE, parse_unique_numbers

PERIOD_SECONDS = 300
# Meter reset threshold of HA's reset_detected (total_increasing).
RESET_RATIO = 0.9
TOTAL = "total"
TOTAL_INCREASING = "total_increasing"

TAG_COLUMNS: tuple[str, ...] = (
    "entity_id",
    "domain",
    "device_class",
    "area",
    "device_name",
    "integration",
    "unit_of_measurement",
)
FIELD_COLUMNS: tuple[str, ...] = (
    "mean",
    "min",
    "max",
    "last",
    "count",
    "unavailable_seconds",
    "on_seconds",
    "sum_increase",
    "covered_seconds",
)
SUMMARY_COLUMNS: tuple[str, ...] = ("time",) + TAG_COLUMNS + FIELD_COLUMNS


class StartState(TypedDict, total=False):
    """State in force at the window start.

    ``last_numeric`` is the last number before the window (HA's stored ``state``), needed for
    the sum when the start state is not a number (e.g. ``unavailable``); ``last_reset`` is the
    attribute in force (state_class total).
    """

    state: str | None
    last_numeric: float | None
    last_reset: str | None


def _utc(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize(timezone.utc) if stamp.tzinfo is None else stamp.tz_convert(timezone.utc)


def _normalise_last_reset(values: pd.Series) -> pd.Series:
    """last_reset as comparable UTC instants (HA compares them as UTC ISO strings); invalid -> NaN."""
    parsed = pd.to_datetime(values.astype(object), utc=True, errors="coerce", format="ISO8601")
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().astype("float64")


def start_states_from_events(events: pd.DataFrame) -> dict[str, StartState]:
    """Start states implied by each entity's first event (its ``previous_state``).

    Entities without an event in the window need a lookback read instead.
    """
    if events.empty:
        return {}
    codes, uniques = pd.factorize(events["entity_id"])
    t = (pd.to_datetime(events["time"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
    first, _ = _first_last(codes, t)
    previous = events["previous_state"].to_numpy(dtype=object)[first]
    return {e: {"state": p} for e, p in zip(uniques, previous) if isinstance(p, str)}


def _first_last(codes: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index of the earliest and latest row per code (codes 0..n-1, all present)."""
    order = np.lexsort((t, codes))
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    ends = np.r_[starts[1:], len(order)] - 1
    return order[starts], order[ends]


def _group_end(keys: np.ndarray) -> np.ndarray:
    """True where the next row belongs to another group (keys sorted)."""
    return np.r_[keys[1:] != keys[:-1], True]


def _ffill_within(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs of a float array inside runs of equal (sorted) keys."""
    n = len(values)
    idx = np.arange(n)
    group_first = np.maximum.accumulate(np.where(np.r_[True, keys[1:] != keys[:-1]], idx, 0))
    last_valid = np.maximum.accumulate(np.where(~np.isnan(values), idx, -1))
    ok = last_valid >= group_first
    return np.where(ok, values[np.maximum(last_valid, 0)], np.nan)


def _sum_increase(
    code: np.ndarray,
    x: np.ndarray,
    last_reset: np.ndarray,
    state_class: np.ndarray,
    n_entities: int,
) -> np.ndarray:
    """Increase of HA's ``sum`` per entity over its numeric rows (seed row first, then events)."""
    is_inc = state_class[code] == TOTAL_INCREASING
    is_total = state_class[code] == TOTAL
    # HA skips negative total_increasing readings entirely (they do not move `state`).
    use = ~np.isnan(x) & (is_total | (is_inc & (x >= 0)))
    c, v, lr, inc = code[use], x[use], last_reset[use], is_inc[use]
    same = np.r_[False, c[1:] == c[:-1]]
    prev = np.where(same, np.r_[np.nan, v[:-1]], np.nan)
    # A new cycle of `total` is a last_reset different from the last one seen (None never is).
    lr_seen = _ffill_within(lr, c)
    prev_lr = np.where(same, np.r_[np.nan, lr_seen[:-1]], np.nan)
    new_cycle = np.where(
        inc,
        v < RESET_RATIO * prev,
        ~np.isnan(lr) & ((lr != prev_lr) | np.isnan(prev_lr)),
    )
    step = np.where(np.isnan(prev), 0.0, np.where(new_cycle, v, v - prev))
    out = np.bincount(c, weights=step, minlength=n_entities)
    has_value = np.bincount(c, minlength=n_entities) > 0
    wanted = np.isin(state_class, [TOTAL, TOTAL_INCREASING])
    return np.where(has_value & wanted, out, np.nan)


def hourly_summaries(
    events: pd.DataFrame,
    window_start: datetime,
    window_end: datetime,
    start_states: Mapping[str, StartState] | None = None,
    entity_meta: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """One summary row per entity for ``[window_start, window_end)`` (see module docstring).

    ``events``: event frame (history_to_events columns; an optional ``last_reset`` column
    enables `total` cycles). ``start_states``: state in force at the window start per entity
    (default: derived from the first events' ``previous_state``). ``entity_meta``: per entity
    ``state_class``, ``device_class``, ``unit_of_measurement``, ``area``, ``device_name``,
    ``integration``. Entities with a known start state but no rows still get a row.
    """
    ws, we = _utc(window_start), _utc(window_end)
    width = (we - ws).total_seconds()
    entity_meta = entity_meta or {}
    ev = events
    ev_t = np.zeros(0)
    if ev.empty:
        # An empty read may come back without columns.
        ev = pd.DataFrame({c: pd.Series(dtype=object) for c in ("time", "entity_id", "state_value")})
    else:
        times = pd.to_datetime(ev["time"], utc=True)
        inside = ((times >= ws) & (times < we)).to_numpy()
        if not inside.all():
            ev, times = ev[inside], times[inside]
        ev_t = (times - ws).dt.total_seconds().to_numpy()
    ev_code, ev_entities = pd.factorize(ev["entity_id"]) if not ev.empty else (np.zeros(0, np.int64), [])
    first_ev, last_ev = _first_last(ev_code, ev_t) if len(ev) else (np.zeros(0, np.int64),) * 2
    if start_states is None and "previous_state" not in ev.columns:
        start_states = {}
    if start_states is None:
        previous = ev["previous_state"].to_numpy(dtype=object)[first_ev]
        start_states = {e: {"state": p} for e, p in zip(ev_entities, previous) if isinstance(p, str)}

    # Entities with events come first (their factorize codes), then held-only ones.
    seen = set(ev_entities)
    held = [e for e, st in start_states.items() if e not in seen and isinstance((st or {}).get("state"), str)]
    entity_ids = pd.Index(list(ev_entities) + held, dtype=object)
    n_ent = len(entity_ids)
    if n_ent == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SUMMARY_COLUMNS})

    k_periods = int(np.ceil(width / PERIOD_SECONDS))
    period_start = np.arange(k_periods) * float(PERIOD_SECONDS)
    period_end = np.minimum(period_start + PERIOD_SECONDS, width)

    starts = [start_states.get(e) or {} for e in entity_ids]
    start_last_numeric = np.asarray(
        [st.get("last_numeric") if st.get("last_numeric") is not None else np.nan for st in starts],
        dtype="float64",
    )
    # States and last_reset values as codes into their distinct values: the sort below then
    # moves integers, and parsing happens once per distinct string.
    state_codes, state_uniques = pd.factorize(
        np.r_[np.asarray([st.get("state") for st in starts], dtype=object), ev["state_value"].to_numpy(dtype=object)]
    )
    uniques = np.asarray(state_uniques, dtype=object)
    u_x = np.r_[parse_unique_numbers(uniques), np.nan]  # code -1 (no state) -> last slot
    u_unavailable = np.r_[uniques == UNAVAILABLE, False]
    u_on = np.r_[np.isin(uniques, list(ON_STATES)), False]
    u_onoff = u_on | np.r_[np.isin(uniques, list(OFF_STATES)), False]
    lr_values = np.r_[
        np.asarray([st.get("last_reset") for st in starts], dtype=object),
        ev["last_reset"].to_numpy(dtype=object) if "last_reset" in ev.columns else np.full(len(ev), None, dtype=object),
    ]
    lr_codes, lr_uniques = pd.factorize(lr_values)
    lr_parsed = _normalise_last_reset(pd.Series(np.asarray(lr_uniques, dtype=object), dtype=object))
    u_lr = np.r_[lr_parsed.to_numpy(), np.nan]

    # Row set: one boundary row per entity and period (state in force at the period start;
    # period 0 carries the start state) and the window's events.
    n_bound = n_ent * k_periods
    n_ev = len(ev)
    code = np.r_[np.repeat(np.arange(n_ent), k_periods), ev_code]
    t = np.r_[np.tile(period_start, n_ent), ev_t]
    kind = np.r_[np.zeros(n_bound, dtype=np.int8), np.ones(n_ev, dtype=np.int8)]
    period = np.r_[
        np.tile(np.arange(k_periods), n_ent),
        np.minimum((ev_t // PERIOD_SECONDS).astype(np.int64), k_periods - 1),
    ]
    is_start = np.tile(np.arange(k_periods) == 0, n_ent)
    carries_state = np.r_[is_start, np.ones(n_ev, dtype=bool)]
    # Value index: start rows -> their entity's start state, events -> their own.
    value_at = np.r_[np.repeat(np.arange(n_ent), k_periods), n_ent + np.arange(n_ev)]

    # Boundary rows sort before events at the same instant: HA's period start state is the
    # last row strictly before the period start, and a row exactly at it is inside the period.
    order = np.lexsort((kind, t, code))
    code, t, kind, period, carries_state, value_at = (
        a[order] for a in (code, t, kind, period, carries_state, value_at)
    )
    # Later boundary rows copy the row in force (start state or last event before them).
    idx = np.arange(len(code))
    src = np.maximum.accumulate(np.where(carries_state, idx, 0))
    value_at = value_at[src]
    sc = state_codes[value_at]
    x, lr_all = u_x[sc], u_lr[lr_codes[value_at]]
    is_unavailable, is_on, is_onoff = u_unavailable[sc], u_on[sc], u_onoff[sc]

    # Each row holds until the next row of its period, or the period end.
    group = code * k_periods + period
    last_in_group = _group_end(group)
    t_next = np.where(last_in_group, period_end[period], np.r_[t[1:], 0.0])
    dur = t_next - t

    xf = _ffill_within(x, group)
    held_value = ~np.isnan(xf)
    n_groups = n_ent * k_periods
    weighted = np.bincount(group, weights=np.where(held_value, xf * dur, 0.0), minlength=n_groups)
    covered = np.bincount(group, weights=np.where(held_value, dur, 0.0), minlength=n_groups)
    present = np.bincount(group, weights=(~np.isnan(x)).astype(float), minlength=n_groups) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        # HA returns 0.0 when a period has no measurable duration.
        period_mean = np.where(covered > 0, weighted / covered, 0.0)
    period_mean = np.where(present, period_mean, np.nan).reshape(n_ent, k_periods)
    n_present = (~np.isnan(period_mean)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_present > 0, np.nansum(period_mean, axis=1) / n_present, np.nan)

    # Per entity: rows are sorted by entity and every entity has its boundary rows.
    seg = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    seg_end = np.r_[seg[1:], len(code)] - 1
    with np.errstate(invalid="ignore"):
        minimum = np.fmin.reduceat(x, seg)
        maximum = np.fmax.reduceat(x, seg)
    last_valid = np.maximum.accumulate(np.where(~np.isnan(x), idx, -1))[seg_end]
    last = np.where(last_valid >= seg, x[np.maximum(last_valid, 0)], np.nan)

    count = np.bincount(code[kind == 1], minlength=n_ent).astype("int64")
    unavailable_seconds = np.bincount(code, weights=np.where(is_unavailable, dur, 0.0), minlength=n_ent)
    on_seconds = np.bincount(code, weights=np.where(is_on, dur, 0.0), minlength=n_ent)
    onoff_like = np.bincount(code, weights=is_onoff.astype(float), minlength=n_ent) > 0
    on_seconds = np.where(onoff_like, on_seconds, np.nan)

    state_class = np.asarray([(entity_meta.get(e) or {}).get("state_class") for e in entity_ids], dtype=object)
    # Sum chain: seed (start number, else the last number before the window) then events.
    seed = (kind == 0) & (t == 0.0) & carries_state
    seed_code = code[seed]
    seed_x = np.where(np.isnan(x[seed]), start_last_numeric[seed_code], x[seed])
    ev_rows = kind == 1
    sum_code = np.r_[seed_code, code[ev_rows]]
    sum_order = np.argsort(sum_code, kind="stable")
    sum_increase = _sum_increase(
        sum_code[sum_order],
        np.r_[seed_x, x[ev_rows]][sum_order],
        np.r_[lr_all[seed], lr_all[ev_rows]][sum_order],
        state_class,
        n_ent,
    )

    out = pd.DataFrame({"time": pd.Series([ws] * n_ent, dtype="datetime64[ns, UTC]")})
    out = out.assign(**_tags(entity_ids, ev, last_ev, entity_meta))
    out = out.assign(
        mean=mean,
        min=minimum,
        max=maximum,
        last=last,
        count=count,
        unavailable_seconds=unavailable_seconds,
        on_seconds=on_seconds,
        sum_increase=sum_increase,
        covered_seconds=covered.reshape(n_ent, k_periods).sum(axis=1),
    )
    return out[list(SUMMARY_COLUMNS)]


def _tags(
    entity_ids: pd.Index, events: pd.DataFrame, last_event: np.ndarray, meta: Mapping[str, Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """Tag columns per entity: the inventory's values, else the entity's last event's."""
    tags: dict[str, np.ndarray] = {
        "entity_id": entity_ids.to_numpy(dtype=object),
        "domain": np.asarray([str(e).split(".", 1)[0] for e in entity_ids], dtype=object),
    }
    n_with_events = len(last_event)
    for col in TAG_COLUMNS[2:]:
        values = np.asarray([(meta.get(e) or {}).get(col) or None for e in entity_ids], dtype=object)
        if col in events.columns and n_with_events:
            from_events = events[col].to_numpy(dtype=object)[last_event]
            head = values[:n_with_events]
            values[:n_with_events] = np.where(pd.isna(head), from_events, head)
        tags[col] = values
    return tags


def reduce_hourly(hourly: pd.DataFrame, period: Period, time_zone: str) -> pd.DataFrame:
    """Rows per entity and local day or month of ``time_zone``, reduced from hourly rows as HA's
    ``_reduce_statistics`` (``reduce_day_ts_factory`` / ``reduce_month_ts_factory``) reduces
    hourly statistics for ``statistics_during_period``.

    A period is the hours whose start falls on it; its row is stamped at the local period start.
    mean = plain mean of the hourly means present (HA does not weight them), min = min of the
    mins, max = max of the maxes, sum_increase = sum of the hourly increases (HA's ``change``).
    Beyond HA: ``last`` of the last hour that has one; counts and seconds added.
    """
    if hourly.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in SUMMARY_COLUMNS})
    times = pd.to_datetime(hourly["time"], utc=True)
    local = times.dt.tz_convert(time_zone).dt.tz_localize(None)
    # Local wall-clock period start: what HA's replace(hour=0, ...) / replace(day=1, ...) gives.
    key = local.dt.normalize() if period == "day" else local.dt.to_period("M").dt.start_time
    hours = hourly.assign(time=times, _period=key).sort_values(["entity_id", "time"], kind="stable")
    first_hour = hours.groupby("_period", sort=False)["time"].min()
    stamp = {k: period_start(t.to_pydatetime(), period, time_zone) for k, t in first_hour.items()}
    g = hours.groupby(["entity_id", "_period"], sort=True)
    out = pd.DataFrame(
        {
            "mean": g["mean"].mean(),
            "min": g["min"].min(),
            "max": g["max"].max(),
            "last": g["last"].last(),
            "count": g["count"].sum().astype("int64"),
            "unavailable_seconds": g["unavailable_seconds"].sum(),
            "on_seconds": g["on_seconds"].sum(min_count=1),
            "sum_increase": g["sum_increase"].sum(min_count=1),
            "covered_seconds": g["covered_seconds"].sum(),
        }
    )
    out = out.join(g[list(TAG_COLUMNS[1:])].last()).reset_index()
    out["time"] = pd.Series([stamp[k] for k in out["_period"]], dtype="datetime64[ns, UTC]")
    return out[list(SUMMARY_COLUMNS)]
