"""DataFrame → InfluxDB line protocol, vectorised.

Every distinct tag set, field value and timestamp is formatted once (``pandas.factorize``) and
each row becomes a handful of references into those small arrays; a batch body is then one
``"".join`` over the row-major piece matrix. No Python object is built per row except the
timestamp strings, which are themselves built per distinct timestamp.

Escaping follows what InfluxDB 1.x actually parses (measured on 1.6.7, same rules in 2.x):

- measurement: ``,`` and space are backslash-escaped;
- tag keys, tag values, field keys: ``,``, ``=`` and space are backslash-escaped; a backslash is
  written as is (the server keeps it literally);
- string field values: in double quotes, ``\\`` and ``"`` backslash-escaped; newlines allowed.

Line protocol cannot carry a newline or carriage return in a tag value (it ends the line) nor a
trailing backslash (it escapes the separator after it), yet Home Assistant accepts such names
(``Printer C:\\``, an entity id ending in a newline). Such tag values are stored in a reversible
encoding (:func:`encode_tag_value`): ``~~`` followed by the value with ``%``, ``\\`` and control
characters written as ``%XX``; values that already start with ``~~`` are encoded too, so decoding
is exact. Readers decode (:func:`decode_tag_value`), filters encode, so callers only ever see the
value HA gave. Tag *keys*, field keys and measurements are our own names: for them a newline or a
trailing backslash still raises :class:`LineProtocolError`.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PRECISION_FACTOR: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
DEFAULT_BATCH_LINES = 50_000
_IDENTITY_SAMPLE = 10_000
_FIXED_FLOATS_FROM = 4_096


TAG_ESCAPE_PREFIX = "~~"
_NEEDS_ESCAPE = re.compile(r"[\x00-\x1f\x7f]|\\\Z")
_ESCAPED_CHARS = re.compile(r"[%\\\x00-\x1f\x7f]")
_PERCENT = re.compile(r"%([0-9A-F]{2})")


def tag_value_needs_encoding(value: str) -> bool:
    """True for a tag value line protocol cannot carry as it is (or that looks encoded)."""
    return value.startswith(TAG_ESCAPE_PREFIX) or _NEEDS_ESCAPE.search(value) is not None


def encode_tag_value(value: str) -> str:
    """The value as stored in a tag: unchanged when line protocol can carry it, else ``~~`` + %XX-escaped."""
    if not tag_value_needs_encoding(value):
        return value
    return TAG_ESCAPE_PREFIX + _ESCAPED_CHARS.sub(lambda m: f"%{ord(m.group()):02X}", value)


def decode_tag_value(value: str) -> str:
    """Inverse of :func:`encode_tag_value`."""
    if not value.startswith(TAG_ESCAPE_PREFIX):
        return value
    return _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), value[len(TAG_ESCAPE_PREFIX):])


def decode_tag_column(values: pd.Series) -> pd.Series:
    """:func:`decode_tag_value` over a column of tag values (None stays None); decodes distinct values once."""
    if values.empty:
        return values
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if not any(isinstance(u, str) and u.startswith(TAG_ESCAPE_PREFIX) for u in uniques):
        return values
    decoded = np.array([decode_tag_value(u) if isinstance(u, str) else u for u in uniques] + [None], dtype=object)
    return pd.Series(decoded[codes], index=values.index, dtype=object)


class LineProtocolError(ValueError):
    """A frame cannot be written as line protocol without changing the data."""


@dataclass(frozen=True)
class LineBatch:
    """Serialised frame: ``body`` holds one bytes chunk per write request."""

    body: list[bytes]
    lines: int
    dropped_rows: int


def _raw(text: str) -> str:
    """UTF-8 bytes of ``text`` carried in a str (one char per byte); see ``PreparedLines.pieces``."""
    return text if text.isascii() else text.encode("utf-8").decode("latin-1")


def _escape_measurement(name: str) -> str:
    _check_key_like(name, "measurement")
    return name.replace(",", r"\,").replace(" ", r"\ ")


def escape_key(value: str) -> str:
    """A tag key, tag value or field key with `,`, `=` and space escaped."""
    return value.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def _escape_string_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _representable_key(value: str) -> bool:
    if value.endswith("\\"):
        return False
    start = 0
    while (pos := value.find("\n", start)) != -1:
        if pos == 0 or value[pos - 1] != "\\":
            return False
        start = pos + 1
    return True


def _check_key_like(value: str, what: str) -> None:
    if not value or not _representable_key(value):
        raise LineProtocolError(
            f"{what} {value[:80]!r} cannot be written as InfluxDB line protocol "
            "(empty, a trailing backslash, or a newline not preceded by a backslash)"
        )


@dataclass
class PreparedLines:
    """Per-row references into per-distinct-value strings; cut into bodies with :meth:`chunks`."""

    # Object array of str, shape (lines, pieces per line); each str holds UTF-8 bytes as Latin-1
    # code points, so joining stays a one-byte-per-char memcpy and encoding back is a copy.
    pieces: np.ndarray
    dropped_rows: int
    timestamps: np.ndarray = field(repr=False)  # int64 at the chosen precision, per line
    encoded_rows: int = 0  # lines with at least one tag value stored encoded (encode_tag_value)

    @property
    def lines(self) -> int:
        return int(self.pieces.shape[0])

    def chunk_bounds(self, batch_lines: int = DEFAULT_BATCH_LINES) -> list[tuple[int, int]]:
        """Row ranges of the bodies :meth:`chunks` yields."""
        step = max(1, int(batch_lines))
        return [(a, min(a + step, self.lines)) for a in range(0, self.lines, step)]

    def body(self, start: int, stop: int) -> bytes:
        """Line protocol for lines ``start:stop`` (newline-terminated)."""
        return "".join(self.pieces[start:stop].ravel().tolist()).encode("latin-1")

    def chunks(self, batch_lines: int = DEFAULT_BATCH_LINES) -> Iterator[bytes]:
        """Yield bodies of at most ``batch_lines`` lines."""
        for start, stop in self.chunk_bounds(batch_lines):
            yield self.body(start, stop)


def _timestamps(column: pd.Series, precision: str) -> np.ndarray:
    if precision not in PRECISION_FACTOR:
        raise LineProtocolError(f"precision must be one of {sorted(PRECISION_FACTOR)}, got {precision!r}")
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        raise LineProtocolError(
            f"time column {column.name!r} must hold timezone-aware datetimes (got {column.dtype}); "
            "localise naive times to UTC first"
        )
    if column.isna().any():
        raise LineProtocolError(f"time column {column.name!r} has {int(column.isna().sum())} missing values")
    # pandas 3: to_numpy() on tz-aware data builds Timestamp objects; asi8 is a zero-copy int64 view.
    nanos = pd.DatetimeIndex(column).tz_convert("UTC").as_unit("ns").asi8
    return nanos // PRECISION_FACTOR[precision]


def _factorize(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes (−1 = missing) and distinct values of a column.

    Object columns usually repeat a few string objects (one per entity, area, …), so they are
    factorized by object identity first (an int64 hash of the pointers, no string hashing or
    comparing), and only the few distinct objects are then factorized by value.
    """
    if not pd.api.types.is_object_dtype(column.dtype) and not pd.api.types.is_string_dtype(column.dtype):
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        return np.asarray(codes, dtype=np.int64), np.asarray(uniques)
    objects = column.to_numpy(dtype=object)
    if not objects.size:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    objects = np.ascontiguousarray(objects)
    pointers = np.ctypeslib.as_array((ctypes.c_ssize_t * objects.size).from_address(objects.ctypes.data))
    sample = pointers[:_IDENTITY_SAMPLE]
    if len(pd.unique(sample)) > sample.size // 4:
        # Mostly distinct objects (e.g. states parsed from JSON): identity buys nothing.
        codes, uniques = pd.factorize(objects, use_na_sentinel=True)
        return np.asarray(codes, dtype=np.int64), np.asarray(uniques, dtype=object)
    identity, distinct = pd.factorize(pointers)
    representative = np.empty(len(distinct), dtype=np.intp)
    representative[identity] = np.arange(objects.size)
    by_value, uniques = pd.factorize(objects[representative], use_na_sentinel=True)
    return np.asarray(by_value, dtype=np.int64)[identity], np.asarray(uniques, dtype=object)


def _tag_codes(column: pd.Series, name: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Codes into escaped ``,key=value`` pieces (code 0 is "absent": null or empty), and per
    code whether the value is stored encoded."""
    codes, uniques = _factorize(column)
    key = escape_key(name)
    pieces = [""]
    encoded = [False]
    for value in uniques.tolist():
        text = str(value)
        if text == "":
            pieces.append("")
            encoded.append(False)
            continue
        stored = encode_tag_value(text)
        pieces.append(f",{key}={escape_key(stored)}")
        encoded.append(stored != text)
    return codes + 1, pieces, np.asarray(encoded, dtype=bool)


def _field_values(column: pd.Series, name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Codes (−1 = missing), distinct values and the line-protocol kind of one field column."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return (*_factorize(column), "bool")
    if pd.api.types.is_integer_dtype(dtype):
        return (*_factorize(column), "int")
    if pd.api.types.is_float_dtype(dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        # Line protocol has no Inf; like NaN it means "no value for this field on this row".
        finite = np.isfinite(values)
        sample = values[:_IDENTITY_SAMPLE]
        if len(pd.unique(sample)) > sample.size // 2:
            # Mostly distinct (durations, raw readings): hashing them buys nothing; one per row.
            codes = np.where(finite, np.cumsum(finite) - 1, -1)
            return codes, values[finite], "float"
        codes, uniques = pd.factorize(np.where(finite, values, np.nan), use_na_sentinel=True)
        return np.asarray(codes, dtype=np.int64), uniques, "float"
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        raise LineProtocolError(f"field {name!r} has unsupported dtype {dtype}")
    return (*_factorize(column), "string")


def _format_floats(prefix: str, values: np.ndarray, fixed_from: int = _FIXED_FLOATS_FROM) -> list[str]:
    """``prefix`` + each float, exactly (the text parses back to the same double).

    Many distinct values (durations from microsecond timestamps) with at most six decimals use
    the fixed-precision ``%.6f``, about 40 % cheaper than the shortest-repr search of ``%r``; they
    round-trip because the double nearest to that decimal is the value itself (checked, not
    assumed). Few distinct values keep the shorter ``%r`` text.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < fixed_from:
        return list(map((prefix + "%r").__mod__, values.tolist()))
    with np.errstate(invalid="ignore", over="ignore"):
        micros = np.rint(values * 1e6)
        fixed = (np.abs(values) < 9e9) & (micros / 1e6 == values)
    if fixed.all():
        return list(map((prefix + "%.6f").__mod__, values.tolist()))
    out = np.empty(values.size, dtype=object)
    out[fixed] = list(map((prefix + "%.6f").__mod__, values[fixed].tolist()))
    out[~fixed] = list(map((prefix + "%r").__mod__, values[~fixed].tolist()))
    return out.tolist()


def _format_values(kind: str, prefix: str, values: np.ndarray) -> list[str]:
    """``prefix`` + each value in line-protocol syntax (one C-level format call per value)."""
    if kind == "float":
        return _format_floats(prefix, values)
    values = values.tolist()
    if kind == "int":
        return list(map((prefix + "%di").__mod__, map(int, values)))
    if kind == "bool":
        return [prefix + ("true" if v else "false") for v in values]
    return [prefix + _raw(_escape_string_field(v if isinstance(v, str) else str(v))) for v in values]


def _combine(codes: Sequence[np.ndarray], n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """One dense code per distinct combination of tag codes, plus a representative row per code."""
    combined = np.zeros(n_rows, dtype=np.int64)
    radix = 1
    for c in codes:
        width = int(c.max(initial=0)) + 1
        if radix * width >= 2**62:  # re-densify before the mixed-radix key could overflow
            combined = pd.factorize(combined)[0].astype(np.int64)
            radix = int(combined.max(initial=0)) + 1
        combined = combined * width + c
        radix *= width
    combined = pd.factorize(combined)[0].astype(np.int64)
    representative = np.empty(int(combined.max(initial=-1)) + 1, dtype=np.intp)
    representative[combined] = np.arange(n_rows)
    return combined, representative


def check_frame(
    df: pd.DataFrame, measurement: str, tags: Sequence[str], fields: Sequence[str], time: str, precision: str
) -> None:
    """Cheap checks of the frame's shape (columns, names, time column) before anything is sent."""
    if not fields:
        raise LineProtocolError("at least one field column is required")
    missing = [c for c in [time, *tags, *fields] if c not in df.columns]
    if missing:
        raise LineProtocolError(f"columns missing from the frame: {missing}")
    _escape_measurement(measurement)
    for name in [*tags, *fields]:
        _check_key_like(name, "column name")
    if len(df):
        _timestamps(df[time].iloc[:1], precision)
        if df[time].isna().any():
            raise LineProtocolError(f"time column {time!r} has {int(df[time].isna().sum())} missing values")


def prepare_lines(
    df: pd.DataFrame,
    measurement: str,
    tags: Sequence[str],
    fields: Sequence[str],
    time: str = "time",
    precision: str = "s",
) -> PreparedLines:
    """Format ``df`` once; rows whose fields are all missing are dropped and counted."""
    check_frame(df, measurement, tags, fields, time, precision)
    n = len(df)
    series_prefix = _escape_measurement(measurement)
    stamps = _timestamps(df[time], precision) if n else np.empty(0, dtype=np.int64)

    # Tags sorted by key (byte order), the order InfluxDB stores them in: saves it a sort per line.
    tag_names = sorted(tags, key=lambda t: t.encode("utf-8"))
    tag_parts = [_tag_codes(df[t], t) for t in tag_names]
    series_code, first_rows = _combine([c for c, _, _ in tag_parts], n)
    series_keys = np.array(
        [_raw(series_prefix + "".join(p[c[r]] for c, p, _ in tag_parts)) for r in first_rows.tolist()] or [""],
        dtype=object,
    )
    encoded = np.zeros(n, dtype=bool)
    for c, _, is_encoded in tag_parts:
        if is_encoded.any():
            encoded |= is_encoded[c]

    field_parts = [(_raw(escape_key(name)), *_field_values(df[name], name)) for name in fields]
    present = np.stack([c >= 0 for _, c, _, _ in field_parts], axis=1) if n else np.zeros((0, len(fields)), bool)
    rows = np.flatnonzero(present.any(axis=1))
    first_kept = present.argmax(axis=1)[rows]

    pieces = np.empty((rows.size, len(fields) + 2), dtype=object)
    pieces[:, 0] = series_keys[series_code[rows]]
    for j, (key, codes, uniques, kind) in enumerate(field_parts):
        # Choice 0: missing; 1..k: first field of its line (" key=v"); k+1..2k: later (",key=v").
        # Only variants some row uses are formatted: formatting distinct values is the hot part.
        k = len(uniques)
        c = codes[rows]
        index = np.where(c < 0, 0, c + 1 + np.where(first_kept == j, 0, k))
        used = np.bincount(index, minlength=2 * k + 1)
        choices = np.empty(2 * k + 1, dtype=object)
        choices[0] = ""
        for offset, separator in ((1, " "), (k + 1, ",")):
            wanted = np.flatnonzero(used[offset : offset + k])
            if wanted.size:
                selected = uniques if wanted.size == k else uniques[wanted]
                choices[offset + wanted] = _format_values(kind, separator + key + "=", selected)
        pieces[:, j + 1] = choices[index]
    kept_stamps = stamps[rows]
    ts_codes, ts_uniques = pd.factorize(kept_stamps)
    ts_text = np.array(list(map(" %d\n".__mod__, ts_uniques.tolist())), dtype=object)
    pieces[:, -1] = ts_text[ts_codes] if rows.size else ts_text[:0]
    return PreparedLines(
        pieces=pieces, dropped_rows=int(n - rows.size), timestamps=kept_stamps, encoded_rows=int(encoded[rows].sum())
    )


def frame_to_lines(
    df: pd.DataFrame,
    measurement: str,
    tags: Sequence[str],
    fields: Sequence[str],
    time: str = "time",
    precision: str = "s",
    batch_lines: int = DEFAULT_BATCH_LINES,
) -> LineBatch:
    """Serialise ``df`` into line-protocol bodies of at most ``batch_lines`` lines each."""
    prepared = prepare_lines(df, measurement, tags, fields, time=time, precision=precision)
    return LineBatch(
        body=list(prepared.chunks(batch_lines)), lines=prepared.lines, dropped_rows=prepared.dropped_rows
    )
