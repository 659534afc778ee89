"""The after-ready thresholds' defaults, in one place for the worker and the monitor alike.

Standard library only. ``handler/_config.py`` applies them to ``health:`` in
``model-config.yml``; a worker writes the values it runs with into each heartbeat
(``record/_beat.py``), whose readers fall back on these only for a beat that lacks them.
"""

# Plain constants, no `from __future__ import annotations`: ts-health imports this at start-up.
from typing import Final

#: TorchServe's default ``responseTimeout`` (seconds), when ``model-config.yml`` sets none.
RESPONSE_TIMEOUT_S: Final = 120.0
#: Share of ``responseTimeout`` after which a running request counts as stuck, by default.
STUCK_SHARE: Final = 0.75
#: ``stuck_after_s`` when neither it nor ``responseTimeout`` is set (90 s).
STUCK_AFTER_S: Final = STUCK_SHARE * RESPONSE_TIMEOUT_S
#: Failed requests in a row that make a model ``failing`` (``failing_after_requests``).
FAILING_AFTER: Final = 5
#: Deaths while serving within :data:`DEATH_WINDOW_S` that make a model ``unstable``.
UNSTABLE_AFTER: Final = 3
DEATH_WINDOW_S: Final = 600.0
#: Seconds between two heartbeats of a READY worker (``heartbeat_interval_s``).
HEARTBEAT_INTERVAL_S: Final = 2.0


def stuck_after(response_timeout_s: float) -> float:
    """The default stuck threshold for a model whose ``responseTimeout`` is given."""
    return STUCK_SHARE * response_timeout_s
