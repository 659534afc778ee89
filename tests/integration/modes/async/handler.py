"""Ours: the twin's code, HealthMixin first among the bases."""

from plain_handler import AsyncTwin

from ts_health_handler import HealthMixin


class AsyncHandler(HealthMixin, AsyncTwin):
    pass
