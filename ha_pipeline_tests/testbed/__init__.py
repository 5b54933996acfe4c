"""Real servers for integration tests: InfluxDB, PostgreSQL, Home Assistant (see conftest.py)."""
