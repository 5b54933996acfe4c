"""Time series layer: line protocol, bucket specs, InfluxDB 1.x/2.x backends, events and rollups.

Names are exported lazily so that importing the package (or ``buckets`` alone) pulls in neither
pandas nor influxdb-client.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BucketSpec": "buckets",
    "InfluxSettings": "buckets",
    "InfluxConfigError": "buckets",
    "default_bucket_specs": "buckets",
    "TimeseriesBackend": "backend",
    "make_backend": "backend",
    "InfluxError": "backend",
    "InfluxAuthError": "backend",
    "InfluxConnectionError": "backend",
    "InfluxQueryError": "backend",
    "InfluxWriteError": "backend",
    "RetentionRejectedError": "backend",
    "WriteStream": "backend",
    "FrameWrite": "backend",
    "frame_to_lines": "line_protocol",
    "LineBatch": "line_protocol",
    "LineProtocolError": "line_protocol",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
