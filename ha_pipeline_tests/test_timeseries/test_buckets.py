"""Bucket specs and connection settings from the environment."""

from __future__ import annotations

import pytest

from ha_pipeline.timeseries.buckets import (
    BucketSpec,
    InfluxConfigError,
    InfluxSettings,
    api_version_from_env,
    default_bucket_specs,
)


def test_defaults_match_design() -> None:
    specs = default_bucket_specs({})
    assert {k: (s.name, s.measurement, s.retention_days) for k, s in specs.items()} == {
        "events": ("events", "home_assistant_events", 365),
        "events_hourly": ("events_hourly", "hourly_events", 730),
        "events_daily": ("events_daily", "daily_events", 2555),
        "events_monthly": ("events_monthly", "monthly_events", 0),
        "devices": ("devices", "devices", 90),
        "entities": ("entities", "entities", 90),
    }


def test_env_overrides_names_and_retention() -> None:
    specs = default_bucket_specs(
        {"INFLUXDB_BUCKET_EVENTS": "ha_raw", "RAW_DATA_RETENTION_DAYS": "3", "REGISTRY_SNAPSHOT_RETENTION_DAYS": "30"}
    )
    assert (specs["events"].name, specs["events"].retention_days, specs["events"].shard_duration_days) == ("ha_raw", 3, 3)
    assert specs["devices"].retention_days == specs["entities"].retention_days == 30


def test_monthly_summaries_kept_forever_unless_set() -> None:
    monthly = default_bucket_specs({})["events_monthly"]
    assert monthly.keeps_forever and monthly.retention_seconds == 0 and monthly.retention_text == "forever"
    monthly = default_bucket_specs({"MONTHLY_SUMMARY_RETENTION_DAYS": "3650"})["events_monthly"]
    assert (monthly.keeps_forever, monthly.retention_days, monthly.retention_text) == (False, 3650, "3650 d")
    # 0 keeps any bucket forever
    assert default_bucket_specs({"RAW_DATA_RETENTION_DAYS": "0"})["events"].keeps_forever


@pytest.mark.parametrize("value", ["-5", "a year"])
def test_bad_retention_refused(value: str) -> None:
    with pytest.raises(InfluxConfigError, match="RAW_DATA_RETENTION_DAYS"):
        default_bucket_specs({"RAW_DATA_RETENTION_DAYS": value})


def test_spec_validates_shard_duration() -> None:
    with pytest.raises(InfluxConfigError):
        BucketSpec("x", "m", retention_days=5, shard_duration_days=7)


def test_settings_from_env_hide_secrets() -> None:
    settings = InfluxSettings.from_env(
        {
            "INFLUXDB_URL": "http://10.0.0.5:8086/",
            "INFLUXDB_API_VERSION": "1",
            "INFLUXDB_USERNAME": "ha",
            "INFLUXDB_PASSWORD": "pw-very-secret",
            "INFLUXDB_TOKEN": "tok-very-secret",
        }
    )
    assert (settings.url, settings.api_version, settings.username) == ("http://10.0.0.5:8086", 1, "ha")
    assert "very-secret" not in repr(settings) and "very-secret" not in str(settings)


def test_settings_defaults_and_bad_version() -> None:
    settings = InfluxSettings.from_env({})
    assert (settings.url, settings.api_version) == ("http://127.0.0.1:8086", 2)
    with pytest.raises(InfluxConfigError, match="INFLUXDB_API_VERSION"):
        InfluxSettings.from_env({"INFLUXDB_API_VERSION": "3"})


@pytest.mark.parametrize("raw", ["x", "3", "v2"])
def test_an_unknown_api_version_is_a_clear_error(raw: str) -> None:
    with pytest.raises(InfluxConfigError, match="INFLUXDB_API_VERSION must be 1 or 2"):
        api_version_from_env({"INFLUXDB_API_VERSION": raw})
    assert api_version_from_env({}) == 2
    assert api_version_from_env({"INFLUXDB_API_VERSION": " 1 "}) == 1
