"""Tests of ``ts_health_handler.serve``: ``ts-health serve``, the HTTP health server."""
