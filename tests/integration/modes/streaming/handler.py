"""Ours: the twin's code, HealthMixin first among the bases."""

from plain_handler import StreamingTwin

from ts_health_handler import HealthMixin


class StreamingHandler(HealthMixin, StreamingTwin):
    pass
