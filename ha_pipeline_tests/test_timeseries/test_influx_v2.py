"""InfluxV2Backend contract tests against a recording InfluxDB 2 stub."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest

from ha_pipeline.timeseries.backend import (
    InfluxAuthError,
    InfluxConnectionError,
    InfluxError,
    InfluxQueryError,
    InfluxWriteError,
    make_backend,
)
from ha_pipeline.timeseries.buckets import BucketSpec, InfluxSettings
from ha_pipeline.timeseries.influx_v2 import InfluxV2Backend, delete_predicate, flux_string
from ha_pipeline.timeseries.line_protocol import LineProtocolError
from ha_pipeline_tests.test_timeseries.v2_stub import ORG_ID, V2Stub

TOKEN = "tok-SECRET-123"
T0 = pd.Timestamp("2024-05-01T00:00:00", tz="UTC")
WEIRD = 'sensor.we\'ird "x" \\ ${y} ü'


@pytest.fixture
def stub() -> Iterator[V2Stub]:
    server = V2Stub(token=TOKEN).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def backend(stub: V2Stub) -> Iterator[InfluxV2Backend]:
    settings = InfluxSettings(url=stub.url, api_version=2, token=TOKEN, org="home")
    b = make_backend(settings, batch_lines=2, backoff_seconds=0.01)
    assert isinstance(b, InfluxV2Backend)
    yield b
    b.close()


def test_every_request_carries_the_token(backend: InfluxV2Backend, stub: V2Stub) -> None:
    backend.ensure_bucket(BucketSpec("events", "m", 365, 7))
    assert stub.requests and all(r.headers.get("Authorization") == f"Token {TOKEN}" for r in stub.requests)


def test_ensure_bucket_created_updated_unchanged(backend: InfluxV2Backend, stub: V2Stub) -> None:
    spec = BucketSpec("events", "m", 365, 7)
    assert backend.ensure_bucket(spec) == "created"
    post = stub.of("/api/v2/buckets")[-1]
    assert post.method == "POST"
    assert json.loads(post.body) == {
        "name": "events", "orgID": ORG_ID, "rp": "0",
        "retentionRules": [{"type": "expire", "everySeconds": 365 * 86400, "shardGroupDurationSeconds": 7 * 86400}],
    }
    assert backend.ensure_bucket(spec) == "unchanged"
    next(iter(stub.buckets.values()))["retentionRules"][0]["everySeconds"] = 86400  # drift by hand
    assert backend.ensure_bucket(spec) == "updated"
    patch = [r for r in stub.requests if r.method == "PATCH"][-1]
    assert json.loads(patch.body)["retentionRules"][0]["everySeconds"] == 365 * 86400
    assert backend.ensure_bucket(spec) == "unchanged"


def test_a_bucket_kept_forever_has_no_expiry(backend: InfluxV2Backend, stub: V2Stub) -> None:
    spec = BucketSpec("events_monthly", "m", 0, 365)
    assert backend.ensure_bucket(spec) == "created"
    assert json.loads(stub.of("/api/v2/buckets")[-1].body)["retentionRules"] == []
    assert backend.ensure_bucket(spec) == "unchanged"
    # a bucket that had an expiry: a PATCH with no rules changes nothing, everySeconds 0 is forever
    next(iter(stub.buckets.values()))["retentionRules"] = [
        {"type": "expire", "everySeconds": 86400, "shardGroupDurationSeconds": 3600}
    ]
    assert backend.ensure_bucket(spec) == "updated"
    patch = [r for r in stub.requests if r.method == "PATCH"][-1]
    assert json.loads(patch.body)["retentionRules"][0]["everySeconds"] == 0
    assert backend.ensure_bucket(spec) == "unchanged"


def test_write_batches_line_protocol_synchronously(backend: InfluxV2Backend, stub: V2Stub) -> None:
    df = pd.DataFrame(
        {"time": [T0, T0 + pd.Timedelta(seconds=1), T0 + pd.Timedelta(seconds=2)],
         "entity_id": ["sensor.a", WEIRD, "sensor.a"], "value": [1.5, 2.0, float("nan")], "s": ["x", "y", "z"]}
    )
    assert backend.write("events", df, "home_assistant_events", ["entity_id"], ["value", "s"]) == 3
    writes = stub.of("/api/v2/write")
    assert len(writes) == 2  # batch_lines=2
    assert all(w.query == {"org": ["home"], "bucket": ["events"], "precision": ["s"]} for w in writes)
    body = b"".join(w.body for w in writes).decode()
    assert sorted(body.splitlines()) == sorted([
        'home_assistant_events,entity_id=sensor.a value=1.5,s="x" 1714521600',
        'home_assistant_events,entity_id=sensor.we\'ird\\ "x"\\ \\\\ ${y}\\ ü value=2.0,s="y" 1714521601',
        'home_assistant_events,entity_id=sensor.a s="z" 1714521602',
    ])


def test_write_retries_5xx_then_raises_typed_4xx(backend: InfluxV2Backend, stub: V2Stub) -> None:
    df = pd.DataFrame({"time": [T0], "v": [1.0]})
    stub.write_replies = [(503, {"code": "unavailable", "message": "busy"})]
    assert backend.write("events", df, "m", [], ["v"]) == 1
    assert len(stub.of("/api/v2/write")) == 2
    stub.write_replies = [(400, {"code": "invalid", "message": 'partial write: field type conflict: input field "v" on measurement "m" is type float, already exists as type string dropped=1'})]
    with pytest.raises(InfluxWriteError) as info:
        backend.write("events", df, "m", [], ["v"])
    assert info.value.first_bad_line == "m v=1.0 1714521600" and info.value.accepted == 0


def test_delete_predicate_and_inclusive_stop(backend: InfluxV2Backend, stub: V2Stub) -> None:
    backend.delete("events", "home_assistant_events", T0, T0 + pd.Timedelta(hours=1), tags={"entity_id": [WEIRD, "b"]})
    deletes = stub.of("/api/v2/delete")
    assert [d.query for d in deletes] == [{"org": ["home"], "bucket": ["events"]}] * 2
    bodies = [json.loads(d.body) for d in deletes]
    assert bodies[0]["start"] == "2024-05-01T00:00:00.000000Z"
    assert bodies[0]["stop"] == "2024-05-01T00:59:59.999999999Z"
    assert sorted(b["predicate"] for b in bodies) == sorted(
        [delete_predicate("home_assistant_events", {"entity_id": v}) for v in (WEIRD, "b")]
    )
    assert '"entity_id"="sensor.we\'ird \\"x\\" \\\\ ${y} ü"' in bodies[0]["predicate"] + bodies[1]["predicate"]


def test_read_and_count_send_escaped_flux(backend: InfluxV2Backend, stub: V2Stub) -> None:
    stub.query_csv = [
        "#datatype,string,long,dateTime:RFC3339,string,double,string\n"
        "#group,false,false,false,false,false,false\n"
        "#default,_result,,,,,\n"
        ",result,table,_time,entity_id,value,s\n"
        ",,0,2024-05-01T00:00:00Z,sensor.a,1.5,x\n\n",
        "#datatype,string,long,string,long\n"
        "#group,false,false,true,false\n"
        "#default,_result,,,\n"
        ",result,table,_field,_value\n"
        ",,0,s,7\n,,1,value,5\n\n",
    ]
    df = backend.read("events", "m", T0, T0 + pd.Timedelta(hours=1), tags={"entity_id": WEIRD}, fields=["value", "s"])
    assert df.to_dict("records") == [{"time": T0, "entity_id": "sensor.a", "value": 1.5, "s": "x"}]
    assert backend.count("events", "m", T0, T0 + pd.Timedelta(hours=1)) == 7
    queries = [json.loads(r.body) for r in stub.of("/api/v2/query")]
    assert all(r.query == {"org": ["home"]} for r in stub.of("/api/v2/query"))
    flux = queries[0]["query"]
    assert 'from(bucket: "events")' in flux
    assert 'range(start: time(v: "2024-05-01T00:00:00.000000Z"), stop: time(v: "2024-05-01T01:00:00.000000Z"))' in flux
    assert f"r[\"entity_id\"] == {flux_string(WEIRD)}" in flux
    assert '"sensor.we\'ird \\"x\\" \\\\ \\${y} ü"' == flux_string(WEIRD)
    assert 'r._field == "value" or r._field == "s"' in flux
    assert queries[1]["query"].endswith('|> group(columns: ["_field"])\n  |> count()')


def test_count_by_window_sends_one_windowed_flux_and_keys_by_window_start(backend: InfluxV2Backend, stub: V2Stub) -> None:
    # what InfluxDB 2 answers for count() per field and window (timeSrc _start), one table per field
    stub.query_csv = [
        "#datatype,string,long,string,dateTime:RFC3339,long\n"
        "#group,false,false,true,false,false\n"
        "#default,_result,,,,\n"
        ",result,table,_field,_time,_value\n"
        ",,0,state_value,2024-05-01T00:30:00Z,7\n,,0,state_value,2024-05-01T01:30:00Z,0\n"
        ",,0,state_value,2024-05-01T02:30:00Z,4\n"
        ",,1,normalized_value,2024-05-01T00:30:00Z,5\n,,1,normalized_value,2024-05-01T02:30:00Z,9\n\n",
    ]
    start = T0 + pd.Timedelta(minutes=30)
    counts = backend.count_by_window("events", "m", start, start + pd.Timedelta(hours=3), pd.Timedelta(hours=1),
                                     tags={"entity_id": WEIRD})
    assert counts == {start: 7, start + pd.Timedelta(hours=1): 0, start + pd.Timedelta(hours=2): 9}
    flux = json.loads(stub.of("/api/v2/query")[-1].body)["query"]
    assert 'range(start: time(v: "2024-05-01T00:30:00.000000Z"), stop: time(v: "2024-05-01T03:30:00.000000Z"))' in flux
    assert f"r[\"entity_id\"] == {flux_string(WEIRD)}" in flux
    assert flux.endswith(
        '|> group(columns: ["_field"])\n'
        '  |> aggregateWindow(every: 3600000000000ns, offset: 1800000000000ns, fn: count, timeSrc: "_start")'
    )


def test_write_stream_feeds_frames_into_one_pipeline(stub: V2Stub) -> None:
    settings = InfluxSettings(url=stub.url, api_version=2, token=TOKEN, org="home")
    frames = [pd.DataFrame({"time": pd.date_range(T0 + pd.Timedelta(hours=h), periods=2, freq="s"), "v": 1.0})
              for h in range(3)]
    # one batch per frame and one request at a time, so the stub's replies meet the frames in order
    with InfluxV2Backend(settings, batch_lines=2, max_in_flight=1, backoff_seconds=0.01) as b:
        stub.write_replies = [(204, {}), (422, {"code": "unprocessable entity", "message":
                              "failure writing points to database: partial write: points beyond retention policy dropped=2"})]
        with b.write_stream("events", "m", [], ["v"]) as stream:
            parts = [stream.add(f) for f in frames]
        assert [(p.rows, p.accepted) for p in parts] == [(2, 2), (2, 0), (2, 2)]
        assert [p.rejected is not None for p in parts] == [False, True, False]
        assert parts[1].rejected.dropped == 2
        writes = stub.of("/api/v2/write")
        assert [w.body.decode() for w in writes] == [f"m v=1.0 {t}\nm v=1.0 {t + 1}\n" for t in (1714521600, 1714525200, 1714528800)]

        stub.write_replies = [(400, {"code": "invalid", "message": "unable to parse 'm v=x 1': bad field"})]
        with pytest.raises(InfluxWriteError, match="unable to parse") as info:
            with b.write_stream("events", "m", [], ["v"]) as stream:
                for f in frames:
                    stream.add(f)
        # the refused frame and at most the one queued behind it were sent, never the third
        sent = len(stub.of("/api/v2/write")) - len(writes)
        assert sent in (1, 2) and info.value.accepted == 2 * (sent - 1)


def test_auth_errors_name_the_token_without_printing_it(stub: V2Stub) -> None:
    df = pd.DataFrame({"time": [T0], "v": [1.0]})
    for token, expected in [("wrong-SECRET", "rejected the token in INFLUXDB_TOKEN"), (None, "set INFLUXDB_TOKEN")]:
        b = InfluxV2Backend(InfluxSettings(url=stub.url, api_version=2, token=token, org="home"))
        with pytest.raises(InfluxAuthError, match=expected) as info:
            b.write("events", df, "m", [], ["v"])
        assert "SECRET" not in str(info.value) and "SECRET" not in repr(b)
        b.close()


def test_delete_predicate_escaping() -> None:
    assert delete_predicate("m", {"e": 'a"b\\c d'}) == '_measurement="m" AND "e"="a\\"b\\\\c d"'
    # a value line protocol cannot carry is matched as stored (line_protocol.encode_tag_value)
    assert delete_predicate("m", {"e": 'a"b\\c\nd'}) == '_measurement="m" AND "e"="~~a\\"b%5Cc%0Ad"'
    # a carriage return, which the predicate scanner cannot carry, is stored (and so matched) encoded
    assert delete_predicate("m", {"e": "a\rb"}) == '_measurement="m" AND "e"="~~a%0Db"'
    with pytest.raises(InfluxQueryError, match="carriage return"):
        delete_predicate("m\r", {})


def test_tag_values_line_protocol_cannot_carry_are_written_encoded(stub: V2Stub) -> None:
    settings = InfluxSettings(url=stub.url, api_version=2, token=TOKEN, org="home")
    df = pd.DataFrame({"time": pd.date_range(T0, periods=5, freq="s"), "e": ["a", "b", "c", "C:\\", "bad\nvalue"], "v": 1.0})
    with InfluxV2Backend(settings, batch_lines=2, prepare_rows=2) as b:
        assert b.write("events", df, "m", ["e"], ["v"]) == 5
        with pytest.raises(LineProtocolError):  # our own names are never encoded: caught before sending
            b.write("events", df.rename(columns={"e": "e\n"}), "m", ["e\n"], ["v"])
    bodies = b"".join(r.body for r in stub.of("/api/v2/write"))
    assert b"e=~~C:%5C v=1.0" in bodies and b"e=~~bad%0Avalue v=1.0" in bodies
    assert len(stub.of("/api/v2/write")) == 3


CARDINALITY_CSV = (
    "#datatype,string,long,long\n#group,false,false,false\n#default,_result,,\n"
    ",result,table,_value\n,,0,{n}\n\n"
)


def shard_gauges(bucket_id: str, shard: int, disk: float, tsm: float, wal: float) -> str:
    """The per-shard storage lines of an InfluxDB 2.x /metrics page (docs' "InfluxDB OSS metrics")."""
    labels = (
        f'bucket="{bucket_id}",engine="tsm1",id="{shard}",'
        f'path="/var/lib/influxdb2/engine/data/{bucket_id}/autogen/{shard}",'
        f'walPath="/var/lib/influxdb2/engine/wal/{bucket_id}/autogen/{shard}"'
    )
    return (
        f"storage_shard_disk_size{{{labels}}} {disk}\n"
        f"storage_tsm_files_disk_bytes{{{labels}}} {tsm}\n"
        f"storage_wal_size{{{labels}}} {wal}\n"
    )


def metrics_page(shards: str) -> str:
    """A realistic /metrics page: unrelated families around the storage gauges, grouped by family."""
    families: dict[str, list[str]] = {}
    for line in shards.splitlines():
        families.setdefault(line.split("{", 1)[0], []).append(line)
    helps = {
        "storage_shard_disk_size": "Gauge of the disk size for the shard",
        "storage_tsm_files_disk_bytes": "Gauge of data size in bytes for each shard",
        "storage_wal_size": "Gauge of size of WAL in bytes",
    }
    out = [
        "# HELP go_goroutines Number of goroutines that currently exist.",
        "# TYPE go_goroutines gauge",
        "go_goroutines 1566",
        "# HELP influxdb_info Information about the influxdb environment.",
        "# TYPE influxdb_info gauge",
        'influxdb_info{arch="amd64",build_date="2023-04-28T14:24:14Z",commit="3a2a1e1",cpus="4",os="linux",version="v2.7.1"} 1',
    ]
    for name, lines in families.items():
        out += [f"# HELP {name} {helps[name]}", f"# TYPE {name} gauge", *lines]
    out += [
        "# HELP storage_retention_check_duration Histogram of duration of retention check (in seconds)",
        "# TYPE storage_retention_check_duration histogram",
        'storage_retention_check_duration_bucket{le="0.005"} 1',
        'storage_retention_check_duration_bucket{le="+Inf"} 1',
        "storage_retention_check_duration_sum 0.000351857",
        "storage_retention_check_duration_count 1",
    ]
    return "\n".join(out) + "\n"


def test_ping_and_storage_stats(backend: InfluxV2Backend, stub: V2Stub) -> None:
    assert backend.ping() == "v2.7.stub"
    backend.ensure_bucket(BucketSpec("events", "m", 365, 7))
    backend.ensure_bucket(BucketSpec("events_hourly", "m", 730, 7))
    backend.ensure_bucket(BucketSpec("devices", "m", 3650, 7))  # no shard yet
    ids = {b["name"]: b["id"] for b in stub.buckets.values()}
    stub.metrics = metrics_page(
        shard_gauges(ids["events"], 561, 4.188743e06, 4.1e06, 88743)
        + shard_gauges(ids["events"], 562, 1_000_000, 1_000_000, 0)
        + shard_gauges(ids["events_hourly"], 563, 20480, 0, 20480)
        + shard_gauges("ffffffffffffffff", 1, 9.9e09, 9.9e09, 0)  # _monitoring / another org: ignored
    )
    stub.query_csv = [CARDINALITY_CSV.format(n=n) for n in (2000, 50, 7)]
    assert backend.storage_stats() == {
        # bytes = the sum of storage_shard_disk_size (TSM + WAL) of the bucket's shards, no more
        "events": {"bytes": 4_188_743 + 1_000_000, "series": 2000, "points": None},
        "events_hourly": {"bytes": 20480, "series": 50, "points": None},
        "devices": {"bytes": 0, "series": 7, "points": None},
    }
    metrics_get = stub.of("/metrics")
    assert len(metrics_get) == 1 and metrics_get[0].method == "GET"
    assert metrics_get[0].headers.get("Authorization") == f"Token {TOKEN}"
    flux = json.loads(stub.of("/api/v2/query")[0].body)["query"]
    assert flux == 'import "influxdata/influxdb"\ninfluxdb.cardinality(bucket: "events", start: time(v: 0))'


@pytest.mark.parametrize(
    ("metrics", "status", "reason"),
    [
        (None, 200, "HTTP 404"),  # metrics-disabled
        ("unauthorized access", 401, "HTTP 401"),
        ("# TYPE go_goroutines gauge\ngo_goroutines 12\n", 200, "no storage_shard_disk_size gauge"),
        ("storage_shard_disk_size{bucket=\"x\" 12\n", 200, "cannot parse"),
    ],
)
def test_storage_stats_without_readable_metrics_logs_and_reports_none(
    backend: InfluxV2Backend, stub: V2Stub, caplog: pytest.LogCaptureFixture,
    metrics: str | None, status: int, reason: str,
) -> None:
    backend.ensure_bucket(BucketSpec("events", "m", 365, 7))
    stub.metrics, stub.metrics_status = metrics, status
    stub.query_csv = [CARDINALITY_CSV.format(n=3)]
    with caplog.at_level("WARNING", logger="ha_pipeline.timeseries.influx_v2"):
        assert backend.storage_stats() == {"events": {"bytes": None, "series": 3, "points": None}}
    assert "bucket sizes are not measured" in caplog.text and reason in caplog.text
    assert TOKEN not in caplog.text
    with pytest.raises(InfluxError, match=reason):
        backend.shard_bytes_by_bucket_id()


def test_storage_stats_when_metrics_server_is_unreachable() -> None:
    settings = InfluxSettings(url="http://127.0.0.1:9", api_version=2, token=TOKEN, org="home", timeout_seconds=2)
    with InfluxV2Backend(settings) as b, pytest.raises(InfluxConnectionError, match="cannot read http://127.0.0.1:9/metrics"):
        b.shard_bytes_by_bucket_id()
