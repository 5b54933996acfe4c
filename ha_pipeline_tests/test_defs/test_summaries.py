"""Daily and monthly summary assets and their checks, on the test bed's real InfluxDB 1.x."""

from datetime import datetime, timezone

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from ha_pipeline.defs import checks
from ha_pipeline.defs.assets import summaries
from ha_pipeline.defs.partitions import daily_partitions
from ha_pipeline.timeseries.calendar import record_ha_time_zone
from ha_pipeline.timeseries.rollups import FIELD_COLUMNS, SUMMARY_COLUMNS, TAG_COLUMNS, reduce_hourly

pytestmark = pytest.mark.real_influx

DAILY = [
    summaries.daily_summaries_asset,
    checks.daily_summaries_finite,
    checks.daily_mean_matches_hourly,
    checks.time_zone_matches_ha,
]
MONTHLY = [summaries.monthly_summaries_asset, checks.monthly_summaries_finite, checks.monthly_mean_matches_hourly]
MONTH = datetime(2025, 2, 1, tzinfo=timezone.utc)


@pytest.fixture
def influx(monkeypatch, request, influx_v1):
    prefix = "s_" + request.node.name[:40]
    for key in ("EVENTS_HOURLY", "EVENTS_DAILY", "EVENTS_MONTHLY"):
        monkeypatch.setenv(f"INFLUXDB_BUCKET_{key}", f"{prefix}_{key.lower()}")
    return influx_v1


def _write_hours(influx) -> pd.DataFrame:
    """Four weeks of hourly rows for two entities, hours with a mean covering different times."""
    k = np.arange(28 * 24)
    frames = []
    for entity_id in ("sensor.a", "sensor.b"):
        frames.append(pd.DataFrame({
            "time": pd.date_range(MONTH, periods=len(k), freq="h"), "entity_id": entity_id, "domain": "sensor",
            "mean": 20 + np.sin(k / 5), "min": 19 + np.sin(k / 5), "max": 21 + np.sin(k / 5), "last": 20.5,
            "count": 3, "unavailable_seconds": 0.0, "on_seconds": np.nan, "sum_increase": np.nan,
            "covered_seconds": 900.0 * (1 + k % 4),
        }).reindex(columns=list(SUMMARY_COLUMNS)))
    hourly = pd.concat(frames, ignore_index=True)
    spec = influx.bucket_specs()["events_hourly"]
    backend = influx.backend()
    backend.ensure_bucket(spec)
    tags = [c for c in TAG_COLUMNS if hourly[c].notna().any()]
    backend.write(spec.name, hourly, spec.measurement, tags, list(FIELD_COLUMNS))
    return hourly


def test_monthly_summaries_are_ha_s_reduction_of_the_month(influx):
    hourly = _write_hours(influx)
    with dg.instance_for_test() as instance:
        result = dg.materialize(MONTHLY, resources={"influxdb": influx}, instance=instance,
                                partition_key="2025-02-01")
        assert result.success
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert evaluations["monthly_mean_matches_hourly"].passed
        assert evaluations["monthly_summaries_finite"].passed
    spec = influx.bucket_specs()["events_monthly"]
    stored = influx.backend().read(spec.name, spec.measurement, MONTH, datetime(2025, 3, 1, tzinfo=timezone.utc))
    assert list(stored["entity_id"]) == ["sensor.a", "sensor.b"]
    assert (stored["time"] == pd.Timestamp(MONTH)).all() and (stored["count"] == 3 * 28 * 24).all()
    expected = reduce_hourly(hourly, "month", "UTC")
    assert np.allclose(stored["mean"], expected["mean"], rtol=1e-12)
    # not the covered-seconds weighted mean the daily rollup used to store
    weighted = (hourly["mean"] * hourly["covered_seconds"]).sum() / hourly["covered_seconds"].sum()
    assert abs(stored["mean"].iat[0] - weighted) > 1e-4


def test_a_day_rolled_up_from_stale_hours_fails_the_mean_check(influx):
    hourly = _write_hours(influx)
    with dg.instance_for_test() as instance:
        day = dict(resources={"influxdb": influx}, instance=instance, partition_key="2025-02-03",
                   selection=dg.AssetSelection.assets(summaries.daily_summaries_asset))
        assert dg.materialize(DAILY, **day).success
        spec = influx.bucket_specs()["events_hourly"]
        stale = hourly[hourly["time"] == pd.Timestamp("2025-02-03T05:00Z")].assign(mean=99.0)
        influx.backend().write(spec.name, stale, spec.measurement, ["entity_id", "domain"], ["mean"])
        again = dg.materialize(DAILY, resources={"influxdb": influx}, instance=instance,
                               selection=dg.AssetSelection.checks(checks.daily_mean_matches_hourly))
        evaluations = {e.check_name: e for e in again.get_asset_check_evaluations()}
    assert not evaluations["daily_mean_matches_hourly"].passed
    assert evaluations["daily_mean_matches_hourly"].metadata["inconsistent"].value == 2


def test_time_zone_check_warns_when_days_are_not_in_ha_s_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("HA_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HA_PIPELINE_TIME_ZONE", raising=False)

    def evaluate() -> dg.AssetCheckEvaluation:
        with dg.instance_for_test() as instance:
            result = dg.materialize(DAILY, instance=instance, resources={"influxdb": None},
                                    selection=dg.AssetSelection.checks(checks.time_zone_matches_ha))
            [evaluation] = result.get_asset_check_evaluations()
        return evaluation

    assert daily_partitions.timezone == "UTC"
    assert evaluate().passed  # no discovery yet
    record_ha_time_zone("UTC", tmp_path)
    assert evaluate().passed
    record_ha_time_zone("Europe/Amsterdam", tmp_path)
    evaluation = evaluate()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "'UTC'" in evaluation.description and "'Europe/Amsterdam'" in evaluation.description
    assert "reload the code location" in evaluation.description
    monkeypatch.setenv("HA_PIPELINE_TIME_ZONE", "UTC")
    assert "unset HA_PIPELINE_TIME_ZONE" in evaluate().description
