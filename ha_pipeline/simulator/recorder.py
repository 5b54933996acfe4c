"""The simulated recorder: history_during_period and statistics in HA 2024.1's exact shapes.

Generated rows (before ``home.now``) and rows written at runtime (``home.runtime_rows``) are
served together, so a state set through ``call_service`` shows up in later history queries.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

import numpy as np

from ha_pipeline.simulator.history import KINDS, METER_ORIGIN, Rows, gc_paused, meter_total

if TYPE_CHECKING:
    from ha_pipeline.simulator.home import SimulatedHome

# HA's recorder keeps attribute-only updates of these domains as significant
SIGNIFICANT_DOMAINS = frozenset({"climate", "device_tracker", "humidifier", "thermostat", "water_heater"})
# minimal_response keeps full rows for these domains
NEED_ATTRIBUTE_DOMAINS = frozenset({"climate", "humidifier", "input_datetime", "thermostat", "water_heater"})


class _Timeline:
    """One entity's rows as parallel lists: state, lu, lc (None when == lu); attributes on demand."""

    __slots__ = ("states", "lu", "lc", "start", "_attrs", "_base", "_bright")

    def __init__(self) -> None:
        self.states: list[str] = []
        self.lu: list[float] = []
        self.lc: list[float | None] = []
        self.start: tuple[str, dict[str, Any], float, float | None] | None = None
        self._attrs: list[dict[str, Any]] | None = []
        self._base: dict[str, Any] = {}
        self._bright: list[int] | None = None

    @property
    def attrs(self) -> list[dict[str, Any]]:
        """Attributes per row (built on first use: minimal responses never need most of them)."""
        if self._attrs is None:
            if self._bright is None:
                self._attrs = [self._base] * len(self.states)
            else:
                self._attrs = _light_attrs(self._base, self.states, self._bright)
        return self._attrs

    def append(self, state: str, attrs: dict[str, Any], lu: float, lc: float | None) -> None:
        self.attrs.append(attrs)
        self.states.append(state)
        self.lu.append(lu)
        self.lc.append(lc)


_NUMERIC, _METER, _BINARY, _LIGHT, _CONSTANT = (KINDS.index(k) for k in ("numeric", "meter", "binary", "light", "constant"))


def _state_strings(home: "SimulatedHome", rows: Rows) -> list[str]:
    """HA state strings of generated rows: str() of the native value, on/off, unavailable.

    Vectorised over all rows at once: one ``map`` per kind of formatting, no per-entity numpy calls.
    """
    params = home.generator.params
    n = rows.pos.size
    out = np.empty(n, dtype=object)
    kind = params.kind[rows.pos]
    unavailable = rows.unavailable
    onoff = (kind == _BINARY) | (kind == _LIGHT)
    idx = np.flatnonzero(onoff & ~unavailable)
    out[idx] = np.where(rows.value[idx] > 0, "on", "off")
    decimals = np.where(kind == _METER, 3, params.decimals[rows.pos])
    numeric = ((kind == _NUMERIC) | (kind == _METER)) & ~unavailable
    for d in np.unique(decimals[numeric]).tolist():
        idx = np.flatnonzero(numeric & (decimals == d))
        if d == 0:
            out[idx] = list(map(str, np.round(rows.value[idx]).astype(np.int64).tolist()))
        else:
            out[idx] = list(map(repr, np.round(rows.value[idx], d).tolist()))
    out[np.flatnonzero(unavailable)] = "unavailable"
    for i in np.flatnonzero(kind == _CONSTANT).tolist():
        out[i] = home.generator.sources[int(rows.pos[i])].constant
    return out.tolist()


def _light_attrs(base: dict[str, Any], states: list[str], levels: list[int]) -> list[dict[str, Any]]:
    return [{**base, "color_mode": "brightness", "brightness": level} if state == "on" else base
            for state, level in zip(states, levels)]


def timelines(home: "SimulatedHome", entity_ids: Iterable[str], t0: float, t1: float,
              drop_attribute_only: bool = False, include_runtime: bool = True) -> dict[str, _Timeline]:
    """Per known entity: the state in force before ``t0`` and the rows with t0 < lu < t1.

    ``drop_attribute_only`` leaves out rows where only attributes changed (lc != lu);
    ``include_runtime=False`` gives generated rows only.
    """
    ids = [e for e in dict.fromkeys(entity_ids) if e in home.sources]
    positions = {e: home.source_positions.get(e) for e in ids}
    generated = np.asarray(sorted(p for p in positions.values() if p is not None), dtype=np.int64)
    out = {e: _Timeline() for e in ids}
    if generated.size:
        g0, g1 = min(t0, home.now), min(t1, home.now)
        prior, window = home.generator.window(g0, g1, generated)
        if drop_attribute_only:
            window = window.take(np.isnan(window.lc))
        prior_states = _state_strings(home, prior)
        prior_at = {p: i for i, p in enumerate(prior.pos.tolist())}
        states = _state_strings(home, window)
        lus = window.lu.tolist()
        has_lc = ~np.isnan(window.lc)
        any_lc = bool(has_lc.any())
        starts = np.searchsorted(window.pos, generated, side="left").tolist()
        ends = np.searchsorted(window.pos, generated, side="right").tolist()
        span = dict(zip(generated.tolist(), zip(starts, ends)))
        for eid, pos in positions.items():
            if pos is None:
                continue
            tl = out[eid]
            src = home.sources[eid]
            tl._base = src.attributes
            if pos in prior_at:
                i = prior_at[pos]
                s = prior_states[i]
                attrs = _light_attrs(src.attributes, [s], [int(prior.brightness[i])])[0] if src.kind == "light" else src.attributes
                lc = float(prior.lc[i])
                tl.start = (s, attrs, float(prior.lu[i]), None if math.isnan(lc) else lc)
            a, b = span[pos]
            if b > a:
                tl.states = states[a:b]
                tl.lu = lus[a:b]
                tl._attrs = None
                if src.kind == "light":
                    tl._bright = window.brightness[a:b].tolist()
                if any_lc and has_lc[a:b].any():
                    tl.lc = np.where(has_lc[a:b], window.lc[a:b], np.nan).tolist()
                    tl.lc = [None if x != x else x for x in tl.lc]  # NaN → None
                else:
                    tl.lc = [None] * (b - a)
    for eid in ids if include_runtime else ():
        extra = home.runtime_rows.get(eid)
        if not extra:
            continue
        tl = out[eid]
        generated_until = tl.lu[-1] if tl.lu else -math.inf
        interleaved = False
        for row in extra:
            lc = None if row["lc"] == row["lu"] else row["lc"]
            if row["lu"] < t0:
                if tl.start is None or row["lu"] > tl.start[2]:
                    tl.start = (row["s"], row["a"], row["lu"], lc)
            elif row["lu"] < t1 and row["lu"] != t0 and not (drop_attribute_only and lc is not None):
                interleaved = interleaved or row["lu"] < generated_until
                tl.append(row["s"], row["a"], row["lu"], lc)
        if interleaved:
            # a live home keeps generating rows after runtime changes: merge both streams by time
            order = sorted(range(len(tl.lu)), key=tl.lu.__getitem__)
            attrs = tl.attrs
            tl.states = [tl.states[i] for i in order]
            tl.lc = [tl.lc[i] for i in order]
            tl._attrs = [attrs[i] for i in order]
            tl.lu = [tl.lu[i] for i in order]
    return out


def state_in_force(home: "SimulatedHome", t: float) -> dict[str, tuple[tuple[str, dict[str, Any]], float, float]]:
    """Per entity: ((state, attributes), last_updated, last_changed) of the last row before ``t``.

    Entities without any row get (their constant or "unknown", -inf, -inf).
    """
    positions = home.source_positions
    generated = np.asarray(sorted(p for p in positions.values() if p is not None), dtype=np.int64)
    prior, _ = home.generator.window(min(t, home.now), min(t, home.now), generated)
    states = _state_strings(home, prior)
    lus = prior.lu.tolist()
    lcs = np.where(np.isnan(prior.lc), prior.lu, prior.lc).tolist()
    bright = prior.brightness.tolist()
    sources = home.generator.sources
    result: dict[str, tuple[tuple[str, dict[str, Any]], float, float]] = {}
    by_pos = {}
    for i, pos in enumerate(prior.pos.tolist()):
        src = sources[pos]
        attrs = src.attributes
        if src.kind == "light" and states[i] == "on":
            attrs = {**attrs, "color_mode": "brightness", "brightness": bright[i]}
        by_pos[pos] = ((states[i], attrs), lus[i], lcs[i])
    for eid, src in home.sources.items():
        pos = positions.get(eid)
        found = by_pos.get(pos) if pos is not None else None
        if found is None:
            found = ((src.constant if src.kind == "constant" else "unknown", src.attributes), -math.inf, -math.inf)
        result[eid] = found
    for eid, rows in home.runtime_rows.items():
        before = [r for r in rows if r["lu"] < t]
        if before and (eid not in result or before[-1]["lu"] > result[eid][1]):
            r = before[-1]
            result[eid] = ((r["s"], r["a"]), r["lu"], r["lc"])
    return result


def history_during_period(home: "SimulatedHome", start: float, end: float, entity_ids: list[str], *,
                          include_start_time_state: bool = True, significant_changes_only: bool = True,
                          minimal_response: bool = False, no_attributes: bool = False) -> dict[str, list[dict[str, Any]]]:
    """``history/history_during_period`` result: HA's compressed rows ``{s, a?, lu, lc?}``."""
    with gc_paused():
        return {eid: head + [{"s": s, "lu": lu} for s, lu in zip(states, lus)]
                for eid, head, states, lus in _history(home, start, end, entity_ids, include_start_time_state,
                                                       significant_changes_only, minimal_response, no_attributes)}


_MINIMAL_ROW = ',{"s":"%s","lu":%r}'


def history_json(home: "SimulatedHome", start: float, end: float, entity_ids: list[str], *,
                 include_start_time_state: bool = True, significant_changes_only: bool = True,
                 minimal_response: bool = False, no_attributes: bool = False) -> str:
    """The same result as :func:`history_during_period`, as compact JSON text.

    Minimal rows (the bulk of large responses) are written straight to text instead of going
    through a dict per row and ``json.dumps``: about three times the rows per second.
    """
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    parts = []
    with gc_paused():
        for eid, head, states, lus in _history(home, start, end, entity_ids, include_start_time_state,
                                               significant_changes_only, minimal_response, no_attributes):
            rows = [dumps(row) for row in head]
            if states:
                # json escapes every quote inside a string, so '","' only ever separates items
                escaped = dumps(states)[2:-2].split('","')
                # one %-format per entity parses its template once (faster than a format call per row)
                rows.append((_MINIMAL_ROW * len(lus))[1:] % tuple(itertools.chain.from_iterable(zip(escaped, lus))))
            parts.append(f"{dumps(eid)}:[{','.join(rows)}]")
    return "{" + ",".join(parts) + "}"


def _history(home: "SimulatedHome", start: float, end: float, entity_ids: list[str], include_start_time_state: bool,
             significant_changes_only: bool, minimal_response: bool,
             no_attributes: bool) -> Iterator[tuple[str, list[dict[str, Any]], list[str], list[float]]]:
    """Per entity with rows: (full rows, then the states and times of trailing ``{s, lu}`` rows)."""
    # none of the simulated domains is in SIGNIFICANT_DOMAINS, and minimal_response drops
    # same-state rows anyway, so attribute-only rows can go before formatting
    drop = (significant_changes_only or minimal_response) and not any(
        e.split(".", 1)[0] in SIGNIFICANT_DOMAINS for e in entity_ids)
    for eid, tl in timelines(home, entity_ids, start, end, drop_attribute_only=drop).items():
        domain = eid.split(".", 1)[0]
        keep_attr_only = domain in SIGNIFICANT_DOMAINS or not significant_changes_only
        full = not minimal_response or domain in NEED_ATTRIBUTE_DOMAINS
        head: list[dict[str, Any]] = []
        if include_start_time_state and tl.start is not None:
            s, a, _, _ = tl.start
            head.append({"s": s, "lu": start} if no_attributes else {"s": s, "a": a, "lu": start})
        states, lus, lcs = tl.states, tl.lu, tl.lc
        attrs: list[dict[str, Any]] | None = None
        if not keep_attr_only and not drop and any(lc is not None for lc in lcs):
            keep = [i for i, lc in enumerate(lcs) if lc is None]
            attrs = [tl.attrs[i] for i in keep]
            states = [states[i] for i in keep]
            lus = [lus[i] for i in keep]
            lcs = [lcs[i] for i in keep]
        if full:
            attrs = tl.attrs if attrs is None else attrs
            head.extend(_row(s, a, lu, lc, no_attributes) for s, a, lu, lc in zip(states, attrs, lus, lcs))
            states, lus = [], []
        elif not head and states:
            head.append(_row(states[0], (attrs or tl.attrs)[0], lus[0], lcs[0], no_attributes))
            states, lus = states[1:], lus[1:]
        if head and states and not drop:
            # minimal_response: later rows are state changes only, as {s, lu} (with attribute-only
            # rows dropped up front no two consecutive rows share a state, so this only runs without)
            previous = [head[-1]["s"], *states[:-1]]
            if any(s == p for s, p in zip(states, previous)):
                keep = [i for i, (s, p) in enumerate(zip(states, previous)) if s != p]
                states = [states[i] for i in keep]
                lus = [lus[i] for i in keep]
        if head:
            yield eid, head, states, lus


def _row(s: str, a: dict[str, Any], lu: float, lc: float | None, no_attributes: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"s": s} if no_attributes else {"s": s, "a": a}
    row["lu"] = lu
    if lc is not None:
        row["lc"] = lc
    return row


# ---------------------------------------------------------------------------- statistics
STAT_TYPES = ("mean", "min", "max", "last_reset", "state", "sum", "change")
_UNIT_FACTORS: dict[str, dict[str, float]] = {
    "energy": {"Wh": 1000.0, "kWh": 1.0, "MWh": 0.001},
    "power": {"W": 1.0, "kW": 0.001},
}
_UNIT_CLASS = {"°C": "temperature", "°F": "temperature", "K": "temperature", "kWh": "energy", "Wh": "energy",
               "MWh": "energy", "W": "power", "kW": "power", "%": "unitless", "V": "voltage", "A": "current",
               "lx": "illuminance", "dBm": "signal_strength"}


def _converter(unit: str | None, units: dict[str, str]) -> Callable[[float], float]:
    """Value converter from the sensor's unit to the requested unit of its class (``units``)."""
    cls = _UNIT_CLASS.get(unit or "")
    target = units.get(cls or "") if units else None
    if not target or target == unit:
        return lambda v: v
    if cls == "temperature":
        to_c = {"°C": lambda v: v, "°F": lambda v: (v - 32) / 1.8, "K": lambda v: v - 273.15}[unit]
        from_c = {"°C": lambda v: v, "°F": lambda v: v * 1.8 + 32, "K": lambda v: v + 273.15}.get(target)
        return (lambda v: from_c(to_c(v))) if from_c else (lambda v: v)
    factors = _UNIT_FACTORS.get(cls or "", {})
    if unit in factors and target in factors:
        f = factors[target] / factors[unit]
        return lambda v: v * f
    return lambda v: v


def period_bounds(period: str, start: float, end: float, tz: ZoneInfo) -> list[tuple[float, float]]:
    """Period buckets overlapping [start, end): UTC-aligned for 5minute/hour, local for day/week/month."""
    if period in ("5minute", "hour"):
        size = 300 if period == "5minute" else 3600
        first = math.ceil(start / size) * size
        return [(t, t + size) for t in range(int(first), int(math.ceil(end)), size) if t < end]
    local = datetime.fromtimestamp(start, tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        day -= timedelta(days=day.weekday())
    elif period == "month":
        day = day.replace(day=1)
    bounds = []
    cur = day
    while cur.timestamp() < end:
        if period == "day":
            nxt = cur + timedelta(days=1)
        elif period == "week":
            nxt = cur + timedelta(days=7)
        else:
            nxt = (cur.replace(day=28) + timedelta(days=4)).replace(day=1)
        nxt = nxt.replace(tzinfo=None).replace(tzinfo=tz)  # re-resolve DST offset of the wall-clock time
        bounds.append((cur.timestamp(), nxt.timestamp()))
        cur = nxt
    return bounds


def statistic_meta(home: "SimulatedHome", eid: str) -> dict[str, Any] | None:
    """``recorder/list_statistic_ids`` item for a sensor with a state_class, else None."""
    src = home.sources.get(eid)
    if src is None or not eid.startswith("sensor.") or "state_class" not in src.attributes:
        return None
    unit = src.attributes.get("unit_of_measurement")
    has_sum = src.attributes["state_class"] in ("total", "total_increasing")
    return {"statistic_id": eid, "display_unit_of_measurement": unit, "has_mean": not has_sum, "has_sum": has_sum,
            "name": None, "source": "recorder", "statistics_unit_of_measurement": unit,
            "unit_class": _UNIT_CLASS.get(unit or "") if unit != "EUR/kWh" else None}


def list_statistic_ids(home: "SimulatedHome", statistic_type: str | None = None) -> list[dict[str, Any]]:
    """All statistic ids, optionally only those with a mean or a sum."""
    out = []
    for eid in home.sources:
        meta = statistic_meta(home, eid)
        if meta is None:
            continue
        if statistic_type == "mean" and not meta["has_mean"] or statistic_type == "sum" and not meta["has_sum"]:
            continue
        out.append(meta)
    return out


def statistics_during_period(home: "SimulatedHome", start: float, end: float, statistic_ids: list[str],
                             period: str, types: list[str] | None = None,
                             units: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Long-term statistics computed from the simulated history with HA's time-weighted semantics.

    Only closed periods (ending before now) exist, as in HA. ``start``/``end`` of rows are ms epochs.
    """
    wanted = [t for t in STAT_TYPES if types is None or t in types]
    now = max(home.now, datetime.now(timezone.utc).timestamp())
    end = min(end, now)
    buckets = [(a, b) for a, b in period_bounds(period, start, end, ZoneInfo(home.time_zone)) if b <= now]
    ids = [e for e in statistic_ids if statistic_meta(home, e) is not None]
    if not buckets or not ids:
        return {}
    lines = timelines(home, ids, buckets[0][0], buckets[-1][1])
    result: dict[str, list[dict[str, Any]]] = {}
    for eid in ids:
        src = home.sources[eid]
        tl = lines[eid]
        meta = statistic_meta(home, eid)
        convert = _converter(meta["statistics_unit_of_measurement"], units or {})
        times = ([tl.start[2]] if tl.start else []) + tl.lu
        vals = ([_num(tl.start[0])] if tl.start else []) + [_num(s) for s in tl.states]
        if not times:
            continue
        t = np.asarray(times)
        v = np.asarray(vals, dtype=float)
        rows = []
        prev_sum: float | None = None
        for a, b in buckets:
            i0 = int(np.searchsorted(t, a, side="right")) - 1  # row in force at a
            lo = i0 + 1
            hi = int(np.searchsorted(t, b, side="left"))
            if i0 >= 0:
                seg_t = np.concatenate([[a], t[lo:hi]])
                seg_real_t = np.concatenate([[t[i0]], t[lo:hi]])
                seg_v = np.concatenate([[v[i0]], v[lo:hi]])
            else:
                seg_t = seg_real_t = t[lo:hi]
                seg_v = v[lo:hi]
            ok = ~np.isnan(seg_v)
            if not ok.any():
                continue
            dur = np.diff(np.concatenate([seg_t, [b]]))
            rec: dict[str, Any] = {"start": int(a * 1000), "end": int(b * 1000)}
            stat: dict[str, Any] = dict.fromkeys(STAT_TYPES)
            if meta["has_mean"]:
                weight = dur[ok].sum()
                stat["mean"] = convert(float((seg_v[ok] * dur[ok]).sum() / weight)) if weight > 0 else convert(float(seg_v[ok][-1]))
                stat["min"] = convert(float(seg_v[ok].min()))
                stat["max"] = convert(float(seg_v[ok].max()))
            else:
                last = int(np.nonzero(ok)[0][-1])
                stat["state"] = convert(float(seg_v[last]))
                last_t = float(seg_real_t[last])
                if src.kind == "meter":
                    stat["sum"] = convert(_meter_sum(src, last_t))
                    if prev_sum is None:
                        # the sum before the first bucket: at the row in force when it starts
                        prev_sum = convert(_meter_sum(src, float(t[i0]) if i0 >= 0 else a))
                else:
                    stat["sum"] = stat["state"]
                    prev_sum = stat["sum"] if prev_sum is None else prev_sum
                stat["change"] = stat["sum"] - prev_sum
                prev_sum = stat["sum"]
            rec.update({k: stat[k] for k in wanted})
            rows.append(rec)
        if rows:
            result[eid] = rows
    return result


def _meter_sum(src: Any, t: float) -> float:
    """A meter's long-term ``sum`` at ``t``: consumption since METER_ORIGIN, unaffected by resets."""
    total = meter_total(np.asarray([t, METER_ORIGIN]), np.full(2, src.daily), np.full(2, src.phase))
    return round(float(total[0] - total[1]), 3)


def _num(state: str) -> float:
    try:
        return float(state)
    except ValueError:
        return math.nan
