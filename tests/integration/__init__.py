"""Tests against a real TorchServe (a package, so test module names may repeat tests/unit)."""
