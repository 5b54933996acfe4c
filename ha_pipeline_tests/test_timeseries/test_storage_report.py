import ast
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ha_pipeline.timeseries import storage_report as sr

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_module_does_not_import_dagster():
    tree = ast.parse(Path(sr.__file__).read_text())
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not {m for m in imported if m.split(".")[0] in {"dagster", "sqlalchemy", "websockets"}}


def test_growth_is_the_fitted_slope_per_day():
    samples = [(T0 + timedelta(days=d), 1000 + 250 * d) for d in range(5)]
    assert sr.growth_per_day(samples) == pytest.approx(250)


def test_growth_needs_two_distinct_times():
    assert sr.growth_per_day([(T0, 5)]) is None
    assert sr.growth_per_day([(T0, 5), (T0, 9)]) is None


def test_growth_over_noisy_samples_follows_the_trend_not_the_last_jump():
    # compaction shrinks the last sample; last-minus-first would say ~0
    samples = [(T0, 100.0), (T0 + timedelta(days=1), 300.0), (T0 + timedelta(days=2), 500.0), (T0 + timedelta(days=3), 110.0)]
    assert sr.growth_per_day(samples) > 0


@pytest.mark.parametrize(
    ("current", "growth", "budget", "expected"),
    [
        (1000, 100, 2000, 10.0),
        (2500, 100, 2000, 0.0),
        (1000, 0, 2000, None),
        (1000, -5, 2000, None),
        (1000, None, 2000, None),
        (1000, 100, None, None),
    ],
)
def test_days_until_budget(current, growth, budget, expected):
    assert sr.days_until_budget(current, growth, budget) == expected


def test_top_talkers_ranks_rates_and_flags_chatty():
    counts = {f"sensor.s{i}": i * 100 for i in range(1, 15)} | {"sensor.power": 9000}
    talkers = sr.top_talkers(counts, window_days=2.0, chatty_events_per_day=1000)
    assert len(talkers) == 10
    assert talkers[0].entity_id == "sensor.power"
    assert talkers[0].events_per_day == 4500
    assert [t.events for t in talkers] == sorted((t.events for t in talkers), reverse=True)
    # sensor.s14: 1400 events over 2 days = 700/day, under the threshold
    assert {t.entity_id for t in talkers if t.chatty} == {"sensor.power"}
    snippet = sr.exclude_suggestion(talkers)
    assert snippet.splitlines()[:3] == ["recorder:", "  exclude:", "    entities:"]
    assert "      - sensor.power" in snippet and "sensor.s13" not in snippet


def test_no_suggestion_when_nobody_is_chatty():
    assert sr.exclude_suggestion(sr.top_talkers({"light.a": 3}, 1.0)) is None


def _stats(events_bytes: int) -> dict:
    return {
        "events": {"bytes": events_bytes, "series": 160, "points": 50_000},
        "events_hourly": {"bytes": 2_000, "series": 160, "points": 3_840},
    }


def test_build_report_uses_history_for_growth_and_budget():
    history = []
    for day in range(3):
        history.append(
            sr.build_report(
                generated_at=T0 + timedelta(days=day),
                bucket_stats=_stats(1_000_000 + day * 100_000),
                points_last_day={"events": 10},
                history=list(history),
                sql_bytes=50_000,
                sql_rows={"entities": 10},
                events_by_entity={},
            )
        )
    report = sr.build_report(
        generated_at=T0 + timedelta(days=3),
        bucket_stats=_stats(1_300_000),
        points_last_day={"events": 24_000, "events_hourly": 3_840},
        history=history,
        sql_bytes=50_000,
        sql_rows={"entities": 160, "devices": 40},
        events_by_entity={"sensor.power": 5000, "light.kitchen": 12},
        budget_bytes=2_352_000,
    )
    assert report["buckets"]["events"]["growth_bytes_per_day"] == pytest.approx(100_000)
    assert report["buckets"]["events_hourly"]["growth_bytes_per_day"] == pytest.approx(0)
    assert report["influxdb_bytes"] == 1_302_000
    assert report["total_bytes"] == 1_352_000
    assert report["growth_bytes_per_day"] == pytest.approx(100_000)
    assert report["days_until_budget"] == pytest.approx(10.0)
    assert report["buckets"]["events"]["points_per_day"] == 24_000
    assert report["top_entities"][0] == {"entity_id": "sensor.power", "events": 5000, "events_per_day": 5000.0, "chatty": True}
    assert report["reports_in_history"] == 3
    json.dumps(report)  # persisted as JSON


def test_first_report_has_no_growth_and_markdown_says_so():
    report = sr.build_report(
        generated_at=T0,
        bucket_stats=_stats(1_000_000),
        points_last_day={},
        history=[],
        sql_bytes=None,
        sql_rows={"entities": 1},
        events_by_entity={"sensor.power": 5000},
        budget_bytes=10 * sr.GIB,
    )
    assert report["growth_bytes_per_day"] is None and report["days_until_budget"] is None
    md = sr.to_markdown(report)
    assert "| events | 976.6 KiB | 160 | 50,000 | 0 | n/a |" in md
    assert "never (not growing)" in md
    assert "| sensor.power | 5,000 | yes |" in md
    assert "```yaml\nrecorder:" in md


def test_human_bytes():
    assert sr.human_bytes(512) == "512 B"
    assert sr.human_bytes(1536) == "1.5 KiB"
    assert sr.human_bytes(3 * sr.GIB) == "3.0 GiB"
    assert sr.human_bytes(None) == "n/a"


def test_chart_is_a_png_that_grows_with_content():
    reports = [
        sr.build_report(
            generated_at=T0 + timedelta(days=d),
            bucket_stats=_stats(1_000_000 + d * 50_000),
            points_last_day={},
            history=[],
            sql_bytes=1000,
            sql_rows={},
            events_by_entity={},
        )
        for d in range(4)
    ]
    png = sr.size_chart_png(reports)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 10_000
