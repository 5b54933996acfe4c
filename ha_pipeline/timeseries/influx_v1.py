"""InfluxDB 1.x backend: plain HTTP (``/write``, ``/query``), InfluxQL, databases + retention policies.

``influxdb-client`` cannot talk to 1.x (its ``/api/v2/*`` endpoints answer 404 on 1.6), so this
uses a ``requests`` session. A bucket is a database whose DEFAULT retention policy, named
``ha_pipeline``, carries the bucket's retention and shard duration; writes and reads use the
default policy, as InfluxDB 2's 1.x compatibility mapping does.
"""

from __future__ import annotations

import json
import re
import time as _time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

from ha_pipeline.timeseries.backend import (
    EnsureResult,
    InfluxAuthError,
    InfluxConnectionError,
    InfluxQueryError,
    NotInfluxDBError,
    TagFilter,
    TimeseriesBackend,
    TransientWriteError,
    WriteReply,
    expand_tag_filter,
    not_influxdb,
    redact_url,
    to_ns,
    truncate,
    window_starts,
)
from ha_pipeline.timeseries.buckets import BucketSpec, InfluxSettings
from ha_pipeline.timeseries.line_protocol import decode_tag_column, encode_tag_value

RETENTION_POLICY = "ha_pipeline"
_V1_PRECISION = {"s": "s", "ms": "ms", "us": "u", "ns": "n"}
_PANDAS_TYPE = {"float": "float64", "integer": "Int64", "boolean": "boolean"}
_REGEX_META = set("\\.+*?()|[]{}^$/")
_REGEX_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_DURATION_PART = re.compile(r"(\d+)([hms])")


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def quote_string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def tag_equals(key: str, value: str) -> str:
    """``"key" = 'value'`` for the value as stored (:func:`encode_tag_value`); values with a carriage
    return use an anchored regex instead, because InfluxQL turns a raw CR into a newline and its
    string literals have no escape for it. ``''`` matches points without the tag."""
    value = encode_tag_value(value)
    if "\r" not in value:
        return f"{quote_ident(key)} = {quote_string(value)}"
    escaped = "".join(_REGEX_ESCAPES.get(ch, "\\" + ch if ch in _REGEX_META else ch) for ch in value)
    return f"{quote_ident(key)} =~ /^{escaped}$/"


def parse_duration(text: str) -> int:
    """Seconds in an InfluxDB duration as SHOW RETENTION POLICIES prints it (``8760h0m0s``; ``0s`` = ∞)."""
    factors = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * factors[unit] for n, unit in _DURATION_PART.findall(text))


def tag_condition(tags: TagFilter | None) -> str:
    """`` AND "k" = 'v'`` clauses; a list of values becomes an OR group."""
    clauses = []
    for key in sorted(tags or {}):
        values = tags[key]  # type: ignore[index]
        options = [values] if isinstance(values, str) else list(values)
        ors = " OR ".join(tag_equals(key, v) for v in options)
        clauses.append(f" AND ({ors})" if len(options) > 1 else f" AND {ors}")
    return "".join(clauses)


class InfluxV1Backend(TimeseriesBackend):
    """InfluxDB 1.x over its HTTP API; username/password optional (HTTP Basic auth)."""

    def __init__(self, settings: InfluxSettings, **options: Any) -> None:
        super().__init__(settings, **options)
        self._base = settings.url.rstrip("/")
        self._session = requests.Session()
        self._session.mount("http://", HTTPAdapter(pool_maxsize=max(4, self.max_in_flight)))
        self._session.mount("https://", HTTPAdapter(pool_maxsize=max(4, self.max_in_flight)))
        self._session.verify = settings.verify_ssl
        if settings.username:
            self._session.auth = (settings.username, settings.password or "")
        self._timeout = (10.0, settings.timeout_seconds)

    def close(self) -> None:
        self._session.close()

    # --- HTTP ---------------------------------------------------------------------------------
    def _auth_error(self, status: int, message: str) -> InfluxAuthError:
        if status == 401 and not self.settings.username:
            return InfluxAuthError(
                "InfluxDB requires a username and password but no credentials were given: "
                "set INFLUXDB_USERNAME and INFLUXDB_PASSWORD"
            )
        if status == 401:
            return InfluxAuthError(
                "InfluxDB rejected the username/password in INFLUXDB_USERNAME/INFLUXDB_PASSWORD "
                f"({truncate(message, 120)})"
            )
        if "create admin user first" in message:
            return InfluxAuthError(
                "InfluxDB has authentication enabled but no admin user yet: create one "
                "(CREATE USER … WITH ALL PRIVILEGES) and set INFLUXDB_USERNAME/INFLUXDB_PASSWORD"
            )
        who = "the user in INFLUXDB_USERNAME" if self.settings.username else "anonymous access"
        return InfluxAuthError(
            f"InfluxDB refused the operation for {who}: it lacks the privilege ({truncate(message, 200)}); "
            "grant it ALL on the database, or admin rights to create databases"
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP request with two quick retries on connection failures (all calls here are idempotent)."""
        for attempt in range(3):
            try:
                response = self._session.request(method, self._base + path, timeout=self._timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == 2:
                    raise InfluxConnectionError(
                        f"cannot reach InfluxDB at {redact_url(self._base)}: {type(exc).__name__}"
                    ) from None
                _time.sleep(0.5 * (attempt + 1))
                continue
            self._require_influxdb(response)
            return response
        raise AssertionError("unreachable")

    def _require_influxdb(self, response: requests.Response) -> None:
        """Refuse an answer that is not InfluxDB's: 1.x stamps every answer with its version."""
        if "X-Influxdb-Version" in response.headers:
            return
        raise not_influxdb(self._base, response.status_code, response.text) or NotInfluxDBError(
            f"The server at {redact_url(self._base)} answered HTTP {response.status_code} without "
            "InfluxDB's version header, so it is not InfluxDB: set INFLUXDB_URL to your InfluxDB "
            "server (by default http://<host>:8086)."
        )

    @staticmethod
    def _message(response: requests.Response) -> str:
        try:
            return str(response.json().get("error", response.text))
        except ValueError:
            return response.text.strip()

    def _check_status(self, response: requests.Response, query: str) -> None:
        if response.status_code in (401, 403):
            raise self._auth_error(response.status_code, self._message(response))
        if response.status_code >= 300:
            raise InfluxQueryError(
                f"InfluxDB answered HTTP {response.status_code} to {truncate(query, 200)!r}: "
                f"{truncate(self._message(response), 300)}"
            )

    def query(self, q: str, db: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL statements; every ``results[i].error`` raises, even on HTTP 200."""
        data = {"q": q, "epoch": "ns"}
        if db is not None:
            data["db"] = db
        response = self._request("POST", "/query", data=data)
        self._check_status(response, q)
        results = response.json().get("results", [])
        for result in results:
            self._raise_result_error(result, q)
        return results

    def _raise_result_error(self, result: dict[str, Any], q: str) -> None:
        if "error" in result:
            message = str(result["error"])
            if "authoriz" in message:
                raise self._auth_error(403, message)
            raise InfluxQueryError(f"InfluxDB refused {truncate(q, 200)!r}: {truncate(message, 300)}")

    def _post_lines(self, bucket: str, body: bytes, precision: str) -> WriteReply:
        try:
            response = self._session.post(
                self._base + "/write",
                params={"db": bucket, "precision": _V1_PRECISION[precision]},
                data=body,
                timeout=self._timeout,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientWriteError(f"{type(exc).__name__} talking to {redact_url(self._base)}") from None
        self._require_influxdb(response)
        return WriteReply(response.status_code, "" if response.status_code < 300 else self._message(response))

    # --- management ---------------------------------------------------------------------------
    def ping(self) -> str:
        response = self._request("GET", "/ping")
        if response.status_code in (401, 403):
            raise self._auth_error(response.status_code, self._message(response))
        return response.headers.get("X-Influxdb-Version", "unknown")

    def _databases(self) -> list[str]:
        series = self.query("SHOW DATABASES")[0].get("series", [])
        return [row[0] for s in series for row in s.get("values", [])]

    def ensure_bucket(self, spec: BucketSpec) -> EnsureResult:
        duration = "INF" if spec.keeps_forever else f"{spec.retention_days}d"
        policy = f"DURATION {duration} REPLICATION 1 SHARD DURATION {spec.shard_duration_days}d"
        db, rp = quote_ident(spec.name), quote_ident(RETENTION_POLICY)
        if spec.name not in self._databases():
            self.query(f"CREATE DATABASE {db} WITH {policy} NAME {rp}")
            return "created"
        rows = self.query(f"SHOW RETENTION POLICIES ON {db}")[0].get("series", [])
        current = None
        for s in rows:
            cols = s["columns"]
            for values in s.get("values", []):
                row = dict(zip(cols, values))
                if row["name"] == RETENTION_POLICY:
                    current = row
        if current is None:
            self.query(f"CREATE RETENTION POLICY {rp} ON {db} {policy} DEFAULT")
            return "updated"
        if (
            parse_duration(current["duration"]) == spec.retention_seconds
            and parse_duration(current["shardGroupDuration"]) == spec.shard_duration_seconds
            and current["default"]
        ):
            return "unchanged"
        self.query(f"ALTER RETENTION POLICY {rp} ON {db} {policy} DEFAULT")
        return "updated"

    def storage_stats(self) -> dict[str, dict[str, int | None]]:
        databases = [d for d in self._databases() if d != "_internal"]
        sizes = self._disk_bytes()
        stats: dict[str, dict[str, int | None]] = {}
        for db in databases:
            stats[db] = {"bytes": sizes.get(db), "series": self._series(db), "points": self._points(db)}
        return stats

    def _disk_bytes(self) -> dict[str, int]:
        # Sum over shards: a plain last(diskBytes) GROUP BY database returns one shard only.
        q = (
            'SELECT sum(b) FROM (SELECT last(diskBytes) AS b FROM "_internal".."shard" '
            'WHERE time > now() - 1m GROUP BY "database", "retentionPolicy", "id") GROUP BY "database"'
        )
        try:
            series = self.query(q)[0].get("series", [])
        except InfluxQueryError:
            return {}  # monitoring disabled or no access to _internal: sizes unknown
        return {s["tags"]["database"]: int(s["values"][0][1]) for s in series if s.get("values")}

    def _series(self, db: str) -> int | None:
        # SHOW SERIES lists each series key once across shards (EXACT CARDINALITY double-counts
        # series that span shards), so counting its rows is exact.
        response = self._request(
            "POST", "/query", data={"q": "SHOW SERIES", "db": db, "chunked": "true", "chunk_size": "10000"}
        )
        self._check_status(response, "SHOW SERIES")
        total = 0
        for line in _json_lines(response):
            for result in json.loads(line).get("results", []):
                self._raise_result_error(result, "SHOW SERIES")
                total += sum(len(s.get("values", [])) for s in result.get("series", []))
        return total

    def _points(self, db: str) -> int:
        series = self.query("SELECT count(*) FROM /.*/", db=db)[0].get("series", [])
        return sum(max((v or 0) for v in s["values"][0][1:]) for s in series if s.get("values"))

    # --- data ---------------------------------------------------------------------------------
    @staticmethod
    def _where(start: datetime, stop: datetime, tags: TagFilter | None) -> str:
        return f"WHERE time >= {to_ns(start)} AND time < {to_ns(stop)}{tag_condition(tags)}"

    def delete(
        self, bucket: str, measurement: str, start: datetime, stop: datetime, tags: TagFilter | None = None
    ) -> None:
        # DELETE applies to every retention policy of the database; ours has only one.
        statements = [
            f"DELETE FROM {quote_ident(measurement)} {self._where(start, stop, combo)}"
            for combo in expand_tag_filter(tags)
        ]
        self.query(";".join(statements), db=bucket)

    def delete_many(
        self, bucket: str, measurement: str, deletes: Sequence[tuple[datetime, datetime, Mapping[str, str]]]
    ) -> None:
        # Many statements per request: a prune removes points one by one.
        statements = [
            f"DELETE FROM {quote_ident(measurement)} {self._where(start, stop, dict(tags))}"
            for start, stop, tags in deletes
        ]
        for offset in range(0, len(statements), 500):
            self.query(";".join(statements[offset : offset + 500]), db=bucket)

    def count(
        self,
        bucket: str,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: TagFilter | None = None,
        field: str | None = None,
    ) -> int:
        what = f"count({quote_ident(field)})" if field else "count(*)"
        q = f"SELECT {what} FROM {quote_ident(measurement)} {self._where(start, stop, tags)}"
        series = self.query(q, db=bucket)[0].get("series", [])
        return max((int(v or 0) for s in series for row in s.get("values", []) for v in row[1:]), default=0)

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
        offset_ns = to_ns(start) % every_ns  # GROUP BY time() buckets start at the epoch + offset
        what = f"count({quote_ident(field)})" if field else "count(*)"
        q = (
            f"SELECT {what} FROM {quote_ident(measurement)} {self._where(start, stop, tags)} "
            f"GROUP BY time({every_ns}ns, {offset_ns}ns) fill(0)"
        )
        for s in self.query(q, db=bucket)[0].get("series", []):
            for row in s.get("values", []):
                window = pd.Timestamp(row[0], unit="ns", tz="UTC")
                if window in counts:
                    counts[window] = max((int(v or 0) for v in row[1:]), default=0)
        return counts

    def read(
        self,
        bucket: str,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: TagFilter | None = None,
        fields: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        selected = ", ".join(f"{quote_ident(f)}::field" for f in fields) if fields else "*::field"
        q = f"SELECT {selected}, *::tag FROM {quote_ident(measurement)} {self._where(start, stop, tags)}"
        response = self._request(
            "POST",
            "/query",
            data={"q": q, "db": bucket, "epoch": "ns", "chunked": "true", "chunk_size": "50000"},
            stream=True,
        )
        self._check_status(response, q)
        frames: list[pd.DataFrame] = []
        for line in _json_lines(response):
            for result in json.loads(line).get("results", []):
                self._raise_result_error(result, q)
                for s in result.get("series", []):
                    frames.append(pd.DataFrame(s.get("values", []), columns=s["columns"]))
        if not frames:
            return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]")})
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        df["time"] = pd.to_datetime(df["time"].astype("int64"), unit="ns", utc=True)
        # JSON loses the field type (a float 1.0 arrives as 1, an int with gaps as float): restore it.
        field_types = self._field_types(bucket, measurement)
        for name, kind in field_types.items():
            if name in df.columns and kind in _PANDAS_TYPE:
                df[name] = df[name].astype(_PANDAS_TYPE[kind])
        for name in df.columns:
            if name != "time" and name not in field_types:
                df[name] = decode_tag_column(df[name])
        return df

    def series_counts(
        self, bucket: str, measurement: str, start: datetime, stop: datetime, key: str, field: str
    ) -> dict[str, int]:
        q = (
            f"SELECT count({quote_ident(field)}) FROM {quote_ident(measurement)} "
            f"{self._where(start, stop, None)} GROUP BY {quote_ident(key)}"
        )
        counts: dict[str, int] = {}
        for s in self.query(q, db=bucket)[0].get("series", []):
            value = (s.get("tags") or {}).get(key) or ""
            total = sum(int(row[1] or 0) for row in s.get("values", []))
            if total:
                counts[decode_tag_column(pd.Series([value], dtype=object)).iat[0]] = total
        return counts

    def _field_types(self, bucket: str, measurement: str) -> dict[str, str]:
        """Field name → InfluxDB type (float, integer, string, boolean)."""
        series = self.query(f"SHOW FIELD KEYS FROM {quote_ident(measurement)}", db=bucket)[0].get("series", [])
        types: dict[str, str] = {}
        for s in series:
            for name, kind in s.get("values", []):
                types.setdefault(name, kind)
        return types


def _json_lines(response: requests.Response) -> Iterator[bytes]:
    """The documents of a chunked answer (one JSON document per line), split in linear time.

    ``iter_lines`` re-splits its whole pending buffer after every small read: quadratic in
    the size of a line, and one 50k-point line is several MB.
    """
    parts: list[bytes] = []
    for block in response.iter_content(chunk_size=1 << 20):
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            parts.append(block[start:end])
            line = b"".join(parts)
            parts = []
            start = end + 1
            if line.strip():
                yield line
        parts.append(block[start:])
    tail = b"".join(parts)
    if tail.strip():
        yield tail
