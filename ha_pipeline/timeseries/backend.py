"""The storage interface shared by the InfluxDB 1.x and 2.x backends.

Writes are shared: a frame is formatted once, cut into batches, and each batch body is built in
the calling thread while up to ``max_in_flight`` earlier batches are being POSTed (pipelining;
the server is the bottleneck, so two requests in flight keep it busy). A :class:`WriteStream`
keeps that pipeline open across frames, so a caller that produces data piece by piece (an hour
at a time) keeps the server busy while it makes the next piece. Every batch is retried on
5xx, timeouts and connection errors with exponential backoff, a bounded number of times; any
other failure raises a typed error: nothing is dropped silently.
"""

from __future__ import annotations

import logging
import re
import time as _time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import product
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from ha_pipeline.timeseries.buckets import BucketSpec, InfluxSettings
from ha_pipeline.timeseries.line_protocol import (
    DEFAULT_BATCH_LINES,
    LineProtocolError,
    check_frame,
    escape_key,
    prepare_lines,
)

log = logging.getLogger(__name__)

EnsureResult = Literal["created", "updated", "unchanged"]
TagFilter = Mapping[str, str | Sequence[str]]
MAX_LINE_IN_ERROR = 200


class InfluxError(Exception):
    """Base class: anything InfluxDB refused or could not be reached for."""

    #: True when retrying cannot help (credentials, the URL or the data must change first).
    permanent: bool = False


class InfluxConnectionError(InfluxError):
    """The server could not be reached (after retries)."""


class InfluxAuthError(InfluxError):
    """The server rejected (or required) credentials; the message names which setting."""

    permanent = True


class NotInfluxDBError(InfluxError):
    """The server at ``INFLUXDB_URL`` answers, but it is not InfluxDB (a web page, a proxy)."""

    permanent = True


class InfluxQueryError(InfluxError):
    """A query or management statement failed."""


class InfluxWriteError(InfluxError):
    """A write was refused; ``accepted`` points (of the whole ``write`` call) were stored.

    Permanent (values InfluxDB will not take), unless the server kept failing (``permanent=False``)."""

    def __init__(
        self,
        reason: str,
        first_bad_line: str | None = None,
        accepted: int = 0,
        partial: bool = False,
        permanent: bool = True,
    ) -> None:
        self.reason = reason
        self.first_bad_line = first_bad_line
        self.accepted = accepted
        # InfluxDB stored the batch's other points ("partial write"): only the offending ones are lost.
        self.partial = partial
        self.permanent = permanent
        super().__init__(reason)

    def __str__(self) -> str:
        text = f"{self.reason}; {self.accepted} points were accepted"
        if self.first_bad_line is not None:
            text += f"; first offending line: {self.first_bad_line}"
        return text


class RetentionRejectedError(InfluxWriteError):
    """Points older than the bucket's retention were dropped by the server (``dropped`` of them)."""

    def __init__(self, reason: str, dropped: int, first_bad_line: str | None = None, accepted: int = 0) -> None:
        self.dropped = dropped
        super().__init__(reason, first_bad_line, accepted)


@dataclass(frozen=True)
class WriteReply:
    """Status and server message of one write request (transport-neutral)."""

    status: int
    message: str = ""


class TransientWriteError(Exception):
    """Timeout or connection failure while writing: the batch is retried."""


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


_HTML = re.compile(r"^\s*<(!doctype html|html|head|body)\b", re.IGNORECASE)


def not_influxdb(url: str, status: int, body: str) -> NotInfluxDBError | None:
    """The error for an answer that is an HTML page (InfluxDB answers JSON or nothing), else None."""
    if not _HTML.match(body):
        return None
    return NotInfluxDBError(
        f"The server at {redact_url(url)} answered HTTP {status} with a web page, not InfluxDB: "
        "set INFLUXDB_URL to your InfluxDB server (by default http://<host>:8086)."
    )


def to_utc(value: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """A tz-aware UTC timestamp; naive input is refused because its meaning is ambiguous."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise ValueError(f"time {value!r} has no timezone; pass a timezone-aware (UTC) datetime")
    return ts.tz_convert("UTC")


def to_ns(value: datetime | pd.Timestamp | str) -> int:
    """Nanoseconds since the epoch of a tz-aware time."""
    return int(to_utc(value).as_unit("ns").value)


def expand_tag_filter(tags: TagFilter | None) -> list[dict[str, str]]:
    """Every combination of a filter whose values may be lists (one delete per combination)."""
    if not tags:
        return [{}]
    keys = sorted(tags)
    choices = [[tags[k]] if isinstance(tags[k], str) else list(tags[k]) for k in keys]
    return [dict(zip(keys, combo)) for combo in product(*choices)]


def window_starts(start: datetime, stop: datetime, every: timedelta) -> list[pd.Timestamp]:
    """Starts of the ``every``-long windows that tile ``[start, stop)`` (the last may be shorter)."""
    if every <= timedelta(0) or every % timedelta(seconds=1):
        raise ValueError(f"every must be a positive whole number of seconds, got {every}")
    first, last = to_utc(start), to_utc(stop)
    return list(pd.date_range(first, last, freq=every, inclusive="left"))


def truncate(text: str, limit: int = MAX_LINE_IN_ERROR) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_TYPE_CONFLICT = re.compile(r'input field "(?P<field>(?:[^"\\]|\\.)*)" on measurement "[^"]*" is type (?P<type>\w+)')
_DROPPED = re.compile(r"dropped=(\d+)")
_UNPARSABLE = re.compile(r"unable to parse '((?:[^'\\]|\\.)*)'")


def _line_field_type(line: str, field: str) -> str | None:
    """Type the line-protocol ``line`` gives ``field`` (1.x names: float/integer/string/boolean)."""
    key = re.escape(escape_key(field))
    match = re.search(r"(?:^|[ ,])" + key + r"=(\"|[-+\d.eE]+i\b|t|f|T|F|[-+\d.])", line)
    if match is None:
        return None
    token = match.group(1)
    if token == '"':
        return "string"
    if token.endswith("i"):
        return "integer"
    if token in "tfTF":
        return "boolean"
    return "float"


def _timestamp_of(line: str) -> int:
    """The trailing timestamp of a line (huge for fragments of multi-line string fields)."""
    last = line.rsplit(" ", 1)[-1]
    return int(last) if last.lstrip("-").isdigit() else 2**63


def classify_write_failure(message: str, body: bytes, lines: int) -> InfluxWriteError:
    """Turn a 4xx write answer into a typed error naming the first offending line."""
    text = body.decode("utf-8", errors="replace")
    dropped_match = _DROPPED.search(message)
    dropped = int(dropped_match.group(1)) if dropped_match else 0
    unparsable = _UNPARSABLE.findall(message)
    partial = "partial write" in message
    accepted = max(0, lines - dropped - len(unparsable)) if partial else 0
    reason = f"InfluxDB refused the write: {truncate(message, 300)}"
    if "beyond retention policy" in message:
        rows = text.splitlines()
        oldest = min(rows, key=_timestamp_of) if rows else None
        return RetentionRejectedError(
            f"{dropped} points are older than the bucket's retention and were dropped by InfluxDB",
            dropped=dropped,
            first_bad_line=truncate(oldest) if oldest else None,
            accepted=accepted,
        )
    if unparsable:
        return InfluxWriteError(reason, truncate(unparsable[0]), accepted, partial)
    conflict = _TYPE_CONFLICT.search(message)
    if conflict:
        field, wrong_type = conflict.group("field"), conflict.group("type")
        bad = next((r for r in text.splitlines() if _line_field_type(r, field) == wrong_type), None)
        return InfluxWriteError(
            f"field type conflict: field {field!r} is sent as {wrong_type} but the bucket already stores "
            f"another type ({truncate(message, 300)})",
            truncate(bad) if bad else None,
            accepted,
            partial,
        )
    first = text.split("\n", 1)[0]
    return InfluxWriteError(reason, truncate(first) if first else None, accepted, partial)


@dataclass
class FrameWrite:
    """What became of one frame fed to a :class:`WriteStream`; final once the stream is closed."""

    rows: int
    accepted: int = 0  # points the server acknowledged
    dropped_rows: int = 0  # rows without any field value: nothing to write
    encoded_rows: int = 0  # points with a tag value stored encoded (line_protocol.encode_tag_value)
    # Points older than the bucket's retention were dropped (its ``accepted`` = this frame's).
    # Neither this nor ``refused`` stops the stream: they depend on this frame's data only.
    rejected: RetentionRejectedError | None = None
    # InfluxDB refused some points of a batch and stored the rest (a "partial write", e.g. a field
    # type conflict): the first such error; ``refused_points`` counts the points it did not store.
    refused: InfluxWriteError | None = None
    refused_points: int = 0


class WriteStream:
    """One pipelined write fed frame by frame: ``add`` formats a frame and queues its batches
    behind the earlier frames' and returns while the last ones are still being POSTed.

    The first failure other than a retention rejection stops the stream: nothing more is sent,
    a later ``add`` raises it, and ``close`` raises it once every request has settled, with
    ``accepted`` counting the points of the whole stream. Use it as a context manager.
    """

    def __init__(
        self,
        backend: TimeseriesBackend,
        bucket: str,
        measurement: str,
        tags: Sequence[str],
        fields: Sequence[str],
        time: str = "time",
        precision: str = "s",
    ) -> None:
        self._backend = backend
        self._target = (bucket, measurement, list(tags), list(fields), time, precision)
        self._pool = ThreadPoolExecutor(max_workers=backend.max_in_flight, thread_name_prefix="influx-write")
        self._pending: deque[tuple[FrameWrite, Future[int], int]] = deque()
        self._frames: list[FrameWrite] = []
        self._failure: InfluxError | None = None
        self._closed = False

    @property
    def accepted(self) -> int:
        """Points acknowledged so far, over every frame."""
        return sum(frame.accepted for frame in self._frames)

    def add(self, df: pd.DataFrame) -> FrameWrite:
        """Queue ``df``'s points; its :class:`FrameWrite` is complete after :meth:`close`.

        A frame that cannot be formatted raises :class:`LineProtocolError` before any of its
        rows are sent (later slices of a big frame: the stream fails instead).
        """
        if self._closed:
            raise ValueError("this WriteStream is closed")
        if self._failure is not None:
            raise self._failure
        bucket, measurement, tags, fields, time, precision = self._target
        check_frame(df, measurement, tags, fields, time, precision)
        frame = FrameWrite(rows=len(df))
        self._frames.append(frame)
        backend = self._backend
        step = max(backend.batch_lines, backend.prepare_rows)
        for offset in range(0, len(df), step):
            try:
                prepared = prepare_lines(
                    df.iloc[offset : offset + step], measurement, tags, fields, time=time, precision=precision
                )
            except LineProtocolError as exc:
                if offset == 0:
                    raise  # nothing of this frame sent yet: the caller gets the plain validation error
                self._failure = self._failure or InfluxWriteError(f"rows from {offset} on cannot be written: {exc}")
                break
            frame.dropped_rows += prepared.dropped_rows
            frame.encoded_rows += prepared.encoded_rows
            for start, stop in prepared.chunk_bounds(backend.batch_lines):
                while self._pending and self._pending[0][1].done():
                    self._settle()  # learn of a failure as soon as it happened
                if self._failure is not None or frame.rejected is not None:
                    break
                body = prepared.body(start, stop)  # built while earlier batches are in flight
                future = self._pool.submit(backend._send_batch, bucket, body, precision, stop - start)
                self._pending.append((frame, future, stop - start))
                # one body more than the pool runs waits queued, so a freed connection never
                # idles while the next body is being built
                while len(self._pending) > backend.max_in_flight:
                    self._settle()
            if self._failure is not None or frame.rejected is not None:
                break
        if self._failure is not None:
            raise self._failure
        return frame

    def _settle(self) -> None:
        frame, future, lines = self._pending.popleft()
        try:
            frame.accepted += future.result()
        except RetentionRejectedError as exc:
            frame.accepted += exc.accepted
            frame.rejected = frame.rejected or exc
        except InfluxWriteError as exc:
            frame.accepted += exc.accepted
            if exc.partial:
                frame.refused = frame.refused or exc
                frame.refused_points += lines - exc.accepted
            else:
                self._failure = self._failure or exc
        except InfluxError as exc:
            self._failure = self._failure or exc

    def close(self) -> None:
        """Wait for every queued batch; raise the failure that stopped the stream, if any."""
        if self._closed:
            return
        self._closed = True
        try:
            while self._pending:
                self._settle()
        finally:
            self._pool.shutdown(wait=True)
        dropped = sum(frame.dropped_rows for frame in self._frames)
        if dropped:
            log.info("%d rows of %s had no field value and were not written", dropped, self._target[1])
        for frame in self._frames:
            if frame.rejected is not None:
                frame.rejected.accepted = frame.accepted
        if isinstance(self._failure, InfluxWriteError):
            self._failure.accepted = self.accepted
        if self._failure is not None:
            raise self._failure

    def __enter__(self) -> WriteStream:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()  # still settle what is in flight; the exception already raised wins
        except InfluxError:
            pass


class TimeseriesBackend(ABC):
    """One interface over InfluxDB 1.x (InfluxQL) and 2.x (Flux); see docs/INTERFACES.md."""

    def __init__(
        self,
        settings: InfluxSettings,
        *,
        batch_lines: int = DEFAULT_BATCH_LINES,
        max_in_flight: int = 2,
        max_retries: int = 5,
        backoff_seconds: float = 0.5,
        prepare_rows: int = 200_000,
    ) -> None:
        self.settings = settings
        self.batch_lines = batch_lines
        self.prepare_rows = prepare_rows
        self.max_in_flight = max(1, max_in_flight)
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={redact_url(self.settings.url)!r})"

    # --- management --------------------------------------------------------------------------
    @abstractmethod
    def ensure_bucket(self, spec: BucketSpec) -> EnsureResult:
        """Create the bucket, or fix its retention/shard duration if they drifted."""

    @abstractmethod
    def ping(self) -> str:
        """Server version; raises :class:`InfluxConnectionError` when unreachable."""

    @abstractmethod
    def storage_stats(self) -> dict[str, dict[str, int | None]]:
        """Per bucket: ``bytes`` on disk, ``series`` cardinality, ``points`` (None where unknown)."""

    # --- data --------------------------------------------------------------------------------
    @abstractmethod
    def delete(
        self, bucket: str, measurement: str, start: datetime, stop: datetime, tags: TagFilter | None = None
    ) -> None:
        """Delete points of ``measurement`` in ``[start, stop)`` matching every tag in ``tags``."""

    def delete_many(
        self, bucket: str, measurement: str, deletes: Sequence[tuple[datetime, datetime, Mapping[str, str]]]
    ) -> None:
        """Several :meth:`delete` calls of single-valued filters (``""`` matches an absent tag)."""
        for start, stop, tags in deletes:
            self.delete(bucket, measurement, start, stop, dict(tags))

    @abstractmethod
    def read(
        self,
        bucket: str,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: TagFilter | None = None,
        fields: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Points in ``[start, stop)``: column ``time`` (UTC), then tag and field columns."""

    @abstractmethod
    def count(
        self,
        bucket: str,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: TagFilter | None = None,
        field: str | None = None,
    ) -> int:
        """Number of points with ``field`` set; without ``field``, the count of the most
        frequent field (equal to the point count when one field is on every point)."""

    @abstractmethod
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
        """:meth:`count` of each ``every``-long window from ``start`` (see :func:`window_starts`),
        in one query; keyed by window start (UTC), every window present (0 when empty)."""

    @abstractmethod
    def series_counts(
        self, bucket: str, measurement: str, start: datetime, stop: datetime, key: str, field: str
    ) -> dict[str, int]:
        """Points with ``field`` in ``[start, stop)`` per value of tag ``key`` (values with none left out)."""

    @abstractmethod
    def _post_lines(self, bucket: str, body: bytes, precision: str) -> WriteReply:
        """POST one line-protocol body; raise :class:`TransientWriteError` on timeouts/connection loss."""

    @abstractmethod
    def _auth_error(self, status: int, message: str) -> InfluxAuthError:
        """The error for a 401/403 answer, naming the setting at fault."""

    def write(
        self,
        bucket: str,
        df: pd.DataFrame,
        measurement: str,
        tags: Sequence[str],
        fields: Sequence[str],
        time: str = "time",
        precision: str = "s",
    ) -> int:
        """Write ``df`` in batches; return the number of points written (rows with no field skipped).

        The frame is formatted in slices of ``prepare_rows`` so the first requests are in flight
        while later slices are still being formatted.
        """
        with self.write_stream(bucket, measurement, tags, fields, time, precision) as stream:
            frame = stream.add(df)
        for failure in (frame.rejected, frame.refused):
            if failure is not None:
                failure.accepted = frame.accepted
                raise failure
        return frame.accepted

    def write_stream(
        self,
        bucket: str,
        measurement: str,
        tags: Sequence[str],
        fields: Sequence[str],
        time: str = "time",
        precision: str = "s",
    ) -> WriteStream:
        """One pipelined write for frames that come one after another (see :class:`WriteStream`)."""
        return WriteStream(self, bucket, measurement, tags, fields, time, precision)

    def _send_batch(self, bucket: str, body: bytes, precision: str, lines: int) -> int:
        """POST one batch with bounded retries; return its line count or raise a typed error."""
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                _time.sleep(min(self.backoff_seconds * 2 ** (attempt - 1), 30.0))
            try:
                reply = self._post_lines(bucket, body, precision)
            except TransientWriteError as exc:
                last = str(exc)
                log.warning("write to %s failed (%s), attempt %d", bucket, last, attempt + 1)
                continue
            not_influx = not_influxdb(self.settings.url, reply.status, reply.message)
            if not_influx is not None:
                raise not_influx
            if reply.status < 300:
                return lines
            if reply.status in (401, 403):
                raise self._auth_error(reply.status, reply.message)
            if reply.status == 404:
                raise InfluxWriteError(
                    f"InfluxDB has no bucket/database {bucket!r} ({truncate(reply.message, 200)}); "
                    "run ensure_bucket first or check INFLUXDB_BUCKET_* / INFLUXDB_ORG"
                )
            if reply.status == 413:
                raise InfluxWriteError(
                    f"request body of {len(body)} bytes is over the server's max-body-size; lower batch_lines"
                )
            if 400 <= reply.status < 500 and reply.status not in (408, 429):
                raise classify_write_failure(reply.message, body, lines)
            last = f"HTTP {reply.status}: {truncate(reply.message, 200)}"
            log.warning("write to %s failed (%s), attempt %d", bucket, last, attempt + 1)
        raise InfluxWriteError(
            f"InfluxDB at {redact_url(self.settings.url)} did not accept a batch after "
            f"{self.max_retries + 1} attempts (last: {last}); nothing of this batch is known to be stored",
            permanent=False,
        )

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> TimeseriesBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def make_backend(settings: InfluxSettings | None = None, **options: object) -> TimeseriesBackend:
    """The backend for ``settings.api_version`` (settings default to the ``INFLUXDB_*`` env)."""
    settings = settings or InfluxSettings.from_env()
    if settings.api_version == 1:
        from ha_pipeline.timeseries.influx_v1 import InfluxV1Backend

        return InfluxV1Backend(settings, **options)  # type: ignore[arg-type]
    from ha_pipeline.timeseries.influx_v2 import InfluxV2Backend

    return InfluxV2Backend(settings, **options)  # type: ignore[arg-type]
