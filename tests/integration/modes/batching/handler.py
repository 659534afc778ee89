"""Ours: the twin's code, HealthMixin first among the bases."""

from plain_handler import BatchingTwin

from ts_health_handler import HealthMixin


class BatchingHandler(HealthMixin, BatchingTwin):
    pass
