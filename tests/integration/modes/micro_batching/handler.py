"""Ours: the twin's code, HealthMixin first among the bases."""

from plain_handler import MicroBatchingTwin

from ts_health_handler import HealthMixin


class MicroBatchingHandler(HealthMixin, MicroBatchingTwin):
    pass
