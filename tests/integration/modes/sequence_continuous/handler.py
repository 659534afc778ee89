"""Ours: the twin's code, HealthMixin first among the bases."""

from plain_handler import SequenceContinuousTwin

from ts_health_handler import HealthMixin


class SequenceContinuousHandler(HealthMixin, SequenceContinuousTwin):
    pass
