"""Tests of ``ts_health_handler.testing``: helpers, the pytest plugin and the runner."""
