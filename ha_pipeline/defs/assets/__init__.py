"""Assets, one module per domain: inventory (SQL), snapshots and history (InfluxDB)."""
