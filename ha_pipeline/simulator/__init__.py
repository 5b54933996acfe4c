"""A simulated Home Assistant home speaking HA 2024.1's WebSocket API (no Dagster here)."""

from ha_pipeline.simulator.home import SimulatedHome, SimulatorError
from ha_pipeline.simulator.server import SimulatorServer

__all__ = ["SimulatedHome", "SimulatorError", "SimulatorServer"]
