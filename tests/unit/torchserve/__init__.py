"""Tests of ``ts_health_handler.torchserve``: the HTTP client and TorchServe's answers."""
