"""Errors that cannot heal fail the run at once, with their one sentence as the failure message;
transient ones keep the retry policy. Real Dagster runs with the assets' real retry policies."""

import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from ha_pipeline.defs import checks, jobs
from ha_pipeline.defs.assets import history, inventory, snapshots
from ha_pipeline.defs.resources import HomeAssistantResource, InfluxDBResource, fail_at_once, fails_at_once
from ha_pipeline.timeseries.backend import InfluxConnectionError, InfluxWriteError

TOKEN_SENTENCE = "rejected the access token (auth_invalid): create a long-lived access token"


def _run(job_name: str, resources: dict, **kwargs):
    defs = dg.Definitions(
        assets=[
            *inventory.ha_registries, inventory.ha_history, inventory.discovery,
            snapshots.device_snapshots, snapshots.entity_snapshots,
            history.events, history.hourly_summaries_asset,
        ],
        asset_checks=[checks.inventory_integrity],
        jobs=[jobs.discovery_job, jobs.events_job],
        resources=resources,
    )
    with dg.instance_for_test() as instance:
        started = time.monotonic()
        result = defs.resolve_job_def(job_name).execute_in_process(instance=instance, raise_on_error=False, **kwargs)
        return result, time.monotonic() - started


def _failure(result) -> tuple[str, str]:
    """The first step failure's description and the run failure's error message (what the run page shows)."""
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"], "must not be retried"
    [step] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    [run] = [e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE"]
    return step.event_specific_data.user_failure_data.description, run.event_specific_data.error.message


def test_a_wrong_token_fails_discovery_at_once_with_the_sentence(simulator, sqlite_store, influx_v1):
    ha = HomeAssistantResource(url=simulator.url, token="wrong-token")
    result, seconds = _run("discovery_job", {"ha": ha, "metadata_store": sqlite_store, "influxdb": influx_v1})
    description, run_message = _failure(result)
    assert seconds < 30
    assert TOKEN_SENTENCE in description and description.endswith("set HA_TOKEN.")
    assert description in run_message and "Exceeded max_retries" not in run_message
    assert "wrong-token" not in description


def test_a_wrong_token_fails_an_events_partition_at_once_with_the_sentence(simulator, sqlite_store, influx_v1):
    ha = HomeAssistantResource(url=simulator.url, token="wrong-token")
    hour = (datetime.now(timezone.utc) - timedelta(hours=2)).strftime("%Y-%m-%d-%H:00")
    result, seconds = _run(
        "events_job", {"ha": ha, "metadata_store": sqlite_store, "influxdb": influx_v1}, partition_key=hour
    )
    description, run_message = _failure(result)
    assert seconds < 30
    assert TOKEN_SENTENCE in description and description in run_message


def test_a_wrong_influxdb_password_fails_the_snapshots_at_once(simulator_ha, sqlite_store, influxdb_auth_server):
    influx = InfluxDBResource(
        url=influxdb_auth_server.url, api_version=1, username=influxdb_auth_server.username, password="wrong-pw"
    )
    result, seconds = _run("discovery_job", {"ha": simulator_ha, "metadata_store": sqlite_store, "influxdb": influx})
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"}
    assert steps == {"influxdb__device_snapshots", "influxdb__entity_snapshots"} and seconds < 30
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    [first, *_] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    description = first.event_specific_data.user_failure_data.description
    assert description.startswith("InfluxDB rejected the username/password in INFLUXDB_USERNAME/INFLUXDB_PASSWORD")
    assert "wrong-pw" not in description


class _WebPage(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _page(self) -> None:
        body = b"<!DOCTYPE html><html><head><title>Router login</title></head><body>" + b"x" * 4000 + b"</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page


@pytest.fixture
def web_page_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_web_page_at_influxdb_url_fails_at_once_without_the_page(simulator_ha, sqlite_store, web_page_url):
    influx = InfluxDBResource(url=web_page_url, api_version=1)
    result, seconds = _run("discovery_job", {"ha": simulator_ha, "metadata_store": sqlite_store, "influxdb": influx})
    [first, *_] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    description = first.event_specific_data.user_failure_data.description
    assert seconds < 30 and not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert description == (
        f"The server at {web_page_url} answered HTTP 200 with a web page, not InfluxDB: "
        "set INFLUXDB_URL to your InfluxDB server (by default http://<host>:8086)."
    )


def _attempts(error: Exception) -> int:
    calls = []

    @dg.asset(retry_policy=dg.RetryPolicy(max_retries=2, delay=0))
    @fails_at_once
    def flaky() -> None:
        calls.append(1)
        raise error

    dg.materialize([flaky], raise_on_error=False)
    return len(calls)


def test_transient_errors_keep_their_retries_and_permanent_ones_do_not():
    assert _attempts(InfluxConnectionError("cannot reach InfluxDB at http://x:8086: ConnectionError")) == 3
    assert _attempts(InfluxWriteError("no 2xx after 4 attempts", permanent=False)) == 3
    assert _attempts(InfluxWriteError("field type conflict")) == 1
    assert _attempts(ValueError("a bug")) == 3


def test_fail_at_once_passes_other_errors_on_unchanged():
    with pytest.raises(InfluxConnectionError), fail_at_once():
        raise InfluxConnectionError("down")
    with pytest.raises(dg.Failure) as info, fail_at_once():
        raise InfluxWriteError("field type conflict")
    assert info.value.description.startswith("field type conflict") and not info.value.allow_retries


def test_influxdb_url_credentials_never_reach_the_resource_config(monkeypatch, influxdb_auth_server):
    from ha_pipeline.defs.resources import default_resources

    host = influxdb_auth_server.url.split("://", 1)[1]
    user, password = influxdb_auth_server.username, influxdb_auth_server.password
    monkeypatch.setenv("INFLUXDB_URL", f"http://{user}:{password}@{host}")
    monkeypatch.setenv("INFLUXDB_API_VERSION", "1")
    resource = default_resources()["influxdb"]
    shown = dg.Definitions(resources={"influxdb": resource}).get_repository_def().get_top_level_resources()["influxdb"]
    config = shown.config_schema.as_field().default_value
    assert config["url"] == {"env": "INFLUXDB_URL"} and password not in str(config)
    with dg.build_resources({"influxdb": resource}) as built:
        backend = built.influxdb.backend()
        assert backend.settings.url == influxdb_auth_server.url and password not in repr(backend.settings)
        assert backend.query("SHOW DATABASES")  # the credentials from the URL authenticate (ping would not)
