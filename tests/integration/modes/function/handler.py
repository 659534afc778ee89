"""Ours: the same function, decorated with ts_health_handler.with_health."""

from behaviour import act, text

from ts_health_handler import with_health


@with_health
def handle(data, context):
    if data is None:
        return None
    return [act(text(row)) for row in data]
