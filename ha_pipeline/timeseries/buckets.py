"""Bucket specs and InfluxDB connection settings, both read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

DEFAULT_URL = "http://127.0.0.1:8086"
#: ``retention_days`` of a bucket that keeps its points forever.
INFINITE_RETENTION = 0


class InfluxConfigError(ValueError):
    """An ``INFLUXDB_*`` or retention setting is malformed."""

    permanent = True


@dataclass(frozen=True)
class BucketSpec:
    """One bucket (1.x: a database whose default retention policy carries the retention).

    ``retention_days`` 0 keeps points forever (``INFINITE_RETENTION``).
    """

    name: str
    measurement: str
    retention_days: int
    shard_duration_days: int

    def __post_init__(self) -> None:
        if not self.name:
            raise InfluxConfigError("bucket name must not be empty")
        if self.retention_days < 0:
            raise InfluxConfigError(
                f"bucket {self.name!r}: retention_days must be ≥ 0 (0 = forever), got {self.retention_days}"
            )
        if self.shard_duration_days < 1 or (not self.keeps_forever and self.shard_duration_days > self.retention_days):
            raise InfluxConfigError(
                f"bucket {self.name!r}: shard_duration_days must be between 1 and the retention "
                f"({self.retention_days}), got {self.shard_duration_days}"
            )

    @property
    def keeps_forever(self) -> bool:
        return self.retention_days == INFINITE_RETENTION

    @property
    def retention_seconds(self) -> int:
        """The retention in seconds; 0 means forever (InfluxDB 2's "no expiry")."""
        return self.retention_days * 86_400

    @property
    def retention_text(self) -> str:
        """The retention as a reader says it ("365 d", "forever")."""
        return "forever" if self.keeps_forever else f"{self.retention_days} d"

    @property
    def shard_duration_seconds(self) -> int:
        return self.shard_duration_days * 86_400


# key → (default name, measurement, retention env var, default retention days, shard days).
# Shard groups: 7 d for raw data and snapshots (InfluxDB's own choice for > 6 month retention);
# summaries are small, so longer groups keep the shard count (and per-shard overhead) low.
# Monthly summaries are kept forever by default (retention 0).
_DEFAULTS: dict[str, tuple[str, str, str, int, int]] = {
    "events": ("events", "home_assistant_events", "RAW_DATA_RETENTION_DAYS", 365, 7),
    "events_hourly": ("events_hourly", "hourly_events", "HOURLY_SUMMARY_RETENTION_DAYS", 730, 30),
    "events_daily": ("events_daily", "daily_events", "DAILY_SUMMARY_RETENTION_DAYS", 2555, 90),
    "events_monthly": ("events_monthly", "monthly_events", "MONTHLY_SUMMARY_RETENTION_DAYS", INFINITE_RETENTION, 365),
    "devices": ("devices", "devices", "REGISTRY_SNAPSHOT_RETENTION_DAYS", 90, 7),
    "entities": ("entities", "entities", "REGISTRY_SNAPSHOT_RETENTION_DAYS", 90, 7),
}


def _retention_days(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InfluxConfigError(f"{name} must be a whole number of days, got {raw!r}") from None
    if value < 0:
        raise InfluxConfigError(f"{name} must be a number of days, or 0 to keep points forever, got {value}")
    return value


def default_bucket_specs(environ: Mapping[str, str] = os.environ) -> dict[str, BucketSpec]:
    """The six buckets of DESIGN.md; names from ``INFLUXDB_BUCKET_<KEY>``, retention from env."""
    specs = {}
    for key, (name, measurement, retention_var, retention, shard) in _DEFAULTS.items():
        days = _retention_days(environ, retention_var, retention)
        specs[key] = BucketSpec(
            name=environ.get(f"INFLUXDB_BUCKET_{key.upper()}", "").strip() or name,
            measurement=measurement,
            retention_days=days,
            shard_duration_days=shard if days == INFINITE_RETENTION else min(shard, days),
        )
    return specs


@dataclass(frozen=True)
class InfluxSettings:
    """Connection settings; ``repr`` and ``str`` never show the token or password."""

    url: str = DEFAULT_URL
    api_version: int = 2
    token: str | None = field(default=None, repr=False)
    org: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 60.0
    verify_ssl: bool = True

    def __post_init__(self) -> None:
        if self.api_version not in (1, 2):
            raise InfluxConfigError(f"INFLUXDB_API_VERSION must be 1 or 2, got {self.api_version!r}")
        url, username, password = split_credentials(self.url)
        if not url.startswith(("http://", "https://")):
            raise InfluxConfigError(f"INFLUXDB_URL must start with http:// or https://, got {url!r}")
        if username is not None and self.api_version == 2:
            raise InfluxConfigError(
                f"INFLUXDB_URL {url} carries a user name and password, but InfluxDB 2 authenticates "
                "with INFLUXDB_TOKEN: remove them from the URL and set INFLUXDB_TOKEN"
            )
        # InfluxDB 1.x: credentials in the URL are the username/password (explicit settings win);
        # the URL itself keeps none, so it can be shown and logged.
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "username", self.username or username)
        object.__setattr__(self, "password", self.password or password)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> InfluxSettings:
        """Read ``INFLUXDB_URL``, ``INFLUXDB_API_VERSION``, token/org and username/password."""
        return cls(
            url=(environ.get("INFLUXDB_URL", "").strip() or DEFAULT_URL).rstrip("/"),
            api_version=api_version_from_env(environ),
            token=environ.get("INFLUXDB_TOKEN") or None,
            org=environ.get("INFLUXDB_ORG") or None,
            username=environ.get("INFLUXDB_USERNAME") or None,
            password=environ.get("INFLUXDB_PASSWORD") or None,
        )


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without its ``user:password@`` part, and that user and password (None if absent)."""
    parts = urlsplit(url.strip())
    if parts.username is None:
        return url, None, None
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    password = unquote(parts.password) if parts.password is not None else None
    return clean, unquote(parts.username), password


def api_version_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """``INFLUXDB_API_VERSION`` as 1 or 2 (default 2), or a clear error for anything else."""
    raw_version = environ.get("INFLUXDB_API_VERSION", "2").strip() or "2"
    if raw_version not in ("1", "2"):
        raise InfluxConfigError(f"INFLUXDB_API_VERSION must be 1 or 2, got {raw_version!r}")
    return int(raw_version)
