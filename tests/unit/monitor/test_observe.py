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
