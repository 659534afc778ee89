"""Ours: the twin's code, HealthMixin first among the bases."""

from plain_handler import TorchrunTwin

from ts_health_handler import HealthMixin


class TorchrunHandler(HealthMixin, TorchrunTwin):
    pass
