"""End to end through the web UI: dagster-webserver + dagster-daemon against the project.

Real InfluxDB 1.x and the simulated HA; everything on 127.0.0.1, ports picked here, a temp
DAGSTER_HOME with the project's dagster.yaml. Asserts through GraphQL, then screenshots the
asset graph (every group expanded, every asset node in view) with headless Chromium, driven
through the DevTools protocol, into test-logs/asset-graph.png (and into docs/asset-graph.png
when HA_PIPELINE_REFRESH_SCREENSHOT=1, i.e. `make screenshot`: a test run leaves the tree clean).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import requests
import websockets.sync.client

from ha_pipeline.defs.operations import latest_expected_hour

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "test-logs" / "asset-graph.png"
DOCS_SCREENSHOT = ROOT / "docs" / "asset-graph.png"
LOCATION = "ha_pipeline"

ASSET_KEYS = {
    "sqlite/areas", "sqlite/devices", "sqlite/entities", "sqlite/config_entries", "sqlite/registry_changes",
    "influxdb/device_snapshots", "influxdb/entity_snapshots",
    "influxdb/events", "influxdb/hourly_summaries", "influxdb/daily_summaries",
    "reports/storage_report",
}
JOBS = {"discovery_job", "events_job", "daily_rollup_job", "retention_job", "storage_report_job"}

pytestmark = [pytest.mark.real_influx, pytest.mark.timeout(900)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Stop a server we started and the children it spawned (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@dataclass
class UI:
    url: str
    env: dict[str, str]
    home: Path

    def gql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


@pytest.fixture(scope="module")
def ui(influxdb_server, simulator, tmp_path_factory) -> Iterator[UI]:
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    data = tmp_path_factory.mktemp("data")
    suffix = uuid.uuid4().hex[:6]
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "HA_URL": simulator.url,
        "HA_TOKEN": simulator.token,
        "INFLUXDB_URL": influxdb_server.url,
        "INFLUXDB_API_VERSION": "1",
        "HA_PIPELINE_DATA_DIR": str(data),
        "HA_PIPELINE_DB_URL": f"sqlite:///{data / 'ha_metadata.db'}",
        "HA_PIPELINE_PARTITIONS_START": (datetime.now(timezone.utc) - timedelta(days=2)).strftime("%Y-%m-%d"),
        # The test launches runs itself; automation stays off so schedules do not race it.
        "HA_PIPELINE_AUTOMATION": "off",
        **{f"INFLUXDB_BUCKET_{b.upper()}": f"ui{suffix}_{b}"
           for b in ("events", "events_hourly", "events_daily", "devices", "entities")},
    }
    port = free_port()
    bin_dir = Path(sys.executable).parent
    log_dir = tmp_path_factory.mktemp("ui_logs")
    # Create Dagster's own SQLite schema once: the webserver and the daemon starting together
    # on an empty DAGSTER_HOME race each other creating it ("alembic_version already exists").
    subprocess.run([str(bin_dir / "dagster"), "instance", "migrate"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    procs = []
    try:
        for name, cmd in [
            ("webserver", [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"]),
            ("daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"]),
        ]:
            log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        ui = UI(url=f"http://127.0.0.1:{port}", env=env, home=home)
        wait_for_location(ui, procs, log_dir)
        yield ui
    finally:
        for proc in procs:
            stop(proc)


def wait_for_location(ui: UI, procs: list[subprocess.Popen], log_dir: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    query = """{ workspaceOrError { ... on Workspace { locationEntries { name
        locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in log_dir.glob("*.log"))
                pytest.fail(f"a Dagster process exited with {proc.returncode}:\n{logs}")
        try:
            entries = ui.gql(query)["workspaceOrError"]["locationEntries"]
        except requests.RequestException:
            time.sleep(1)
            continue
        status = {e["name"]: e["locationOrLoadError"] for e in entries}
        loaded = status.get(LOCATION)
        if loaded and loaded["__typename"] == "RepositoryLocation":
            return
        if loaded and loaded["__typename"] == "PythonError":
            pytest.fail(f"code location failed to load: {loaded['message']}")
        time.sleep(1)
    pytest.fail("the webserver did not load the code location in time")


def asset_graph(ui: UI) -> dict[str, dict]:
    data = ui.gql("""{ assetNodes { assetKey { path } dependencyKeys { path } kinds groupName
        internalFreshnessPolicy { __typename ... on TimeWindowFreshnessPolicy { failWindowSeconds } }
        freshnessStatusInfo { freshnessStatus } } }""")
    return {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}


def ancestors(graph: dict[str, dict], key: str) -> set[str]:
    seen: set[str] = set()
    todo = [key]
    while todo:
        for dep in graph[todo.pop()]["dependencyKeys"]:
            name = "/".join(dep["path"])
            if name not in seen and name in graph:
                seen.add(name)
                todo.append(name)
    return seen


def test_asset_graph_and_lineage(ui):
    graph = asset_graph(ui)
    assert ASSET_KEYS <= set(graph), ASSET_KEYS - set(graph)

    def deps(key: str) -> set[str]:
        return {"/".join(d["path"]) for d in graph[key]["dependencyKeys"]}

    # HA -> sqlite: the inventory comes from Home Assistant (an HA-kind node upstream, or the asset itself)
    ha_nodes = {k for k, n in graph.items() if "homeassistant" in (n["kinds"] or [])}
    assert ha_nodes & (ancestors(graph, "sqlite/entities") | {"sqlite/entities"})
    # sqlite -> influxdb: events are enriched with tags from the inventory
    assert any(k.startswith("sqlite/") for k in ancestors(graph, "influxdb/events"))
    assert any(k.startswith("sqlite/") for k in ancestors(graph, "influxdb/device_snapshots"))
    # influxdb -> summaries -> report
    assert "influxdb/events" in deps("influxdb/hourly_summaries")
    assert "influxdb/hourly_summaries" in deps("influxdb/daily_summaries")
    assert "influxdb/daily_summaries" in deps("reports/storage_report")
    report_policy = graph["reports/storage_report"]["internalFreshnessPolicy"]
    assert report_policy["failWindowSeconds"] == 26 * 3600


def test_jobs_schedules_and_sensor_exist(ui):
    data = ui.gql("""{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name }
        jobs { name } schedules { name scheduleState { status } } sensors { name sensorState { status } } } } } }""")
    [repo] = [r for r in data["repositoriesOrError"]["nodes"] if r["location"]["name"] == LOCATION]
    assert JOBS <= {j["name"] for j in repo["jobs"]}
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
    assert {"events_schedule", "daily_rollup_schedule", "retention_schedule", "storage_report_schedule"} <= set(schedules)
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert "registry_change_sensor" in sensors
    # HA_PIPELINE_AUTOMATION=off in this environment: everything starts stopped
    assert set(schedules.values()) | set(sensors.values()) == {"STOPPED"}


LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
    ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }"""


def launch_and_wait(ui: UI, job: str, partition: str | None = None, timeout: float = 420) -> str:
    tags = [{"key": "dagster/partition", "value": partition}] if partition else []
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "jobName": job},
        "runConfigData": {},
        "executionMetadata": {"tags": tags},
    }
    result = ui.gql(LAUNCH, {"p": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    run_id = result["run"]["runId"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ui.gql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})["runOrError"]
        if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"}:
            if run["status"] != "SUCCESS":
                logs = ui.gql("""query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
                    __typename ... on MessageEvent { message }
                    ... on ExecutionStepFailureEvent { error { message cause { message } } } } } } }""", {"id": run_id})
                messages = [
                    (e.get("message") or "") + (f": {e['error']['message']} <- {(e['error'].get('cause') or {}).get('message')}" if e.get("error") else "")
                    for e in logs["logsForRun"]["events"]
                    if e.get("message")
                ]
                pytest.fail(f"{job} {partition or ''} ended {run['status']}:\n" + "\n".join(messages[-15:]))
            return run_id
        time.sleep(2)
    pytest.fail(f"{job} {partition or ''} did not finish within {timeout} s")


def check_executions(ui: UI) -> dict[tuple[str, str], str | None]:
    data = ui.gql("""{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name
        executionForLatestMaterialization { status } } } } } }""")
    out = {}
    for node in data["assetNodes"]:
        for check in (node["assetChecksOrError"] or {}).get("checks", []):
            execution = check["executionForLatestMaterialization"]
            out[("/".join(node["assetKey"]["path"]), check["name"])] = execution and execution["status"]
    return out


def test_runs_checks_and_freshness(ui):
    launch_and_wait(ui, "discovery_job")
    hour = latest_expected_hour(datetime.now(timezone.utc))
    launch_and_wait(ui, "events_job", hour)
    launch_and_wait(ui, "storage_report_job")

    checks = check_executions(ui)
    assert checks[("influxdb/events", "latest_hour_loaded")] == "SUCCEEDED"
    ran = {k: v for k, v in checks.items() if v is not None}
    assert any(k[0].startswith("sqlite/") for k in ran), checks  # discovery's own checks ran
    assert "EXECUTION_FAILED" not in ran.values(), ran  # no check crashed

    # The freshness daemon evaluates policies in the background: wait for its verdict.
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline:
        status = asset_graph(ui)["reports/storage_report"]["freshnessStatusInfo"]
        if status and status["freshnessStatus"] == "HEALTHY":
            break
        time.sleep(3)
    assert status and status["freshnessStatus"] == "HEALTHY", status


class DevTools:
    """A minimal Chrome DevTools protocol client (one page target, synchronous)."""

    def __init__(self, ws_url: str):
        self.ws = websockets.sync.client.connect(ws_url, max_size=None, open_timeout=30)
        self.ids = itertools.count(1)

    def __call__(self, method: str, **params) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:  # skip events until our answer
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == msg_id:
                assert "error" not in msg, (method, msg["error"])
                return msg["result"]

    def js(self, expression: str):
        result = self("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def close(self) -> None:
        self.ws.close()


# Every label drawn in the graph (asset nodes and group headers) with its box, and the graph
# viewport's box, in CSS pixels of the page. The explorer only renders nodes near the screen.
GRAPH_LABELS_JS = """(() => {
  const viewport = document.querySelector('[data-svg-viewport]');
  if (!viewport) return null;
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {viewport: box(viewport), transform: viewport.firstElementChild.style.transform,
          labels: [...viewport.querySelectorAll('svg foreignObject')].map(f => [f.textContent.trim(), box(f)])};
})()"""
# Collapse the left navigation and the explorer's group sidebar (both toggles use this icon),
# then double-click the background: the explorer's own "zoom to fit".
MAXIMISE_GRAPH_JS = """(() => {
  for (const b of document.querySelectorAll('button'))
    if ([...b.querySelectorAll('[aria-label]')].some(i => i.getAttribute('aria-label') === 'panel_show_right')) b.click();
  setTimeout(() => document.querySelector('[data-svg-viewport]')
    .dispatchEvent(new MouseEvent('dblclick', {bubbles: true})), 500);
})()"""


def visible_labels(state: dict) -> Counter:
    left, top, right, bottom = state["viewport"]
    return Counter(text for text, (x0, y0, x1, y1) in state["labels"]
                   if x0 >= left - 1 and y0 >= top - 1 and x1 <= right + 1 and y1 <= bottom + 1)


def test_screenshot_of_the_asset_graph(ui, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (make system-deps)")
    graph = asset_graph(ui)
    groups = sorted({n["groupName"] for n in graph.values()})
    # What the screenshot must show in full: every asset (by the last part of its key) and
    # every group box. Expanded groups are in the URL as `global@global:<group>` ids.
    expected = Counter(key.split("/")[-1] for key in graph) + Counter(groups)
    url = f"{ui.url}/asset-groups?expanded=" + ",".join(f"global@global:{g}" for g in groups)
    width, height = 1920, 1080
    out = tmp_path / "asset-graph.png"
    profile = tmp_path / "profile"
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
        f"--window-size={width},{height}", "about:blank",
    ]
    log = open(tmp_path / "chromium.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    devtools = None
    try:
        # Chromium picks a free port and writes it into the profile.
        active_port = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (active_port.exists() and len(active_port.read_text().splitlines()) >= 2):
            assert proc.poll() is None, (tmp_path / "chromium.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "chromium opened no DevTools port"
            time.sleep(0.2)
        port = int(active_port.read_text().splitlines()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        [page] = [t for t in targets if t["type"] == "page"]
        devtools = DevTools(page["webSocketDebuggerUrl"])
        devtools("Page.enable")
        devtools("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        # Top-to-bottom layout: 16 expanded assets come out wide and flat, so the whole lineage
        # fits 16:9 at a legible zoom (left-to-right it is taller than wide).
        devtools("Page.addScriptToEvaluateOnNewDocument",
                 source="localStorage.setItem('asset-graph-direction', JSON.stringify('vertical'))")
        devtools("Page.navigate", url=url)
        deadline = time.monotonic() + 90
        while not ((state := devtools.js(GRAPH_LABELS_JS)) and state["labels"]):
            assert time.monotonic() < deadline, "the asset graph did not render"
            time.sleep(0.5)
        devtools.js(MAXIMISE_GRAPH_JS)
        # Wait until every asset and group is drawn inside the viewport and the zoom has settled.
        deadline = time.monotonic() + 60
        previous = None
        while True:
            time.sleep(0.5)
            state = devtools.js(GRAPH_LABELS_JS)
            missing = expected - visible_labels(state)
            if not missing and state["transform"] == previous:
                break
            previous = state["transform"]
            assert time.monotonic() < deadline, f"not in the screenshot: {sorted(missing.elements())}"
        assert {"storage_report", "hourly_summaries", "entities"} <= set(visible_labels(state))
        shot = devtools("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))
    finally:
        if devtools is not None:
            devtools.close()
        stop(proc)
        log.close()
    import matplotlib.image

    pixels = matplotlib.image.imread(out)
    assert pixels.shape[:2] == (height, width)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    # A blank or error page has a handful of colours; the graph with labels and icons has hundreds.
    assert len(colours) > 200, len(colours)
    assert out.stat().st_size > 40_000
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copy(out, SCREENSHOT)
    if os.environ.get("HA_PIPELINE_REFRESH_SCREENSHOT") == "1":
        shutil.copy(out, DOCS_SCREENSHOT)
