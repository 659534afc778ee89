"""``torchserve._http.request`` when the host name does not resolve (no DNS asked)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from ts_health_handler.torchserve._http import Unreachable, request


def test_an_unknown_host_is_unreachable_naming_the_host_and_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unknown(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    with pytest.raises(Unreachable) as caught:
        request("GET", "http://no-such-host.example:8080/ping", timeout=1, where="the server")
    assert str(caught.value) == "cannot resolve host 'no-such-host.example' of the server"
    assert caught.value.__suppress_context__  # raised "from None"
