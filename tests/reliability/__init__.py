"""Tests against a real TorchServe under faults and load (a package, as every test folder)."""
