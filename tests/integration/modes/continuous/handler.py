"""Ours: the twin's code, HealthMixin first among the bases."""

from plain_handler import ContinuousTwin

from ts_health_handler import HealthMixin


class ContinuousHandler(HealthMixin, ContinuousTwin):
    pass
