"""Helpers for the tests of ``ts-health serve``: settings, snapshots by hand, its answers
without a socket (``reply``, ``ask``), an HTTP client and the command as a process.

Shared by ``tests/unit`` and ``tests/integration``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.describes import entry
from tests.support.status_docs import status_doc
from ts_health_handler._document import parse_status
from ts_health_handler.monitor._assess import ModelHealth, Observation, assess
from ts_health_handler.monitor._observe import PingResult
from ts_health_handler.monitor._policy import READY_ONLY
from ts_health_handler.probe import Settings, resolve_settings
from ts_health_handler.serve import ModelSeen, Request, ServeOptions, Snapshot, View, answer
from ts_health_handler.serve._history import advance
from ts_health_handler.serve._metrics import metrics_text
from ts_health_handler.serve._routes import Answer

T = TypeVar("T")


def settings_for(
    inference_url: str = "http://127.0.0.1:1",
    management_url: str | None = None,
    *,
    state_dir: Path | None = None,
    allow_degraded: bool = False,
    **extra: Any,
) -> Settings:
    args = argparse.Namespace(
        inference_url=inference_url,
        management_url=management_url or inference_url,
        token=extra.get("token"),
        key_file=extra.get("key_file"),
        request_timeout=extra.get("request_timeout"),
        describe_timeout=extra.get("describe_timeout"),
        state_dir=str(state_dir) if state_dir else None,
        json=True,
        allow_degraded=allow_degraded,
        allow_saturated=extra.get("allow_saturated", False),
    )
    return resolve_settings(args, {})


def health(
    name: str = "m",
    version: str = "1.0",
    *,
    workers: tuple[str, ...] = ("READY",),
    status: Mapping[str, Any] | None = None,
    remaining: int = 100,
    default: bool = True,
) -> ModelHealth:
    seen = Observation(
        describe=entry(
            *workers,
            name=name,
            version=version,
            max_workers=1,
            remaining=remaining,
            pending=0 if remaining else 100,
        ),
        status=parse_status(status or status_doc()),
        now=1_750_000_000.0,
        default=default,
    )
    return assess(name, version, seen)


def snapshot(
    *models: tuple[str, tuple[ModelHealth, ...]],
    at: float = 100.0,
    ping: PingResult | None = None,
    started: float = 90.0,
) -> Snapshot:
    """A snapshot with ``models`` observed at ``at`` (monotonic) and /ping Healthy."""
    tracks = {}
    for _, healths in models:
        for h in healths:
            tracks[(h.model, h.version)] = advance(None, h.state, h.reason, 1_750_000_000.0)
    return Snapshot(
        started=started,
        ping=ping or PingResult(True, "Healthy"),
        ping_at=at,
        names=tuple(name for name, _ in models),
        names_at=at,
        models={name: ModelSeen(name, healths, at) for name, healths in models},
        tracks=tracks,
    )


#: Model ``m``, one version, READY: ``snapshot(READY)``.
READY = ("m", (health("m"),))


def options(**changes: Any) -> ServeOptions:
    return ServeOptions(host="127.0.0.1", port=0, **changes)


#: The monotonic and the wall clock of :func:`reply`'s view.
NOW = 101.0
WALL = 1_750_000_010.0


def reply(
    snap: Snapshot,
    target: str,
    *,
    method: str = "GET",
    opts: ServeOptions | None = None,
    settings: Settings | None = None,
    now: float = NOW,
    authorization: str | None = None,
) -> Answer:
    """``serve``'s answer to one request against ``snap``, without a socket."""
    view = View(snap, settings or settings_for(), opts or options(), now, WALL)
    return answer(Request(method, target, authorization), view)


def ask(
    snap: Snapshot,
    path: str,
    *,
    method: str = "GET",
    opts: ServeOptions | None = None,
    now: float = NOW,
    authorization: str | None = None,
    allow_degraded: bool = False,
    allow_saturated: bool = False,
) -> tuple[int, Any, dict[str, str]]:
    """:func:`reply` under the readiness policy asked for: ``(status, body, headers)``, the body
    decoded when it is JSON."""
    settings = settings_for(allow_degraded=allow_degraded, allow_saturated=allow_saturated)
    got = reply(
        snap,
        path,
        method=method,
        opts=opts,
        settings=settings,
        now=now,
        authorization=authorization,
    )
    body: Any = got.body
    if got.content_type == "application/json":
        body = json.loads(got.body)
    return got.status, body, dict(got.headers)


def body_of(got: Answer) -> Any:
    """The body of a JSON answer, decoded (an answer of another type fails the test)."""
    assert got.content_type == "application/json"
    return json.loads(got.body)


def metrics_samples(*healths: ModelHealth) -> list[Sample]:
    """What a scrape of ``/metrics`` reads when model ``m`` was observed with ``healths`` (at
    100, /ping Healthy), at :data:`NOW`."""
    snap = Snapshot(
        started=90.0,
        ping=PingResult(True, "Healthy"),
        ping_at=100.0,
        names=("m",),
        names_at=100.0,
        models={"m": ModelSeen("m", healths, 100.0)},
    )
    text = metrics_text(snap, options(), READY_ONLY, NOW, 1_750_000_000.0).decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def get(
    url: str, path: str, *, method: str = "GET", headers: Mapping[str, str] | None = None
) -> Reply:
    """One request to ``ts-health serve`` (tests only; loopback)."""
    host_port = url.split("//", 1)[1]
    host, port = host_port.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, headers=dict(headers or {}))
        response = connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def address(url: str) -> tuple[str, int]:
    """``(host, port)`` of a ``http://host:port`` URL."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def raw(url: str, data: bytes) -> bytes:
    """Send ``data`` as it is and read the reply until the server closes the connection."""
    with socket.create_connection(address(url), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def eventually(check: Callable[[], T | None], timeout: float = 20.0, what: str = "") -> T:
    """Poll ``check`` until it returns something true, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or check}")
        time.sleep(0.05)


TOKEN = "serve-test-token"


class ServeProcess:
    """``ts-health serve`` started as a subprocess; stopped by its pid."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "ts_health_handler", "serve", "--listen", "127.0.0.1:0"]
        self.process = subprocess.Popen(
            command + args, stderr=subprocess.PIPE, text=True, env={**os.environ, **env}
        )
        assert self.process.stderr is not None
        line = self.process.stderr.readline()
        assert line.startswith("ts-health serve: listening on "), line
        self.url = line.split("listening on ", 1)[1].split(";", 1)[0]

    def get(self, path: str, *, token: bool = False) -> Reply:
        headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
        return get(self.url, path, headers=headers)

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        assert self.process.stderr is not None
        return code, self.process.stderr.read()
