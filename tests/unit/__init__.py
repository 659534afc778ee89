"""Unit tests, in folders that mirror the packages of ``src/ts_health_handler``."""
