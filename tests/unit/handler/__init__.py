"""Tests of ``ts_health_handler.handler``: what runs inside a TorchServe worker."""
