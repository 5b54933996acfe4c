"""ha_pipeline: keep a Home Assistant home's inventory and history for years."""
