"""Deterministic, on-demand state history for the simulated home.

Rows are generated per (entity, hour) from a counter-based hash of (seed, entity, hour, row),
so any past window can be served without replaying from an epoch, and the same seed always
gives the same rows. Entity behaviours ("kinds"):

- ``numeric``: a random walk inside each hour around a daily sine baseline;
- ``meter``: a ``total_increasing`` energy meter, strictly increasing inside a cycle and reset
  to ~0 at the start of every cycle (cycles of a few weeks);
- ``binary`` (binary_sensor, switch, input_boolean): on/off pairs inside each hour, so every
  hour starts and ends ``off`` (``on`` when inverted) and consecutive rows never repeat a state;
- ``light``: like ``binary`` plus an optional attribute-only brightness change while on;
- ``constant``: one state that never changes (zone, input_number until set at runtime).

Any ``on`` (or numeric row) may be replaced by ``unavailable`` (a gap until the next row).
Rows equal to their predecessor are dropped, as HA's recorder never writes them.
"""

from __future__ import annotations

import contextlib
import gc
import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HOUR = 3600
# Rows are generated on the µs grid HA stores (float epoch seconds, 6 decimals).
_US = 1_000_000
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_K_GID = np.uint64(0x9E3779B97F4A7C15)
_K_HOUR = np.uint64(0xD1B54A32D192ED03)
_K_ROW = np.uint64(0xA24BAED4963EE407)
# Back-search limit for the state in force: every entity has at least one raw row per day.
_MAX_LOOKBACK_HOURS = 26
# Meter sums are counted from this instant (2024-01-01T00:00:00Z), like a recorder that
# started compiling statistics then.
METER_ORIGIN = 1704067200.0

KINDS = ("numeric", "meter", "binary", "light", "constant")
_NUMERIC, _METER, _BINARY, _LIGHT, _CONSTANT = range(5)
BRIGHTNESS_LEVELS = (26, 77, 128, 179, 230, 255)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many acyclic dicts/lists.

    With ~10^5 long-lived registry records, every collection walks them all; building a
    million history rows would otherwise spend most of its time in the collector.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic is intended)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _uniform(seed: int, gid: np.ndarray, hour: np.ndarray, row: np.ndarray, stream: int) -> np.ndarray:
    """Uniform [0, 1) per (seed, entity, hour, row, stream), vectorised."""
    with np.errstate(over="ignore"):
        x = _mix(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ (gid.astype(np.uint64) * _K_GID))
        x = _mix(x ^ (hour.astype(np.int64).astype(np.uint64) * _K_HOUR))
        x = _mix(x ^ (row.astype(np.uint64) * _K_ROW + np.uint64(stream)))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _poisson(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson counts by inverse CDF, vectorised over per-row rates."""
    k = np.zeros(u.shape, dtype=np.int64)
    p = np.exp(-lam)
    cdf = p.copy()
    active = u > cdf
    i = 0
    while active.any() and i < 200:
        i += 1
        p = np.where(active, p * lam / i, p)
        cdf = np.where(active, cdf + p, cdf)
        k += active
        active = u > cdf
    return k


@dataclass
class Source:
    """How one entity's history is generated (immutable once the home is generated)."""

    gid: int
    kind: str
    rate: float = 4.0  # raw rows per hour
    base: float = 0.0
    amp: float = 0.0
    step: float = 0.0
    decimals: int = 1
    lo: float = -math.inf
    hi: float = math.inf
    phase: float = 0.0
    p_unavailable: float = 0.003
    # meter: kWh per day, cycle length in days and cycle offset in seconds
    daily: float = 0.0
    cycle_days: float = 30.0
    cycle_offset: float = 0.0
    constant: str = "unknown"
    inverted: bool = False  # on/off entities that are mostly on (connectivity): pairs are (off, on)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rows:
    """Rows of many entities, sorted by (entity position, time). ``lc`` is NaN when == ``lu``."""

    pos: np.ndarray  # int64 position of the entity in the request
    lu: np.ndarray  # float64 epoch seconds
    lc: np.ndarray  # float64, NaN when last_changed == last_updated
    value: np.ndarray  # float64 (numeric state, 1/0 for on/off)
    unavailable: np.ndarray  # bool
    brightness: np.ndarray  # int64, 0 when none

    def take(self, mask: np.ndarray) -> "Rows":
        """Subset of rows (order kept)."""
        return Rows(self.pos[mask], self.lu[mask], self.lc[mask], self.value[mask],
                    self.unavailable[mask], self.brightness[mask])

    @staticmethod
    def concat(parts: list["Rows"]) -> "Rows":
        """Concatenate parts given in time order (each sorted by (pos, lu)); result sorted by (pos, lu)."""
        parts = [p for p in parts if p.pos.size]
        if not parts:
            return _empty_rows()
        if len(parts) == 1:
            return parts[0]
        r = Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                   ("pos", "lu", "lc", "value", "unavailable", "brightness")))
        return r.take(np.argsort(r.pos, kind="stable"))


def _empty_rows() -> Rows:
    return Rows(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0),
                np.zeros(0, bool), np.zeros(0, np.int64))


class _Params:
    """Column-wise parameters of a list of sources, for vectorised generation."""

    def __init__(self, sources: list[Source]):
        self.n = len(sources)
        self.gid = np.array([s.gid for s in sources], dtype=np.uint64)
        kind_code = {k: i for i, k in enumerate(KINDS)}
        self.kind = np.array([kind_code[s.kind] for s in sources], dtype=np.int64)
        names = ("rate", "base", "amp", "step", "lo", "hi", "phase", "p_unavailable", "daily", "cycle_days",
                 "cycle_offset", "decimals", "inverted")
        columns = np.array([operator.attrgetter(*names)(s) for s in sources], dtype=np.float64).reshape(-1, len(names))
        for i, name in enumerate(names[:-2]):
            setattr(self, name, np.ascontiguousarray(columns[:, i]))
        self.decimals = columns[:, -2].astype(np.int64)
        self.inverted = columns[:, -1].astype(bool)


def meter_total(t: np.ndarray, daily: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Cumulative consumption (kWh) since the epoch: a trend plus a daily swing, never decreasing."""
    omega = 2 * math.pi / 86400
    a = daily / 86400
    b = 0.8 * a / omega  # b*omega < a keeps the derivative positive
    return a * t + b * np.sin(omega * t + phase)


def meter_cycle_start(t: np.ndarray, cycle_days: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Start of the meter cycle in force at ``t`` (the meter reads ~0 there)."""
    length = cycle_days * 86400
    return np.floor((t - offset) / length) * length + offset


def generate_raw(seed: int, params: _Params, idx: np.ndarray, h0: int, h1: int) -> Rows:
    """Raw rows (before de-duplication) of entities ``idx`` for hours h0..h1 inclusive."""
    if h1 < h0 or idx.size == 0:
        return _empty_rows()
    hours = np.arange(h0, h1 + 1, dtype=np.int64)
    pe = np.repeat(idx, hours.size)
    ph = np.tile(hours, idx.size)
    kind = params.kind[pe]
    gid = params.gid[pe]
    zero = np.zeros(pe.size, dtype=np.int64)
    u_count = _uniform(seed, gid, ph, zero, 1)
    rate = params.rate[pe]
    paired = (kind == _BINARY) | (kind == _LIGHT)
    # on/off entities: an hour holds pairs (on, off) — lights a triple (on, [brightness], off)
    lam = np.where(paired, rate / 2, rate)
    count = _poisson(u_count, lam)
    # one anchor hour a day with at least one row bounds the search for the state in force
    anchor = ((ph + (params.phase[pe] * 1000).astype(np.int64)) % 24) == 0
    count = np.where(anchor, np.maximum(count, 1), count)
    count = np.where(kind == _LIGHT, count * 3, np.where(kind == _BINARY, count * 2, count))
    count = np.where(kind == _CONSTANT, 0, count)
    total = int(count.sum())
    if total == 0:
        return _empty_rows()
    rp = np.repeat(np.arange(pe.size), count)
    starts = np.cumsum(count) - count
    k = np.arange(total, dtype=np.int64) - starts[rp]
    e = pe[rp]
    h = ph[rp]
    g = gid[rp]
    kd = kind[rp]
    off_us = np.floor(_uniform(seed, g, h, k, 2) * HOUR * _US).astype(np.int64)
    # order rows inside each (entity, hour) by time, then assign states by rank; one sort of
    # (group, offset) packed in an int64 (offsets < 2**32) is much cheaper than a lexsort
    group_key = rp.astype(np.int64) << np.int64(32)
    off_us = np.sort(group_key + off_us) - group_key
    lu = (h * HOUR).astype(np.float64) + off_us / _US
    lu = np.round(lu, 6)
    u_val = _uniform(seed, g, h, k, 3)
    u_un = _uniform(seed, g, h, k, 4)
    value = np.zeros(total)
    brightness = np.zeros(total, dtype=np.int64)
    unavailable = u_un < params.p_unavailable[e]
    lc = np.full(total, np.nan)

    m = kd == _NUMERIC
    if m.any():
        step = np.where(m, params.step[e] * (2 * u_val - 1), 0.0)
        cs = np.cumsum(step)
        first = starts[rp]
        walk = cs - (cs[first] - step[first])
        # the hour's baseline: daily swing plus a per-hour offset (hashed once per hour, not per row)
        u_base = _uniform(seed, gid, ph, zero, 5)[rp]
        day_angle = 2 * math.pi * (h * HOUR) / 86400 + params.phase[e]
        base = params.base[e] + params.amp[e] * np.sin(day_angle) + params.step[e] * 4 * (u_base - 0.5)
        v = np.clip(base + walk, params.lo[e], params.hi[e])
        scale = 10.0 ** params.decimals[e]
        value = np.where(m, np.round(v * scale) / scale, value)

    im = np.nonzero(kd == _METER)[0]
    if im.size:
        em = e[im]
        t = lu[im]
        start = meter_cycle_start(t, params.cycle_days[em], params.cycle_offset[em])
        since = meter_total(t, params.daily[em], params.phase[em]) - meter_total(start, params.daily[em], params.phase[em])
        value[im] = np.round(np.maximum(since, 0.0), 3)

    m = (kd == _BINARY) | (kd == _LIGHT)
    if m.any():
        period = np.where(kd == _LIGHT, 3, 2)
        slot = k % period
        is_on = slot < period - 1
        value = np.where(m, (is_on ^ params.inverted[e]).astype(np.float64), value)
        # only the first row of a pair/triple may become unavailable
        unavailable = np.where(m, unavailable & (slot == 0), unavailable)
        light = kd == _LIGHT
        if light.any():
            # the middle slot of a light triple is an optional attribute-only brightness change
            attr_slot = light & (slot == 1)
            level = (u_val * len(BRIGHTNESS_LEVELS)).astype(np.int64)
            levels = np.asarray(BRIGHTNESS_LEVELS)
            # the attribute row always differs from the "on" row before it
            shift = 1 + (u_un * (len(BRIGHTNESS_LEVELS) - 1)).astype(np.int64)
            changed = levels[(np.roll(level, 1) + shift) % len(BRIGHTNESS_LEVELS)]
            brightness = np.where(light & is_on, np.where(attr_slot, changed, levels[level]), 0)
            keep_attr = (u_val * 7919) % 1.0 < 0.5
            drop = attr_slot & (~keep_attr | np.roll(unavailable, 1))
            lc = np.where(attr_slot, np.roll(lu, 1), lc)
            keep = ~drop
            return _finish(Rows(e[keep], lu[keep], lc[keep], value[keep], unavailable[keep], brightness[keep]))

    return _finish(Rows(e, lu, lc, value, unavailable, brightness))


def _finish(rows: Rows) -> Rows:
    rows.value = np.where(rows.unavailable, np.nan, rows.value)
    rows.brightness = np.where(rows.unavailable, 0, rows.brightness)
    rows.lc = np.where(rows.unavailable, np.nan, rows.lc)
    return rows


def dedupe(rows: Rows) -> Rows:
    """Drop rows whose state and attributes equal the previous row of the same entity."""
    if rows.pos.size < 2:
        return rows
    same_entity = rows.pos[1:] == rows.pos[:-1]
    same_state = ((rows.value[1:] == rows.value[:-1])
                  | (np.isnan(rows.value[1:]) & np.isnan(rows.value[:-1])))
    same_attr = rows.brightness[1:] == rows.brightness[:-1]
    drop = np.concatenate([[False], same_entity & same_state & same_attr])
    return rows.take(~drop)


class HistoryGenerator:
    """Serves generated rows for any window of a list of sources."""

    def __init__(self, seed: int, sources: list[Source]):
        self.seed = seed
        self.sources = sources
        self.params = _Params(sources)

    def window(self, t0: float, t1: float, idx: np.ndarray | None = None) -> tuple[Rows, Rows]:
        """(state in force strictly before ``t0`` per entity, rows with t0 < lu < t1).

        ``idx`` (sorted source positions) limits the work to some entities; ``Rows.pos`` are positions.
        """
        n = self.params.n
        idx = np.arange(n, dtype=np.int64) if idx is None else np.asarray(idx, dtype=np.int64)
        h0 = math.floor(t0 / HOUR)
        h1 = math.floor(t1 / HOUR)
        raw = generate_raw(self.seed, self.params, idx, h0 - 1, h1)
        raw = raw.take(raw.lu < t1)
        # every entity needs a raw row before t0 (the state in force, and the predecessor
        # that de-duplicates the first row of the window); search further back only for those lacking one
        before = np.bincount(raw.pos[raw.lu < t0], minlength=n)
        missing = idx[before[idx] < 1]
        parts = [raw]
        h = h0 - 2
        span = 1
        while missing.size and h > h0 - 1 - _MAX_LOOKBACK_HOURS:
            lo = max(h - span + 1, h0 - _MAX_LOOKBACK_HOURS)
            extra = generate_raw(self.seed, self.params, missing, lo, h)
            parts.append(extra)
            before = before + np.bincount(extra.pos, minlength=n)
            missing = missing[before[missing] < 1]
            h = lo - 1
            span *= 4
        rows = dedupe(Rows.concat(parts[:0:-1] + parts[:1]))
        first_in = rows.lu > t0
        prior = rows.take(~first_in & (rows.lu < t0))
        # last prior row per entity: the state in force at t0
        if prior.pos.size:
            last = np.concatenate([prior.pos[1:] != prior.pos[:-1], [True]])
            prior = prior.take(last)
        window = rows.take(first_in)
        # constants: one state forever, no rows
        const = idx[self.params.kind[idx] == _CONSTANT]
        if const.size:
            prior = Rows.concat([Rows(const, np.full(const.size, -math.inf), np.full(const.size, np.nan),
                                             np.zeros(const.size), np.zeros(const.size, bool),
                                             np.zeros(const.size, np.int64)), prior])
        return prior, window
