"""Ours: the twin's code, HealthMixin first among the bases."""

from plain_handler import SequenceTwin

from ts_health_handler import HealthMixin


class SequenceHandler(HealthMixin, SequenceTwin):
    pass
