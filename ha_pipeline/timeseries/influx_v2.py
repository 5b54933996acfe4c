"""InfluxDB 2.x backend with ``influxdb-client``: buckets with retention rules, Flux, delete API.

Writes go through ``WriteApi`` in SYNCHRONOUS mode, one call per batch, so every error reaches
the shared retry/classification logic in ``backend.py`` (the async mode would lose them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import requests
from influxdb_client import BucketRetentionRules, InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families
from urllib3.exceptions import HTTPError as Urllib3Error

from ha_pipeline.timeseries.backend import (
    EnsureResult,
    InfluxAuthError,
    InfluxConnectionError,
    InfluxError,
    InfluxQueryError,
    TagFilter,
    TimeseriesBackend,
    TransientWriteError,
    WriteReply,
    expand_tag_filter,
    not_influxdb,
    redact_url,
    to_ns,
    to_utc,
    truncate,
    window_starts,
)
from ha_pipeline.timeseries.buckets import BucketSpec, InfluxSettings
from ha_pipeline.timeseries.line_protocol import decode_tag_column, encode_tag_value

log = logging.getLogger(__name__)

# The /metrics gauge of one shard's size on disk, labelled bucket=<bucket id>, engine, id, path,
# walPath. tsm1's Engine.DiskSize() is TSM files + WAL segments, so the per-shard gauges
# storage_tsm_files_disk_bytes and storage_wal_size are parts of it and are not added again.
SHARD_DISK_SIZE_METRIC = "storage_shard_disk_size"

_PRECISION = {"s": WritePrecision.S, "ms": WritePrecision.MS, "us": WritePrecision.US, "ns": WritePrecision.NS}


def flux_string(value: str) -> str:
    """A Flux string literal (``${`` escaped: Flux interpolates it)."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
        .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
    return f'"{escaped}"'


def delete_predicate(measurement: str, tags: dict[str, str]) -> str:
    """A delete-API predicate: ``_measurement="m" AND "tag"="value"`` (only AND and = exist there)."""
    def quoted(text: str) -> str:
        if "\r" in text:
            # The predicate is read by InfluxQL's scanner, which turns CR into LF and has no escape for it.
            raise InfluxQueryError(f"InfluxDB 2 cannot delete by a value containing a carriage return: {text[:80]!r}")
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    parts = [f"_measurement={quoted(measurement)}"] + [
        f"{quoted(k)}={quoted(encode_tag_value(v))}" for k, v in sorted(tags.items())
    ]
    return " AND ".join(parts)


def rfc3339(value: datetime) -> str:
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class InfluxV2Backend(TimeseriesBackend):
    """InfluxDB 2.x (token + org)."""

    def __init__(self, settings: InfluxSettings, **options: Any) -> None:
        super().__init__(settings, **options)
        if not settings.org:
            raise InfluxAuthError(
                "InfluxDB 2 needs an organisation but INFLUXDB_ORG is not set: set INFLUXDB_ORG "
                "(or INFLUXDB_API_VERSION=1 for InfluxDB 1.x)"
            )
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token or "",
            org=settings.org,
            timeout=int(settings.timeout_seconds * 1000),
            verify_ssl=settings.verify_ssl,
            enable_gzip=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def close(self) -> None:
        self._write_api.close()
        self._client.close()

    def _auth_error(self, status: int, message: str) -> InfluxAuthError:
        if not self.settings.token:
            return InfluxAuthError("InfluxDB requires a token but none was given: set INFLUXDB_TOKEN")
        if status == 401:
            return InfluxAuthError("InfluxDB rejected the token in INFLUXDB_TOKEN (unauthorized)")
        return InfluxAuthError(
            f"the token in INFLUXDB_TOKEN lacks permission for this operation ({truncate(message, 200)})"
        )

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call, turning its exceptions into ours (without the token)."""
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            message = _api_message(exc)
            not_influx = not_influxdb(self.settings.url, exc.status or 0, message)
            if not_influx is not None:
                raise not_influx from None
            if exc.status in (401, 403):
                raise self._auth_error(exc.status, message) from None
            raise InfluxQueryError(f"InfluxDB refused {what}: HTTP {exc.status} {truncate(message, 300)}") from None
        except Urllib3Error as exc:
            raise InfluxConnectionError(
                f"cannot reach InfluxDB at {redact_url(self.settings.url)}: {type(exc).__name__}"
            ) from None

    def _post_lines(self, bucket: str, body: bytes, precision: str) -> WriteReply:
        try:
            self._write_api.write(bucket=bucket, org=self.settings.org, record=body, write_precision=_PRECISION[precision])
        except ApiException as exc:
            return WriteReply(exc.status or 500, _api_message(exc))
        except Urllib3Error as exc:
            raise TransientWriteError(f"{type(exc).__name__} talking to {redact_url(self.settings.url)}") from None
        return WriteReply(204)

    def ping(self) -> str:
        if not self._client.ping():
            raise InfluxConnectionError(f"cannot reach InfluxDB at {redact_url(self.settings.url)}")
        return self._call("version", self._client.version)

    def ensure_bucket(self, spec: BucketSpec) -> EnsureResult:
        api = self._client.buckets_api()
        # retention_seconds 0 is InfluxDB 2's infinite retention.
        rule = BucketRetentionRules(
            type="expire", every_seconds=spec.retention_seconds, shard_group_duration_seconds=spec.shard_duration_seconds
        )
        found = self._call("listing buckets", api.find_buckets, name=spec.name, org=self.settings.org).buckets or []
        if not found:
            # A bucket kept forever is created without an expiry rule.
            rules = [] if spec.keeps_forever else [rule]
            self._call("creating a bucket", api.create_bucket, bucket_name=spec.name, retention_rules=rules, org=self.settings.org)
            return "created"
        bucket = found[0]
        current = (bucket.retention_rules or [None])[0]
        if spec.keeps_forever:
            unchanged = current is None or not current.every_seconds
        else:
            unchanged = (
                current is not None
                and current.every_seconds == spec.retention_seconds
                and current.shard_group_duration_seconds == spec.shard_duration_seconds
            )
        if unchanged:
            return "unchanged"
        # A PATCH with no rules changes nothing, so "forever" is sent as everySeconds 0.
        bucket.retention_rules = [rule]
        self._call("updating a bucket", api.update_bucket, bucket)
        return "updated"

    def delete(
        self, bucket: str, measurement: str, start: datetime, stop: datetime, tags: TagFilter | None = None
    ) -> None:
        # The delete API's stop is inclusive; ours is exclusive.
        last = pd.Timestamp(to_ns(stop) - 1, unit="ns", tz="UTC")
        api = self._client.delete_api()
        for combo in expand_tag_filter(tags):
            self._call(
                "a delete", api.delete, rfc3339(start), last.isoformat().replace("+00:00", "Z"),
                delete_predicate(measurement, combo), bucket=bucket, org=self.settings.org,
            )

    def _flux(self, bucket: str, measurement: str, start: datetime, stop: datetime, tags: TagFilter | None) -> str:
        lines = [
            f"from(bucket: {flux_string(bucket)})",
            f"  |> range(start: time(v: {flux_string(rfc3339(start))}), stop: time(v: {flux_string(rfc3339(stop))}))",
            f"  |> filter(fn: (r) => r._measurement == {flux_string(measurement)})",
        ]
        for key in sorted(tags or {}):
            values = tags[key]  # type: ignore[index]
            options = [values] if isinstance(values, str) else list(values)
            ors = " or ".join(f"r[{flux_string(key)}] == {flux_string(encode_tag_value(v))}" for v in options)
            lines.append(f"  |> filter(fn: (r) => {ors})")
        return "\n".join(lines)

    def read(
        self,
        bucket: str,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: TagFilter | None = None,
        fields: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        flux = self._flux(bucket, measurement, start, stop, tags)
        if fields:
            flux += "\n  |> filter(fn: (r) => " + " or ".join(f"r._field == {flux_string(f)}" for f in fields) + ")"
        flux += (
            '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
            '\n  |> drop(columns: ["_start", "_stop", "_measurement"])'
            "\n  |> group()"
        )
        result = self._call("a query", self._client.query_api().query_data_frame, flux, org=self.settings.org)
        frames = result if isinstance(result, list) else [result]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]")})
        df = pd.concat(frames, ignore_index=True).drop(columns=["result", "table"], errors="ignore")
        df = df.rename(columns={"_time": "time"})
        df["time"] = pd.to_datetime(df["time"], utc=True)
        # The pivot does not say which columns were tags: all but the fields asked for are decoded
        # (without `fields`, a string field stored starting with "~~" would be decoded too).
        for name in df.columns:
            if name != "time" and name not in (fields or ()) and df[name].dtype == object:
                df[name] = decode_tag_column(df[name])
        return df

    def series_counts(
        self, bucket: str, measurement: str, start: datetime, stop: datetime, key: str, field: str
    ) -> dict[str, int]:
        flux = self._flux(bucket, measurement, start, stop, None)
        flux += f"\n  |> filter(fn: (r) => r._field == {flux_string(field)})"
        flux += f"\n  |> group(columns: [{flux_string(key)}])\n  |> count()"
        tables = self._call("a count query", self._client.query_api().query, flux, org=self.settings.org)
        counts: dict[str, int] = {}
        for table in tables:
            for rec in table.records:
                value = decode_tag_column(pd.Series([rec.values.get(key) or ""], dtype=object)).iat[0]
                counts[value] = counts.get(value, 0) + int(rec.get_value() or 0)
        return {k: v for k, v in counts.items() if v}

    def count(
        self,
        bucket: str,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: TagFilter | None = None,
        field: str | None = None,
    ) -> int:
        flux = self._flux(bucket, measurement, start, stop, tags)
        if field:
            flux += f"\n  |> filter(fn: (r) => r._field == {flux_string(field)})"
        flux += '\n  |> group(columns: ["_field"])\n  |> count()'
        tables = self._call("a count query", self._client.query_api().query, flux, org=self.settings.org)
        return max((int(rec.get_value()) for t in tables for rec in t.records), default=0)

    def count_by_window(
        self,
        bucket: str,
        measurement: str,
        start: datetime,
        stop: datetime,
        every: timedelta,
        tags: TagFilter | None = None,
        field: str | None = None,
    ) -> dict[pd.Timestamp, int]:
        windows = window_starts(start, stop, every)
        counts = dict.fromkeys(windows, 0)
        if not windows:
            return counts
        every_ns = int(every / timedelta(microseconds=1)) * 1000
        offset_ns = to_ns(start) % every_ns  # windows start at the epoch + offset, as range() starts
        flux = self._flux(bucket, measurement, start, stop, tags)
        if field:
            flux += f"\n  |> filter(fn: (r) => r._field == {flux_string(field)})"
        flux += (
            '\n  |> group(columns: ["_field"])'
            f'\n  |> aggregateWindow(every: {every_ns}ns, offset: {offset_ns}ns, fn: count, timeSrc: "_start")'
        )
        tables = self._call("a count query", self._client.query_api().query, flux, org=self.settings.org)
        for table in tables:
            for rec in table.records:
                window = to_utc(rec.get_time())
                if window in counts:
                    counts[window] = max(counts[window], int(rec.get_value() or 0))
        return counts

    def shard_bytes_by_bucket_id(self) -> dict[str, int]:
        """Sum of ``storage_shard_disk_size`` (TSM + WAL) per bucket id, from the server's ``/metrics``.

        Raises ``InfluxConnectionError`` / ``InfluxQueryError`` (reason in the message) when the
        endpoint cannot be read or parsed, or does not expose the gauge at all.
        """
        url = self.settings.url.rstrip("/") + "/metrics"
        # /metrics is unauthenticated on a default 2.x server; the token is sent anyway for
        # servers that put it behind auth.
        headers = {"Authorization": f"Token {self.settings.token}"} if self.settings.token else {}
        try:
            reply = requests.get(
                url, headers=headers, timeout=self.settings.timeout_seconds, verify=self.settings.verify_ssl
            )
        except requests.RequestException as exc:
            raise InfluxConnectionError(
                f"cannot read {redact_url(url)}: {type(exc).__name__}"
            ) from None
        if reply.status_code != 200:
            raise InfluxQueryError(
                f"InfluxDB refused {redact_url(url)}: HTTP {reply.status_code} {truncate(reply.text, 200)}"
            )
        totals: dict[str, float] = {}
        seen = False
        try:
            for family in text_string_to_metric_families(reply.text):
                if family.name != SHARD_DISK_SIZE_METRIC:
                    continue
                seen = True
                for sample in family.samples:
                    bucket_id = sample.labels.get("bucket")
                    if sample.name == SHARD_DISK_SIZE_METRIC and bucket_id:
                        totals[bucket_id] = totals.get(bucket_id, 0.0) + sample.value
        except ValueError as exc:
            raise InfluxQueryError(f"cannot parse {redact_url(url)} as Prometheus text: {truncate(str(exc), 200)}") from None
        if not seen:
            raise InfluxQueryError(f"{redact_url(url)} has no {SHARD_DISK_SIZE_METRIC} gauge")
        return {bucket_id: int(round(total)) for bucket_id, total in totals.items()}

    def storage_stats(self) -> dict[str, dict[str, int | None]]:
        """Per bucket: bytes on disk from ``/metrics`` (None, with a logged warning, when it cannot
        be read), series from Flux ``influxdb.cardinality()``, points None (no cheap exact source).
        """
        api = self._client.buckets_api()
        # the API pages by 20 by default: an org with more buckets would lose ours from the report
        found = self._call("listing buckets", api.find_buckets, org=self.settings.org, limit=100).buckets or []
        try:
            shard_bytes: dict[str, int] | None = self.shard_bytes_by_bucket_id()
        except InfluxError as exc:
            log.warning("InfluxDB 2 bucket sizes are not measured: %s", exc)
            shard_bytes = None
        stats: dict[str, dict[str, int | None]] = {}
        for bucket in found:
            if bucket.name.startswith("_"):
                continue
            flux = (
                'import "influxdata/influxdb"\n'
                f"influxdb.cardinality(bucket: {flux_string(bucket.name)}, start: time(v: 0))"
            )
            tables = self._call("a cardinality query", self._client.query_api().query, flux, org=self.settings.org)
            series = sum(int(rec.get_value()) for t in tables for rec in t.records)
            # A bucket without shards (nothing written yet) has no gauge: 0 bytes.
            size = None if shard_bytes is None else shard_bytes.get(bucket.id, 0)
            stats[bucket.name] = {"bytes": size, "series": series, "points": None}
        return stats

def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", exc.body))
    except (ValueError, AttributeError):
        return str(exc.body or exc.reason or "")

