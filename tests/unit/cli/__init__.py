"""Tests of ``ts_health_handler.cli``: the ``ts-health`` command line."""
