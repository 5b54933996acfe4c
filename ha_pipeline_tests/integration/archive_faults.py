"""Faults for the archive's fault tests (test_archive_faithful.py), injected while a run works.

`FaultyHomeAssistant` is the real HA resource, except that the first time the run fetches the
history of an hour at or after `fault_at`, it calls the fault registered under `fault` in
`FAULTS` first (kill InfluxDB, fill its disk, cut HA's connection, pause for the parent to
SIGKILL the run process). By then the run has fetched, and queued or written, the hours before.

`python -m ha_pipeline_tests.integration.archive_faults` materialises `influxdb/events` for a
range in this process, for the test that kills the run process: settings come from the
environment (`FAULT_*`, `INFLUXDB_BUCKET_*`), the token too, never the command line.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg

from ha_pipeline.defs.resources import HomeAssistantResource

# name -> what to do when the run reaches the fault's hour (each fires once per arming)
FAULTS: dict[str, Callable[[], None]] = {}
_FIRED: set[str] = set()


def arm(name: str, action: Callable[[], None]) -> None:
    FAULTS[name] = action
    _FIRED.discard(name)


class FaultyHomeAssistant(HomeAssistantResource):
    """The real HA; the fault `fault` fires when the run first fetches an hour at/after `fault_at`."""

    fault: str
    fault_at: str

    def client(self, **timeouts: float):
        real = super().client(**timeouts)
        at = datetime.fromisoformat(self.fault_at)
        fault = self.fault

        class Client:
            def __enter__(self):
                real.__enter__()
                return self

            def __exit__(self, *exc):
                return real.__exit__(*exc)

            def __getattr__(self, name):
                return getattr(real, name)

            def history_during_period(self, start, *args, **kwargs):
                # the new archive asks from 1 µs before each hour, the old one from the hour
                if start >= at - timedelta(seconds=1) and fault not in _FIRED:
                    _FIRED.add(fault)
                    FAULTS[fault]()
                return real.history_during_period(start, *args, **kwargs)

        return Client()


def fill_disk(directory: Path) -> int:
    """Fill the file system of `directory` with one file until it has no space; bytes written."""
    written, chunk = 0, b"\0" * (1 << 20)
    with open(directory / "filler", "wb", buffering=0) as filler:
        while True:
            try:
                written += filler.write(chunk)
            except OSError:
                break
        for size in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    written += filler.write(chunk[:size])
            except OSError:
                pass
    return written


class TcpProxy:
    """127.0.0.1:<free port> forwarded to `target`; `cut()` drops every connection and refuses
    new ones, as a home whose HA went away (restarted, network gone) does."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.cut_at: float | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_at is not None:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.cut_at = time.monotonic()
        self.listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass


def _pause_for_kill() -> None:
    """Tell the parent the run is mid-write (FAULT_MARKER), then wait to be killed."""
    Path(os.environ["FAULT_MARKER"]).write_text(str(os.getpid()))
    time.sleep(300)


def main() -> int:
    """Materialise `influxdb/events` for [FAULT_START, FAULT_END) and pause at FAULT_AT."""
    from ha_pipeline.defs.assets import history, inventory
    from ha_pipeline.defs.resources import InfluxDBResource, MetadataStoreResource

    arm("pause", _pause_for_kill)
    start, end = (datetime.fromisoformat(os.environ[k]) for k in ("FAULT_START", "FAULT_END"))
    ha = FaultyHomeAssistant(url=os.environ["FAULT_HA_URL"], token=os.environ["FAULT_HA_TOKEN"],
                             fault="pause", fault_at=os.environ["FAULT_AT"])
    resources = {"ha": ha, "metadata_store": MetadataStoreResource(db_url=os.environ["FAULT_META_URL"]),
                 "influxdb": InfluxDBResource(url=os.environ["FAULT_INFLUX_URL"], api_version=1)}
    tags = {
        "dagster/asset_partition_range_start": start.strftime("%Y-%m-%d-%H:%M"),
        "dagster/asset_partition_range_end": (end - timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M"),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize([*inventory.ha_registries, inventory.ha_history, inventory.discovery, history.events],
                                selection=dg.AssetSelection.assets(history.events), resources=resources,
                                instance=instance, tags=tags, raise_on_error=False)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
