"""Run the simulator standalone: ``python -m ha_pipeline.simulator --port 8123 --token T``."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time

from ha_pipeline.simulator.home import SimulatedHome
from ha_pipeline.simulator.server import SimulatorServer


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, generate the home, serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m ha_pipeline.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--token", default=os.environ.get("SIMULATOR_TOKEN"),
                        help="access token clients must send (default: env SIMULATOR_TOKEN)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--areas", type=int, default=8)
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--entities-per-device", type=int, default=4)
    parser.add_argument("--event-rate", type=float, default=4.0, help="state rows per entity per hour")
    parser.add_argument("--live", action="store_true",
                        help="keep generating history up to the wall clock, firing state_changed events")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give --token or set SIMULATOR_TOKEN")
    started = time.perf_counter()
    home = SimulatedHome.generate(seed=args.seed, areas=args.areas, devices=args.devices,
                                  entities_per_device=args.entities_per_device, event_rate=args.event_rate)
    server = SimulatorServer(home, host=args.host, port=args.port, token=args.token, live=args.live).start()
    print(f"simulated home ({len(home.areas)} areas, {len(home.devices)} devices, {len(home.entities)} entities, "
          f"generated in {time.perf_counter() - started:.1f}s) on {server.url}/api/websocket", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
