"""A real InfluxDB 1.x (Debian's `influxd`) on loopback with its own config and dirs."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .process import ServerProcess, free_port

ADMIN_USER = "admin"
ADMIN_PASSWORD = "testbed-admin-pw"


@dataclass
class InfluxServer:
    """A running influxd: `.url`, `.pid`, `.data_dir`; admin credentials when auth is on."""

    url: str
    pid: int
    data_dir: Path
    version: str
    auth: bool = False
    username: str | None = None
    password: str | None = None
    startup_seconds: float = 0.0
    process: ServerProcess | None = field(default=None, repr=False)

    def query(self, q: str, db: str | None = None, method: str = "POST") -> dict:
        """Run InfluxQL; raise on HTTP errors and on statement errors (which come as 200)."""
        params = {"q": q, **({"db": db} if db else {})}
        auth = (self.username, self.password) if self.auth else None
        resp = requests.request(method, f"{self.url}/query", params=params, auth=auth, timeout=30)
        resp.raise_for_status()
        body = resp.json()
        for result in body.get("results", []):
            if "error" in result:
                raise RuntimeError(f"InfluxQL error: {result['error']}")
        return body

    def stop(self) -> None:
        """Stop influxd by its pid."""
        if self.process is not None:
            self.process.stop()


def influxd_binary() -> str:
    """Path of `influxd` (Debian package `influxdb`)."""
    found = shutil.which("influxd") or ("/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None)
    if found is None:
        raise FileNotFoundError("influxd not found: run `make system-deps` (apt-get install influxdb)")
    return found


def _set(text: str, section: str | None, key: str, value: str) -> str:
    """Set `key = value` in a TOML section of `influxd config` output (top level if None)."""
    lines = text.splitlines()
    current: str | None = None
    for i, line in enumerate(lines):
        header = re.match(r"^\[([^\]]+)\]\s*$", line.strip())
        if header:
            current = header.group(1)
            continue
        if current == section and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            lines[i] = f"  {key} = {value}" if section else f"{key} = {value}"
            return "\n".join(lines) + "\n"
    raise KeyError(f"{key} not in [{section}] of influxd config")


def write_config(base_dir: Path, http_port: int, rpc_port: int, auth: bool) -> Path:
    """Generate an influxd config (defaults from `influxd config`) for a private instance."""
    text = subprocess.run([influxd_binary(), "config"], capture_output=True, text=True,
                          check=True, stdin=subprocess.DEVNULL).stdout
    text = _set(text, None, "reporting-enabled" if "reporting-enabled" in text else "reporting-disabled",
                "false" if "reporting-enabled" in text else "true")
    text = _set(text, None, "bind-address", f'"127.0.0.1:{rpc_port}"')
    text = _set(text, "meta", "dir", f'"{base_dir / "meta"}"')
    text = _set(text, "data", "dir", f'"{base_dir / "data"}"')
    text = _set(text, "data", "wal-dir", f'"{base_dir / "wal"}"')
    text = _set(text, "data", "query-log-enabled", "false")
    text = _set(text, "http", "bind-address", f'"127.0.0.1:{http_port}"')
    text = _set(text, "http", "auth-enabled", "true" if auth else "false")
    path = base_dir / "influxdb.conf"
    path.write_text(text)
    return path


def start_influxdb(base_dir: Path, auth: bool = False, timeout: float = 60.0) -> InfluxServer:
    """Start influxd under `base_dir`; with `auth`, create the admin user before returning."""
    base_dir.mkdir(parents=True, exist_ok=True)
    http_port, rpc_port = free_port(), free_port()
    config = write_config(base_dir, http_port, rpc_port, auth)
    url = f"http://127.0.0.1:{http_port}"
    started = time.monotonic()
    proc = ServerProcess("influxdb", [influxd_binary(), "-config", str(config)],
                         base_dir / "influxd.log")
    try:
        proc.wait_ready(lambda: requests.get(f"{url}/ping", timeout=2).status_code == 204,
                        timeout, "/ping answers 204")
        version = requests.get(f"{url}/ping", timeout=2).headers.get("X-Influxdb-Version", "")
        server = InfluxServer(url=url, pid=proc.pid, data_dir=base_dir / "data", version=version,
                              auth=auth, process=proc)
        if auth:
            # Before the first admin exists, only this statement is allowed (without credentials).
            resp = requests.post(f"{url}/query", timeout=10, params={
                "q": f"CREATE USER {ADMIN_USER} WITH PASSWORD '{ADMIN_PASSWORD}' WITH ALL PRIVILEGES"})
            resp.raise_for_status()
            server.username, server.password = ADMIN_USER, ADMIN_PASSWORD
        server.startup_seconds = time.monotonic() - started
        return server
    except BaseException:
        proc.stop()
        raise
