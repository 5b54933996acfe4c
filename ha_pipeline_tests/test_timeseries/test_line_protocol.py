"""Line protocol from DataFrames: escaping, types, missing values, precision (no server)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ha_pipeline.timeseries.line_protocol import (
    LineProtocolError,
    _format_floats,
    decode_tag_column,
    decode_tag_value,
    encode_tag_value,
    frame_to_lines,
    prepare_lines,
)

T0 = pd.Timestamp("2024-03-01T12:00:00.123456789", tz="UTC")


def lines_of(df: pd.DataFrame, tags: list[str], fields: list[str], **kw: object) -> list[str]:
    batch = frame_to_lines(df, "m", tags, fields, **kw)
    return b"".join(batch.body).decode("utf-8").splitlines()


def test_types_escaping_and_sorted_tags() -> None:
    df = pd.DataFrame(
        {
            "time": [T0],
            "z tag": ["a,b=c d"],
            "a": ["x"],
            "f": [1.5],
            "i": pd.array([3], dtype="Int64"),
            "b": [True],
            "s": ['say "hi" \\ now\nnext'],
        }
    )
    assert lines_of(df, ["z tag", "a"], ["f", "i", "b", "s"]) == [
        'm,a=x,z\\ tag=a\\,b\\=c\\ d f=1.5,i=3i,b=true,s="say \\"hi\\" \\\\ now',
        'next" 1709294400',
    ]


def test_missing_values_dropped_per_field_and_empty_rows_counted() -> None:
    df = pd.DataFrame(
        {
            "time": [T0, T0, T0],
            "tag": ["", None, "t"],
            "f": [np.nan, 2.0, np.inf],
            "s": [None, None, "x"],
        }
    )
    batch = frame_to_lines(df, "meas ure,x", ["tag"], ["f", "s"])
    assert batch.dropped_rows == 1
    assert batch.lines == 2
    assert b"".join(batch.body).decode().splitlines() == [
        "meas\\ ure\\,x f=2.0 1709294400",
        'meas\\ ure\\,x,tag=t s="x" 1709294400',
    ]


@pytest.mark.parametrize(
    ("precision", "stamp"),
    [("s", "1709294400"), ("ms", "1709294400123"), ("us", "1709294400123456"), ("ns", "1709294400123456789")],
)
def test_precision(precision: str, stamp: str) -> None:
    df = pd.DataFrame({"time": [T0.tz_convert("Europe/Berlin")], "f": [1.0]})
    assert lines_of(df, [], ["f"], precision=precision) == [f"m f=1.0 {stamp}"]


def test_batches_split_lines_and_keep_order() -> None:
    df = pd.DataFrame({"time": pd.date_range(T0, periods=7, freq="s"), "f": np.arange(7.0)})
    batch = frame_to_lines(df, "m", [], ["f"], batch_lines=3)
    assert [len(b.splitlines()) for b in batch.body] == [3, 3, 1]
    assert b"".join(batch.body).decode().splitlines()[-1] == "m f=6.0 1709294406"


def test_unicode_is_utf8() -> None:
    df = pd.DataFrame({"time": [T0], "area": ["Küche °"], "unit": ["°C"]})
    body = b"".join(frame_to_lines(df, "m", ["area"], ["unit"]).body)
    assert body == 'm,area=Küche\\ ° unit="°C" 1709294400\n'.encode()


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("Printer C:\\", "~~Printer C:%5C"),
        ("Line1\nLine2", "~~Line1%0ALine2"),
        ("sensor.x\n", "~~sensor.x%0A"),
        ("cr\rlf", "~~cr%0Dlf"),
        ("~~already", "~~~~already"),
        ("50 % \\ back", "50 % \\ back"),  # carried as is: only what line protocol cannot hold is encoded
    ],
)
def test_tag_values_line_protocol_cannot_carry_are_encoded_reversibly(value: str, stored: str) -> None:
    df = pd.DataFrame({"time": [T0, T0], "tag": [value, "plain"], "f": [1.0, 2.0]})
    prepared = prepare_lines(df, "m", ["tag"], ["f"])
    body = prepared.body(0, prepared.lines).decode("utf-8")
    assert body.count("\n") == 2  # still two lines
    assert encode_tag_value(value) == stored and decode_tag_value(stored) == value
    assert prepared.encoded_rows == (stored != value)
    assert decode_tag_column(pd.Series([stored, None, "plain"], dtype=object)).tolist() == [value, None, "plain"]


@given(st.text())
def test_tag_encoding_round_trips_and_is_line_safe(value: str) -> None:
    stored = encode_tag_value(value)
    assert decode_tag_value(stored) == value
    assert "\n" not in stored and "\r" not in stored and not stored.endswith("\\")


def test_our_own_names_are_not_encoded() -> None:
    df = pd.DataFrame({"time": [T0], "bad\nkey": ["x"], "f": [1.0]})
    with pytest.raises(LineProtocolError, match="cannot be written"):
        prepare_lines(df, "m", ["bad\nkey"], ["f"])


def test_naive_time_refused() -> None:
    df = pd.DataFrame({"time": [pd.Timestamp("2024-01-01")], "f": [1.0]})
    with pytest.raises(LineProtocolError, match="timezone-aware"):
        prepare_lines(df, "m", [], ["f"])


def test_empty_frame() -> None:
    df = pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"), "t": [], "f": []})
    batch = frame_to_lines(df, "m", ["t"], ["f"])
    assert (batch.lines, batch.dropped_rows, batch.body) == (0, 0, [])


def test_repeated_objects_and_equal_copies_share_one_tag_value() -> None:
    # Many rows referencing a few string objects take the identity path; an equal string held by
    # another object (and a None) must still land on the same tag / absent tag.
    a, b = "sensor.a", "sensor.b"
    copy_of_a = "".join(["sensor.", "a"])
    assert copy_of_a is not a
    ids = np.array([a, b] * 20_000, dtype=object)
    ids[7], ids[8] = copy_of_a, None
    df = pd.DataFrame({"time": pd.Timestamp("2024-01-01", tz="UTC"), "entity_id": ids, "f": 1.0})
    lines = b"".join(frame_to_lines(df, "m", ["entity_id"], ["f"]).body).decode().splitlines()
    assert lines[7] == "m,entity_id=sensor.a f=1.0 1704067200"
    assert lines[8] == "m f=1.0 1704067200"
    assert {line.split(" ")[0] for line in lines} == {"m,entity_id=sensor.a", "m,entity_id=sensor.b", "m"}


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(st.lists(finite | st.integers(-10**9, 10**9).map(lambda i: i / 1e6), min_size=1, max_size=50))
def test_float_text_parses_back_to_the_same_double(values: list[float]) -> None:
    df = pd.DataFrame({"time": pd.Timestamp("2024-01-01", tz="UTC"), "f": np.array(values, dtype=np.float64)})
    lines = b"".join(frame_to_lines(df, "m", [], ["f"]).body).decode().splitlines()
    assert [float(line.split(" ")[1].removeprefix("f=")) for line in lines] == values
    # The fixed-precision path taken for many distinct values is exact too.
    texts = _format_floats(",f=", np.array(values, dtype=np.float64), fixed_from=0)
    assert [float(t.removeprefix(",f=")) for t in texts] == values


def test_many_high_cardinality_tags_keep_their_series() -> None:
    # 5 tags × 20k distinct values exceed a 62-bit mixed-radix key: the combiner must re-densify.
    n = 20_000
    rng = np.random.default_rng(3)
    cols = {f"t{i}": np.array([f"v{x}" for x in rng.permutation(n)], dtype=object) for i in range(5)}
    df = pd.DataFrame({"time": pd.Timestamp("2024-01-01", tz="UTC"), **cols, "f": 1.0})
    lines = b"".join(frame_to_lines(df, "m", list(cols), ["f"]).body).decode().splitlines()
    expected = [
        "m," + ",".join(f"t{i}={cols[f't{i}'][r]}" for i in range(5)) + " f=1.0 1704067200" for r in range(n)
    ]
    assert lines == expected
