"""Tests of ``ts_health_handler.monitor``: what the probe and the server observe and judge."""
