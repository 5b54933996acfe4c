"""Recorded real Home Assistant 2024.1.6 payloads, kept for what a live test cannot do.

The scripted server of the client's failure-mode tests replays them, and the simulator's
statistics are compared with them (a freshly started test bed HA has compiled no hourly or
daily statistics yet). Everything else is compared live with the test bed's real HA.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parent


def recorded(name: str) -> Any:
    """A recorded real-HA message by its file name (e.g. ``"get_states.json"``)."""
    return json.loads((SAMPLES / name).read_text())
