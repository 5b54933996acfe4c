"""Storage report: how big every bucket is, how fast it grows, and who makes it grow.

Pure functions over numbers the backends and the metadata store already measured, so the
report can be rebuilt from stored history and tested without a server. No Dagster here.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

GIB = 1024**3

# HA writes one state row per change; more than one a minute for a whole day is almost
# always a sensor polled too often or a diagnostic entity nobody charts.
DEFAULT_CHATTY_EVENTS_PER_DAY = 1440.0


@dataclass(frozen=True)
class Talker:
    """One entity's event rate over the report's window."""

    entity_id: str
    events: int
    events_per_day: float
    chatty: bool


def growth_per_day(samples: Sequence[tuple[datetime, float]]) -> float | None:
    """Least-squares slope in units per day; None with fewer than two distinct times.

    A fitted slope rather than last-minus-first, because TSM compactions make single
    samples jump both ways.
    """
    if len(samples) < 2:
        return None
    t0 = min(t for t, _ in samples)
    days = np.array([(t - t0).total_seconds() / 86400.0 for t, _ in samples])
    values = np.array([float(v) for _, v in samples])
    if np.ptp(days) <= 0:
        return None
    slope = np.polyfit(days, values, 1)[0]
    return float(slope)


def days_until_budget(current_bytes: float, growth_bytes_per_day: float | None, budget_bytes: float | None) -> float | None:
    """Days until `budget_bytes` is reached at the current growth; 0 if already over.

    None when there is no budget, or when the store is not growing (never reached).
    """
    if budget_bytes is None or budget_bytes <= 0:
        return None
    if current_bytes >= budget_bytes:
        return 0.0
    if growth_bytes_per_day is None or growth_bytes_per_day <= 0:
        return None
    return float((budget_bytes - current_bytes) / growth_bytes_per_day)


def top_talkers(
    events_by_entity: Mapping[str, int],
    window_days: float,
    n: int = 10,
    chatty_events_per_day: float = DEFAULT_CHATTY_EVENTS_PER_DAY,
) -> list[Talker]:
    """The `n` entities with the most events per day, highest first (ties by entity id)."""
    if window_days <= 0:
        raise ValueError(f"window_days must be positive, got {window_days}")
    ranked = sorted(events_by_entity.items(), key=lambda kv: (-int(kv[1]), kv[0]))[:n]
    return [
        Talker(
            entity_id=entity_id,
            events=int(events),
            events_per_day=int(events) / window_days,
            chatty=int(events) / window_days > chatty_events_per_day,
        )
        for entity_id, events in ranked
    ]


def exclude_suggestion(talkers: Sequence[Talker]) -> str | None:
    """A Home Assistant `recorder:` exclude snippet for the chatty entities, or None."""
    chatty = [t.entity_id for t in talkers if t.chatty]
    if not chatty:
        return None
    lines = ["recorder:", "  exclude:", "    entities:"]
    lines += [f"      - {entity_id}" for entity_id in chatty]
    return "\n".join(lines)


def _history_samples(history: Sequence[Mapping[str, Any]], key: tuple[str, ...]) -> list[tuple[datetime, float]]:
    samples = []
    for report in history:
        value: Any = report
        for part in key:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None or report.get("generated_at") is None:
            continue
        samples.append((parse_time(report["generated_at"]), float(value)))
    return samples


def parse_time(value: str | datetime) -> datetime:
    """A report timestamp as an aware UTC datetime (naive ones are taken as UTC)."""
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def build_report(
    *,
    generated_at: datetime,
    bucket_stats: Mapping[str, Mapping[str, int]],
    points_last_day: Mapping[str, int],
    history: Sequence[Mapping[str, Any]],
    sql_bytes: int | None,
    sql_rows: Mapping[str, int],
    events_by_entity: Mapping[str, int],
    window_days: float = 1.0,
    budget_bytes: int | None = None,
    chatty_events_per_day: float = DEFAULT_CHATTY_EVENTS_PER_DAY,
) -> dict[str, Any]:
    """Assemble one JSON-ready report; growth is fitted over `history` plus this report.

    `bucket_stats` is the backend's `storage_stats()` (`bytes`, `series`, `points` per bucket);
    `history` holds earlier reports as returned by this function.
    """
    generated_at = parse_time(generated_at)
    buckets: dict[str, dict[str, Any]] = {}
    for name in sorted(bucket_stats):
        stats = bucket_stats[name]
        size = int(stats.get("bytes") or 0)
        growth = growth_per_day(_history_samples(history, ("buckets", name, "bytes")) + [(generated_at, size)])
        buckets[name] = {
            "bytes": size,
            "series": int(stats.get("series") or 0),
            "points": int(stats.get("points") or 0),
            "points_per_day": int(points_last_day.get(name, 0)),
            "growth_bytes_per_day": growth,
        }
    influx_bytes = sum(b["bytes"] for b in buckets.values())
    total_bytes = influx_bytes + int(sql_bytes or 0)
    total_growth = growth_per_day(_history_samples(history, ("total_bytes",)) + [(generated_at, total_bytes)])
    talkers = top_talkers(events_by_entity, window_days, chatty_events_per_day=chatty_events_per_day)
    return {
        "generated_at": generated_at.isoformat(),
        "buckets": buckets,
        "influxdb_bytes": influx_bytes,
        "sql_bytes": sql_bytes,
        "sql": {"bytes": sql_bytes, "rows": {k: int(v) for k, v in sorted(sql_rows.items())}},
        "total_bytes": total_bytes,
        "growth_bytes_per_day": total_growth,
        "budget_bytes": budget_bytes,
        "days_until_budget": days_until_budget(total_bytes, total_growth, budget_bytes),
        "reports_in_history": len(history),
        "top_entities": [
            {"entity_id": t.entity_id, "events": t.events, "events_per_day": t.events_per_day, "chatty": t.chatty}
            for t in talkers
        ],
        "exclude_suggestion": exclude_suggestion(talkers),
    }


def human_bytes(n: float | None) -> str:
    """1536 -> '1.5 KiB'; None -> 'n/a'."""
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _fmt_growth(g: float | None) -> str:
    return "n/a" if g is None else f"{human_bytes(g)}/day"


def _fmt_days(d: float | None) -> str:
    return "never (not growing)" if d is None else f"{d:,.0f}"


def to_markdown(report: Mapping[str, Any]) -> str:
    """The report as markdown tables (what the Dagster UI shows)."""
    out = [
        "| bucket | on disk | series | points | points/day | growth |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, b in report["buckets"].items():
        out.append(
            f"| {name} | {human_bytes(b['bytes'])} | {b['series']:,} | {b['points']:,} | "
            f"{b['points_per_day']:,} | {_fmt_growth(b['growth_bytes_per_day'])} |"
        )
    sql = report["sql"]
    out += [
        "",
        f"**Total** {human_bytes(report['total_bytes'])} (InfluxDB {human_bytes(report['influxdb_bytes'])}, "
        f"SQL {human_bytes(sql['bytes'])}); growth {_fmt_growth(report['growth_bytes_per_day'])}.",
    ]
    if report.get("budget_bytes"):
        out.append(
            f"Budget {human_bytes(report['budget_bytes'])}: days until reached "
            f"{_fmt_days(report['days_until_budget'])}."
        )
    if sql["rows"]:
        out += ["", "| SQL table | rows |", "|---|---:|"]
        out += [f"| {t} | {n:,} |" for t, n in sql["rows"].items()]
    if report["top_entities"]:
        out += ["", "| top entity | events/day | chatty |", "|---|---:|---|"]
        out += [
            f"| {t['entity_id']} | {t['events_per_day']:,.0f} | {'yes' if t['chatty'] else ''} |"
            for t in report["top_entities"]
        ]
    if report.get("exclude_suggestion"):
        out += ["", "Suggestion: exclude the chatty entities from HA's recorder:", "", "```yaml", report["exclude_suggestion"], "```"]
    return "\n".join(out)


def size_chart_png(reports: Sequence[Mapping[str, Any]], width_in: float = 6.0, height_in: float = 3.0) -> bytes:
    """PNG line chart of each bucket's bytes (and the total) over the given reports."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ordered = sorted(reports, key=lambda r: parse_time(r["generated_at"]))
    times = [parse_time(r["generated_at"]) for r in ordered]
    names = sorted({name for r in ordered for name in r.get("buckets", {})})
    fig = Figure(figsize=(width_in, height_in), dpi=100)
    ax = fig.add_subplot()
    for name in names:
        ys = [r.get("buckets", {}).get(name, {}).get("bytes") for r in ordered]
        ax.plot(times, [np.nan if y is None else y / 1024**2 for y in ys], marker="o", markersize=3, label=name)
    ax.plot(times, [r.get("total_bytes", 0) / 1024**2 for r in ordered], color="black", linewidth=2, label="total")
    ax.set_ylabel("MiB on disk")
    ax.set_title("Storage over time")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
