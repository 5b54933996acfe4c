"""The home's time zone and its local days and months."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ha_pipeline.timeseries.calendar import (
    TimeZoneError,
    ha_time_zone,
    home_time_zone,
    periods,
    record_ha_time_zone,
    zone_mismatch,
)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def test_configured_zone_wins_then_ha_s_then_utc(tmp_path) -> None:
    env = {"HA_PIPELINE_DATA_DIR": str(tmp_path)}
    assert ha_time_zone(tmp_path) is None and home_time_zone(env) == "UTC"
    record_ha_time_zone("Asia/Kolkata", tmp_path)
    assert ha_time_zone(tmp_path) == "Asia/Kolkata" and home_time_zone(env) == "Asia/Kolkata"
    assert home_time_zone({**env, "HA_PIPELINE_TIME_ZONE": "America/New_York"}) == "America/New_York"
    record_ha_time_zone(None, tmp_path)  # HA reported none
    assert home_time_zone(env) == "UTC"


def test_an_unreadable_record_means_no_zone_recorded(tmp_path) -> None:
    (tmp_path / "home.json").write_text("{not json")
    assert ha_time_zone(tmp_path) is None


def test_invalid_zone_names_are_one_sentence(tmp_path) -> None:
    with pytest.raises(TimeZoneError, match=r"^HA_PIPELINE_TIME_ZONE 'Mars/Olympus' is not a time zone name: use an IANA"):
        home_time_zone({"HA_PIPELINE_DATA_DIR": str(tmp_path), "HA_PIPELINE_TIME_ZONE": "Mars/Olympus"})
    record_ha_time_zone("Not/AZone", tmp_path)
    with pytest.raises(TimeZoneError, match=r"^Home Assistant's time zone \(recorded in .*home.json\) 'Not/AZone'"):
        home_time_zone({"HA_PIPELINE_DATA_DIR": str(tmp_path)})


def test_mismatch_names_both_zones_and_what_to_do() -> None:
    assert zone_mismatch("Europe/Amsterdam", "Europe/Amsterdam", {}) is None
    assert zone_mismatch("UTC", None, {}) is None
    configured = zone_mismatch("UTC", "Europe/Amsterdam", {"HA_PIPELINE_TIME_ZONE": "UTC"})
    assert "'UTC'" in configured and "'Europe/Amsterdam'" in configured and "unset HA_PIPELINE_TIME_ZONE" in configured
    stale = zone_mismatch("UTC", "Europe/Amsterdam", {})
    assert "'Europe/Amsterdam'" in stale and "reload the code location" in stale


@pytest.mark.parametrize(
    ("zone", "start", "end", "period", "expected"),
    [
        ("Europe/Amsterdam", "2026-10-24T22:00Z", "2026-10-26T23:00Z", "day",
         [("2026-10-24T22:00Z", "2026-10-25T23:00Z"), ("2026-10-25T23:00Z", "2026-10-26T23:00Z")]),
        ("Europe/Amsterdam", "2026-03-28T23:00Z", "2026-03-29T22:00Z", "day", [("2026-03-28T23:00Z", "2026-03-29T22:00Z")]),
        ("Asia/Kolkata", "2026-10-24T18:30Z", "2026-10-25T18:30Z", "day", [("2026-10-24T18:30Z", "2026-10-25T18:30Z")]),
        ("Europe/Amsterdam", "2026-02-28T23:00Z", "2026-04-30T22:00Z", "month",
         [("2026-02-28T23:00Z", "2026-03-31T22:00Z"), ("2026-03-31T22:00Z", "2026-04-30T22:00Z")]),
        ("Asia/Kolkata", "2026-11-30T18:30Z", "2027-01-31T18:30Z", "month",
         [("2026-11-30T18:30Z", "2026-12-31T18:30Z"), ("2026-12-31T18:30Z", "2027-01-31T18:30Z")]),
    ],
)
def test_local_periods_as_utc_instants(zone, start, end, period, expected) -> None:
    assert periods(_utc(start), _utc(end), period, zone) == [(_utc(a), _utc(b)) for a, b in expected]
