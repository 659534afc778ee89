"""What a look at TorchServe keeps of ``/ping`` (``monitor._observe.PingResult``)."""

from __future__ import annotations

import pytest

from ts_health_handler.monitor._exit import ExitCode
from ts_health_handler.monitor._observe import PingResult


@pytest.mark.parametrize(
    ("ping", "code"),
    [
        (PingResult(), ExitCode.NOT_READY),
        (PingResult(error="no /ping answer yet"), ExitCode.NOT_READY),
        (PingResult(True, "Healthy"), ExitCode.OK),
        (PingResult(False, "Unhealthy"), ExitCode.NOT_READY),
        (PingResult(error="refused", failure=ExitCode.UNREACHABLE), ExitCode.UNREACHABLE),
    ],
)
def test_a_ping_is_ok_only_when_it_answered_healthy(ping: PingResult, code: ExitCode) -> None:
    assert ping.code is code


def test_a_torchrun_ranks_beat_stands_for_the_sibling_torchserve_describes() -> None:
    """TorchServe describes a torchrun worker by whichever rank reported its pid last; the
    first rank's beat names their common parent (torchrun)."""
    import os

    from tests.support.records import beat
    from ts_health_handler.monitor._observe import current_beats
    from ts_health_handler.torchserve._answers import ModelEntry, Worker

    # This test process stands for the described rank; its parent for torchrun.
    entry = ModelEntry("m", "1.0", workers=(Worker("READY", "9000", os.getpid(), None),))
    sibling = beat(worker="9000", pid=999_999, parent_pid=os.getppid())
    stranger = beat(worker="9000", pid=999_998, parent_pid=1)
    other_thread = beat(worker="9001", pid=999_997, parent_pid=os.getppid())
    assert current_beats([sibling, stranger, other_thread], entry) == [sibling]
    own = beat(worker="9000", pid=os.getpid())
    assert current_beats([own], entry) == [own]
