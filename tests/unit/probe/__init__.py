"""Tests of ``ts_health_handler.probe``: the commands ping, ready, status and wait."""
