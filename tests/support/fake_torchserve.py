"""A fake TorchServe on loopback for the probe's tests: both APIs' paths answered from a script.

Shared by ``tests/unit`` and ``tests/reliability``. Real-server tests use
``ts_health_handler.testing.serve`` instead.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]  # status and a JSON-able body (bytes are sent as they are)

#: TorchServe's own error bodies: a registration whose workers did not start, a model unknown.
WORKERS_FAILED = {
    "code": 500,
    "type": "InternalServerException",
    "message": "Failed to start workers",
}
MODEL_NOT_FOUND = {"code": 404, "type": "ModelNotFoundException", "message": "Model not found: m"}


class FakeTorchServe:
    """One loopback server answering both APIs' paths from a script, recording requests."""

    def __init__(self) -> None:
        self.routes: dict[str, list[tuple[Answer, float]]] = {}
        self.requests: list[tuple[str, str | None]] = []
        #: Every request's method, path, headers and body (``requests`` keeps path and token).
        self.calls: list[tuple[str, str, dict[str, str], bytes]] = []
        #: Authorization header required per path prefix, e.g. {"/ping": "Bearer x"}.
        self.required: dict[str, str] = {}
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body_in = self.rfile.read(length) if length else b""
                fake.calls.append((self.command, self.path, dict(self.headers), body_in))
                fake.requests.append((self.path, self.headers.get("Authorization")))
                status, body, delay = fake.answer(self.path, self.headers.get("Authorization"))
                if delay:
                    fake.release.wait(delay)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the probe gave up already
                    pass

            do_POST = do_PUT = do_DELETE = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, authorization: str | None) -> tuple[int, Any, float]:
        for prefix, wanted in self.required.items():
            if path.startswith(prefix) and authorization != wanted:
                return (
                    400,
                    {
                        "code": 400,
                        "type": "InvalidKeyException",
                        "message": "Token Authorization failed. Token either incorrect, "
                        "expired, or not provided correctly",
                    },
                    0.0,
                )
        script = self.routes.get(path)
        if script is None and path.endswith("/all"):
            # One version registered: "all versions" is the default version's answer.
            script = self.routes.get(path[: -len("/all")])
        if not script:
            return 404, {"code": 404, "type": "ResourceNotFoundException", "message": path}, 0.0
        (status, body), delay = script[0] if len(script) == 1 else script.pop(0)
        return status, body, delay

    def on(self, path: str, *answers: Answer, delay: float = 0.0) -> None:
        """Answer ``path`` with ``answers`` in turn, the last one from then on."""
        self.routes[path] = [(a, delay) for a in answers]

    def asked(self, fragment: str) -> bool:
        return any(fragment in path for path, _ in self.requests)

    def replace(self, routes: Mapping[str, Answer]) -> None:
        """Answer each path of ``routes`` with its one answer, and nothing else."""
        self.routes = {path: [(answer, 0.0)] for path, answer in routes.items()}


@contextlib.contextmanager
def running() -> Iterator[FakeTorchServe]:
    """A started :class:`FakeTorchServe`, shut down (and any delayed answer released) on exit."""
    server = FakeTorchServe()
    server.thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.server.shutdown()
        server.server.server_close()
