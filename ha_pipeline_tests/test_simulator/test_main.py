"""``python -m ha_pipeline.simulator`` runs the simulated home standalone."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

from .conftest import RawClient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_standalone_server_with_token_from_env() -> None:
    port = _free_port()
    env = {**os.environ, "SIMULATOR_TOKEN": "env-token"}
    proc = subprocess.Popen([sys.executable, "-m", "ha_pipeline.simulator", "--port", str(port), "--devices", "12",
                             "--seed", "3"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "simulator did not start listening"
                time.sleep(0.2)

        async def go() -> int:
            client = await RawClient.open(f"http://127.0.0.1:{port}", token="env-token")
            try:
                return len((await client.command("config/device_registry/list"))["result"])
            finally:
                await client.close()

        assert asyncio.run(go()) == 12
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0
    assert proc.stdout is not None and "12 devices" in proc.stdout.read()


def test_standalone_refuses_to_run_without_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SIMULATOR_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "ha_pipeline.simulator", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "SIMULATOR_TOKEN" in done.stderr
