"""Tests of ``ts_health_handler.record``: the initialization record, its store, beats and deaths."""
