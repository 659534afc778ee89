"""The fixtures that run ``ts-health`` in-process against a fake TorchServe: ``fake``,
``state_dir`` and ``ts_health`` (defined in tests/unit/probe/helpers.py)."""

from tests.unit.probe.helpers import fake, state_dir, ts_health

__all__ = ["fake", "state_dir", "ts_health"]
