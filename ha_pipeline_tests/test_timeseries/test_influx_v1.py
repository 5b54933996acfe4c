"""InfluxV1Backend against the real InfluxDB 1.x of the test bed."""

from __future__ import annotations

import socket
import time
import uuid

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ha_pipeline.timeseries.backend import InfluxAuthError, InfluxWriteError, RetentionRejectedError
from ha_pipeline.timeseries.buckets import BucketSpec, InfluxSettings
from ha_pipeline.timeseries.influx_v1 import InfluxV1Backend, quote_ident

M = "home_assistant_events"
TAGS = ["entity_id", "area"]
FIELDS = ["state_value", "normalized_value", "count", "flag"]
START = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(days=2)
WEIRD_ID = "sensor.we'ird \"id\" \\x,a=b c\\\nnext ü☃"  # the newline follows a backslash: see line_protocol


def frame(n: int = 300, entities: tuple[str, ...] = ("sensor.a", "sensor.b", "light.c")) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    ent = np.array(entities, dtype=object)[np.arange(n) % len(entities)]
    values = np.round(rng.normal(20, 5, n), 3)
    values[::17] = np.nan
    values[1::17] = 7.0  # integral floats must come back as floats
    return pd.DataFrame(
        {
            "time": START + pd.to_timedelta(np.arange(n) * 60, unit="s"),
            "entity_id": ent,
            "area": np.where(np.arange(n) % 5 == 0, "", "Küche"),
            "state_value": values.astype(str),
            "normalized_value": values,
            "count": pd.array(np.arange(n), dtype="Int64"),
            "flag": np.arange(n) % 2 == 0,
        }
    )


@pytest.fixture
def bucket(backend: InfluxV1Backend) -> str:
    name = f"ts_{uuid.uuid4().hex[:8]}"
    assert backend.ensure_bucket(BucketSpec(name, M, 30, 1)) == "created"
    return name


def test_ensure_bucket_fixes_drift(backend: InfluxV1Backend) -> None:
    spec = BucketSpec(f"drift_{uuid.uuid4().hex[:8]}", M, 365, 7)
    assert backend.ensure_bucket(spec) == "created"
    assert backend.ensure_bucket(spec) == "unchanged"
    backend.query(f"ALTER RETENTION POLICY ha_pipeline ON {quote_ident(spec.name)} DURATION 30d SHARD DURATION 1d")
    assert backend.ensure_bucket(spec) == "updated"
    assert backend.ensure_bucket(spec) == "unchanged"
    rows = backend.query(f"SHOW RETENTION POLICIES ON {quote_ident(spec.name)}")[0]["series"][0]["values"]
    assert rows == [["ha_pipeline", "8760h0m0s", "168h0m0s", 1, True]]


def test_a_bucket_kept_forever_has_an_infinite_policy(backend: InfluxV1Backend) -> None:
    spec = BucketSpec(f"forever_{uuid.uuid4().hex[:8]}", M, 0, 365)
    assert backend.ensure_bucket(spec) == "created"
    assert backend.ensure_bucket(spec) == "unchanged"
    rows = backend.query(f"SHOW RETENTION POLICIES ON {quote_ident(spec.name)}")[0]["series"][0]["values"]
    assert rows == [["ha_pipeline", "0s", "8760h0m0s", 1, True]]
    # a bucket that had an expiry is switched to forever
    backend.query(f"ALTER RETENTION POLICY ha_pipeline ON {quote_ident(spec.name)} DURATION 30d SHARD DURATION 1d")
    assert backend.ensure_bucket(spec) == "updated"
    rows = backend.query(f"SHOW RETENTION POLICIES ON {quote_ident(spec.name)}")[0]["series"][0]["values"]
    assert rows[0][1] == "0s"


def test_write_read_count_round_trip_and_idempotent(backend: InfluxV1Backend, bucket: str) -> None:
    df = frame()
    stop = START + pd.Timedelta(days=1)
    assert backend.write(bucket, df, M, TAGS, FIELDS) == len(df)
    assert backend.count(bucket, M, START, stop) == len(df)
    assert backend.count(bucket, M, START, stop, field="normalized_value") == int(df.normalized_value.notna().sum())
    back = backend.read(bucket, M, START, stop).sort_values(["time"]).reset_index(drop=True)
    assert back["time"].tolist() == df["time"].tolist()
    assert back["entity_id"].tolist() == df["entity_id"].tolist()
    assert back["area"].fillna("").tolist() == df["area"].tolist()
    assert back["state_value"].tolist() == df["state_value"].tolist()
    assert np.array_equal(back["normalized_value"].to_numpy(), df["normalized_value"].to_numpy(), equal_nan=True)
    assert back["count"].tolist() == df["count"].tolist()
    assert back["flag"].tolist() == df["flag"].tolist()
    assert (back["normalized_value"].dtype, back["count"].dtype, back["flag"].dtype) == ("float64", "Int64", "boolean")

    assert backend.write(bucket, df, M, TAGS, FIELDS) == len(df)
    assert backend.count(bucket, M, START, stop) == len(df)  # same key + time overwrites

    only_b = backend.read(bucket, M, START, stop, tags={"entity_id": "sensor.b"}, fields=["state_value"])
    assert set(only_b.columns) == {"time", "state_value", "entity_id", "area"}
    assert len(only_b) == 100


def test_delete_removes_exactly_the_window_and_tags(backend: InfluxV1Backend, bucket: str) -> None:
    df = frame()
    backend.write(bucket, df, M, TAGS, FIELDS)
    lo, hi = START + pd.Timedelta(minutes=60), START + pd.Timedelta(minutes=120)
    backend.delete(bucket, M, lo, hi, tags={"entity_id": ["sensor.a", "light.c"]})
    expected = df[~(df.time.ge(lo) & df.time.lt(hi) & df.entity_id.isin(["sensor.a", "light.c"]))]
    back = backend.read(bucket, M, START, START + pd.Timedelta(days=1))
    assert sorted(zip(back.time, back.entity_id)) == sorted(zip(expected.time, expected.entity_id))


@pytest.mark.parametrize(
    "weird", [WEIRD_ID, "carriage\rreturn/.*", "Printer C:\\", "sensor.ends_in_newline\n", "~~looks%20encoded", "tab\there"]
)
def test_weird_entity_id_written_read_and_deleted_alone(backend: InfluxV1Backend, bucket: str, weird: str) -> None:
    df = frame(60, entities=(weird, "sensor.normal"))
    backend.write(bucket, df, M, TAGS, FIELDS)
    stop = START + pd.Timedelta(days=1)
    back = backend.read(bucket, M, START, stop, tags={"entity_id": weird})
    assert set(back.entity_id) == {weird} and len(back) == 30
    assert backend.series_counts(bucket, M, START, stop, "entity_id", "state_value") == {weird: 30, "sensor.normal": 30}
    backend.delete(bucket, M, START, stop, tags={"entity_id": weird})
    assert backend.count(bucket, M, START, stop, tags={"entity_id": weird}) == 0
    assert backend.count(bucket, M, START, stop) == 30
    assert set(backend.read(bucket, M, START, stop).entity_id) == {"sensor.normal"}


def test_type_conflict_names_the_line(backend: InfluxV1Backend, bucket: str) -> None:
    df = frame(10)
    backend.write(bucket, df, M, TAGS, FIELDS)
    bad = df.assign(normalized_value=df.state_value, time=df.time + pd.Timedelta(hours=1))
    with pytest.raises(InfluxWriteError, match="field type conflict") as info:
        backend.write(bucket, bad, M, TAGS, FIELDS)
    assert info.value.first_bad_line is not None and 'normalized_value="' in info.value.first_bad_line
    assert info.value.accepted == 0


def test_points_beyond_retention_raise_with_count(backend: InfluxV1Backend, bucket: str) -> None:
    old = frame(10).assign(time=lambda d: d.time - pd.Timedelta(days=400))
    new = frame(5).assign(time=lambda d: d.time + pd.Timedelta(days=1))
    with pytest.raises(RetentionRejectedError) as info:
        backend.write(bucket, pd.concat([old, new]), M, TAGS, FIELDS)
    assert (info.value.dropped, info.value.accepted) == (10, 5)
    assert "dropped" in str(info.value)


def test_count_by_window_counts_each_window_in_one_query(backend: InfluxV1Backend, bucket: str) -> None:
    # 300 rows a minute apart from START: 60 per hour for 5 hours; windows start at :30 (offset)
    backend.write(bucket, frame(), M, TAGS, FIELDS)
    start = START - pd.Timedelta(minutes=30)
    counts = backend.count_by_window(bucket, M, start, start + pd.Timedelta(hours=7), pd.Timedelta(hours=1))
    assert list(counts) == [start + pd.Timedelta(hours=h) for h in range(7)]
    assert list(counts.values()) == [30, 60, 60, 60, 60, 30, 0]
    by_field = backend.count_by_window(bucket, M, START, START + pd.Timedelta(hours=2), pd.Timedelta(hours=1),
                                       tags={"entity_id": "sensor.a"}, field="normalized_value")
    df = frame()
    expected = [
        int(df[(df.entity_id == "sensor.a") & df.normalized_value.notna() & (df.time >= lo) & (df.time < lo + pd.Timedelta(hours=1))].shape[0])
        for lo in (START, START + pd.Timedelta(hours=1))
    ]
    assert list(by_field.values()) == expected
    assert sum(counts.values()) == backend.count(bucket, M, start, start + pd.Timedelta(hours=7))


def test_write_stream_keeps_going_past_a_retention_rejection(backend: InfluxV1Backend, bucket: str) -> None:
    old = frame(10).assign(time=lambda d: d.time - pd.Timedelta(days=400))
    hours = [frame(120).assign(time=lambda d, h=h: d.time + pd.Timedelta(hours=2 * h)) for h in range(3)]
    with backend.write_stream(bucket, M, TAGS, FIELDS) as stream:
        parts = [stream.add(hours[0]), stream.add(old), stream.add(hours[1]), stream.add(hours[2])]
    assert [p.accepted for p in parts] == [120, 0, 120, 120]
    assert parts[1].rejected is not None and parts[1].rejected.dropped == 10
    assert [p.rejected for p in parts[::2]] == [None, None] and parts[3].rejected is None
    assert backend.count(bucket, M, START, START + pd.Timedelta(days=1)) == 360


def test_write_stream_keeps_going_past_refused_points(backend: InfluxV1Backend, bucket: str) -> None:
    """A partial write (InfluxDB stores the batch but for the points it refuses) is counted on
    its frame; the later frames are still stored: one odd value never costs the valid data."""
    backend.write(bucket, frame(10), M, TAGS, FIELDS)
    conflicting = frame(10).assign(normalized_value=lambda d: d.state_value, time=lambda d: d.time + pd.Timedelta(hours=1))
    later = [frame(10).assign(time=lambda d, h=h: d.time + pd.Timedelta(hours=2 + h)) for h in range(5)]
    with backend.write_stream(bucket, M, TAGS, FIELDS) as stream:
        odd = stream.add(conflicting)
        parts = [stream.add(part) for part in later]
    assert odd.refused is not None and "field type conflict" in str(odd.refused)
    assert odd.refused_points == 10 - odd.accepted
    assert [p.accepted for p in parts] == [10] * 5 and all(p.refused is None for p in parts)
    stored = backend.count(bucket, M, START + pd.Timedelta(hours=1), START + pd.Timedelta(days=3))
    assert stored == odd.accepted + 50
    with pytest.raises(InfluxWriteError, match="field type conflict"):
        backend.write(bucket, conflicting, M, TAGS, FIELDS)


def test_write_stream_stops_at_the_first_other_failure(backend: InfluxV1Backend) -> None:
    later = [frame(10).assign(time=lambda d, h=h: d.time + pd.Timedelta(hours=2 + h)) for h in range(50)]
    added = 0
    with pytest.raises(InfluxWriteError, match="has no bucket/database"):
        with backend.write_stream("no_such_database_here", M, TAGS, FIELDS) as stream:
            for part in later:
                stream.add(part)
                added += 1
    # 2 requests in flight + 1 waiting: the failure is known before many frames are queued
    assert added <= 4


def test_auth_errors_name_the_credential(influxdb_auth_server) -> None:
    url = influxdb_auth_server.url
    secret = "wrong-pass-XYZ"
    with InfluxV1Backend(InfluxSettings(url=url, api_version=1, username="admin", password=secret)) as wrong:
        with pytest.raises(InfluxAuthError, match="rejected the username/password in INFLUXDB_USERNAME") as info:
            wrong.ensure_bucket(BucketSpec("authdb", M, 30, 1))
        assert secret not in str(info.value) and secret not in repr(wrong)
    with InfluxV1Backend(InfluxSettings(url=url, api_version=1)) as anonymous:
        with pytest.raises(InfluxAuthError, match="no credentials were given"):
            anonymous.write("authdb", frame(3), M, TAGS, FIELDS)
    right = InfluxSettings(
        url=url, api_version=1, username=influxdb_auth_server.username, password=influxdb_auth_server.password
    )
    with InfluxV1Backend(right) as ok:
        assert ok.ensure_bucket(BucketSpec(f"auth_{uuid.uuid4().hex[:6]}", M, 30, 1)) == "created"


def test_storage_stats_reports_bytes_series_and_points(backend: InfluxV1Backend, bucket: str) -> None:
    backend.write(bucket, frame(), M, TAGS, FIELDS)
    deadline = time.monotonic() + 30  # _internal samples shard sizes every 10 s
    while (stats := backend.storage_stats()[bucket])["bytes"] is None and time.monotonic() < deadline:
        time.sleep(2)
    assert stats["series"] == 6  # 3 entities × (area "Küche" | no area)
    assert stats["points"] == 300
    assert stats["bytes"] is not None and stats["bytes"] > 0


def test_unreachable_server_fails_after_bounded_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: connection refused
    settings = InfluxSettings(url=f"http://127.0.0.1:{port}", api_version=1, username="u", password="pw-SECRET")
    with InfluxV1Backend(settings, max_retries=2, backoff_seconds=0.01) as unreachable:
        with pytest.raises(InfluxWriteError, match="after 3 attempts") as info:
            unreachable.write("db", frame(3), M, TAGS, FIELDS)
    assert info.value.accepted == 0 and "SECRET" not in str(info.value)


tag_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tag=tag_text.filter(lambda s: not s.endswith("\\") and "\n" not in s),
    text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30),
)
def test_property_round_trip_through_server(backend: InfluxV1Backend, bucket: str, tag: str, text: str) -> None:
    stamp = START + pd.Timedelta(seconds=abs(hash((tag, text))) % 86_400)
    df = pd.DataFrame({"time": [stamp], "entity_id": [tag], "state_value": [text]})
    backend.write(bucket, df, M, ["entity_id"], ["state_value"])
    back = backend.read(bucket, M, stamp, stamp + pd.Timedelta(seconds=1), tags={"entity_id": tag})
    assert back["entity_id"].tolist() == [tag]
    assert back["state_value"].tolist() == [text]
    backend.delete(bucket, M, stamp, stamp + pd.Timedelta(seconds=1), tags={"entity_id": tag})


def test_chunked_answers_are_split_into_documents_across_any_block_boundary() -> None:
    from ha_pipeline.timeseries.influx_v1 import _json_lines

    documents = [b'{"results":[{"statement_id":0,"series":[]}]}', b'{"a":"x' + b"y" * 5000 + b'"}', b"{}"]
    body = b"\n".join(documents) + b"\n\n"

    class Blocks:
        def __init__(self, size: int) -> None:
            self.size = size

        def iter_content(self, chunk_size: int):
            return (body[i:i + self.size] for i in range(0, len(body), self.size))

    for size in (1, 7, 4096, len(body)):
        assert list(_json_lines(Blocks(size))) == documents
