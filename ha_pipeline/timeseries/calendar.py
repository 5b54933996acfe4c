"""The home's calendar: its time zone, and the local days and months summaries are reduced to.

The zone is ``HA_PIPELINE_TIME_ZONE`` when set, else the zone the last discovery read from HA's
``get_config`` (recorded in ``home.json`` in the data directory, so the code location reads it
at load without a database), else UTC. Days and months start at local midnight, as in HA's
``reduce_day_ts_factory`` / ``reduce_month_ts_factory``: a period is the hourly rows whose
*start* falls on that local date (a DST day has 23 or 25 of them; in Asia/Kolkata a day starts
at 18:30Z, so it is the hours starting 19:00Z … 18:00Z).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Period = Literal["day", "month"]

TIME_ZONE_ENV = "HA_PIPELINE_TIME_ZONE"
HOME_FILE = "home.json"
DEFAULT_TIME_ZONE = "UTC"


class TimeZoneError(ValueError):
    """A time zone name that this Python's zone database does not know."""


def data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``HA_PIPELINE_DATA_DIR`` (default ``.data``), absolute."""
    return Path(environ.get("HA_PIPELINE_DATA_DIR", ".data")).resolve()


def zone_info(name: str, source: str = TIME_ZONE_ENV) -> ZoneInfo:
    """The zone called ``name``, or a TimeZoneError that names ``source`` and what to do."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeZoneError(
            f"{source} {name!r} is not a time zone name: use an IANA name such as "
            "'Europe/Amsterdam' (or install the tzdata package if the name is right)."
        ) from None


def record_ha_time_zone(zone: str | None, directory: Path | None = None) -> None:
    """Remember the zone HA reported (``get_config``) for the next definitions load."""
    directory = directory or data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / HOME_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps({"time_zone": zone}) + "\n")
    temporary.replace(path)


def ha_time_zone(directory: Path | None = None) -> str | None:
    """The zone the last discovery read from HA, or None if no discovery recorded one."""
    try:
        recorded = json.loads(((directory or data_dir()) / HOME_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    zone = recorded.get("time_zone") if isinstance(recorded, dict) else None
    return zone if isinstance(zone, str) and zone else None


def home_time_zone(environ: Mapping[str, str] = os.environ) -> str:
    """The home's zone name: ``HA_PIPELINE_TIME_ZONE``, else HA's (last discovery), else UTC."""
    if configured := environ.get(TIME_ZONE_ENV, "").strip():
        zone_info(configured)
        return configured
    directory = data_dir(environ)
    if recorded := ha_time_zone(directory):
        zone_info(recorded, f"Home Assistant's time zone (recorded in {directory / HOME_FILE})")
        return recorded
    return DEFAULT_TIME_ZONE


def zone_mismatch(in_use: str, ha_zone: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """A sentence saying what to do when the zone in use is not HA's, else None."""
    if ha_zone is None or ha_zone == in_use:
        return None
    if environ.get(TIME_ZONE_ENV, "").strip():
        return (
            f"{TIME_ZONE_ENV} is {in_use!r} but Home Assistant's time zone is {ha_zone!r}, so days and "
            f"months will not match HA's statistics: unset {TIME_ZONE_ENV} (or set it to {ha_zone!r}) "
            "and reload the code location."
        )
    return (
        f"Days and months are in {in_use!r} but the last discovery read Home Assistant's time zone "
        f"{ha_zone!r}: reload the code location so the partitions follow {ha_zone!r}."
    )


def period_start(moment: datetime, period: Period, zone: str) -> datetime:
    """The UTC instant the local day or month holding ``moment`` starts (HA's local midnight)."""
    local = moment.astimezone(ZoneInfo(zone))
    start = datetime(local.year, local.month, 1 if period == "month" else local.day, tzinfo=local.tzinfo)
    return start.astimezone(timezone.utc)


def next_period_start(start: datetime, period: Period, zone: str) -> datetime:
    """The UTC instant the local period after the one starting at ``start`` starts."""
    local = start.astimezone(ZoneInfo(zone))
    if period == "day":
        following = (local.replace(tzinfo=None) + timedelta(days=1)).date()
    else:
        following = (local.replace(day=28, tzinfo=None) + timedelta(days=4)).replace(day=1).date()
    return datetime(following.year, following.month, following.day, tzinfo=local.tzinfo).astimezone(timezone.utc)


def periods(start: datetime, end: datetime, period: Period, zone: str) -> list[tuple[datetime, datetime]]:
    """The local periods ``[start, end)`` is made of, as UTC instants (start on a period start)."""
    windows = []
    current = period_start(start, period, zone)
    while current < end:
        following = next_period_start(current, period, zone)
        windows.append((current, following))
        current = following
    return windows
