"""Serving-mode test models (``tests/integration/modes/``) on a real TorchServe 0.12: archive
ours and its plain twin, send requests (streamed answers chunk by chunk), ask ``ts-health``.

Every mode directory holds ``plain_handler.py`` (the twin: TorchServe's own way of writing
that mode, without ``HealthMixin``), ``handler.py`` (ours: the twin's class with
``HealthMixin`` first among the bases, or the twin's function under ``@with_health``) and
``model-config.yml``. ``modes/behaviour.py`` (what a body asks for: ``hang``, ``fail``,
``die``, ``sleep:N``, else an echo) is packed beside both.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support.probe_cli import state_of, ts_health
from ts_health_handler._proc import read_stat
from ts_health_handler.testing import (
    ServerError,
    TorchServe,
    WaitTimeout,
    archive_model,
    model_config,
    wait_for,
)

MODES = Path(__file__).resolve().parents[1] / "integration" / "modes"
BEHAVIOUR = MODES / "behaviour.py"
SCHEMA = Path(__file__).resolve().parents[2] / "src" / "ts_health_handler" / "schema"

#: Fast beats and a short stuck threshold (as test_after_ready.py's FAST), and few failures.
FAST: Mapping[str, Any] = {
    "heartbeat_interval_s": 0.5,
    "stuck_after_s": 3,
    "failing_after_requests": 3,
}
#: A bound for "stuck within threshold + one heartbeat interval": that, plus time for the
#: request to reach the handler and for the probe to run.
STUCK_WITHIN_S = 3 + 0.5 + 8


def schema_has(*path: str) -> bool:
    """Whether the status document's JSON Schema (as the tree has it now) defines ``path``,
    e.g. ``schema_has("worker", "mode")``: new fields are asserted once they exist."""
    schema = json.loads((SCHEMA / "status.v1.json").read_text(encoding="utf-8"))
    node: Any = schema
    for key in path:
        properties = node.get("properties", {})
        if key not in properties:
            return False
        node = properties[key]
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return True


def archive_mode(
    mode: str,
    store: Path,
    name: str,
    *,
    ours: bool,
    changes: Mapping[str, Any] | None = None,
) -> Path:
    """Archive ``modes/<mode>`` as ``name``: ours (``handler.py``) or the twin. Both get the
    same ``model-config.yml`` (the mode's, with :data:`FAST` and ``changes``)."""
    source = MODES / mode
    config = model_config(source / "model-config.yml", {"health": dict(FAST)})
    config = model_config(config, changes)
    handler = source / ("handler.py" if ours else "plain_handler.py")
    extras = [BEHAVIOUR] + ([source / "plain_handler.py"] if ours else [])
    # A function handler is archived as its file: torch-model-archiver 0.12 copies the
    # --handler path as given, so "handler.py:handle" is a missing file to it; TorchServe's
    # model_loader then takes the module's function "handle" (the default name,
    # ts/model_loader.py), exactly what "handler.py:handle" names.
    return archive_model(handler, name, store, config=config, extra_files=extras)


# -- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One answer: ``status`` (``None``: no HTTP answer at all), the chunks as sent (one
    for an answer that is not chunked) and the headers (names in lower case)."""

    status: int | None
    chunks: tuple[bytes, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    chunked: bool = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def failed(self) -> bool:
        """No answer, an error status, or an answer that broke off."""
        return self.status is None or self.status >= 400 or bool(self.error)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def comparable(self, *, ignore_headers: Iterable[str] = ()) -> tuple[Any, ...]:
        """What must be the same byte for byte between ours and the twin: the status,
        chunked or not, every chunk, whether the answer broke off, and the headers (the
        content type, those the handler sets) but TorchServe's own per-request ones (the
        request id, and ``ignore_headers``)."""
        left_out = {"x-request-id", "date", "content-length", "connection", "keep-alive"}
        left_out |= {h.lower() for h in ignore_headers}
        kept = tuple(sorted((k, v) for k, v in self.headers.items() if k not in left_out))
        return (self.status, self.chunked, self.chunks, bool(self.error), kept)


def post(
    server: TorchServe,
    name: str,
    body: str | bytes,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Reply:
    """``POST /predictions/<name>``, reading a chunked answer chunk by chunk as sent."""
    url = f"{server.inference_url}/predictions/{name}"
    parts = urlsplit(url)
    data = body.encode("utf-8") if isinstance(body, str) else body
    sent = {"Content-Type": "text/plain", **server.auth_headers(url), **(headers or {})}
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("POST", parts.path, body=data, headers=sent)
        response = connection.getresponse()
        got = {k.lower(): v for k, v in response.getheaders()}
    except (OSError, http.client.HTTPException) as exc:
        connection.close()
        return Reply(None, error=f"{type(exc).__name__}: {exc}")
    chunks: list[bytes] = []
    try:
        if not response.chunked:
            return Reply(response.status, (response.read(),), got)
        for chunk in _chunks(response):
            chunks.append(chunk)
        return Reply(response.status, tuple(chunks), got, chunked=True)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # The answer broke off after its status (a streamed answer whose request then
        # failed or whose worker died): what came, and how it ended.
        error = f"{type(exc).__name__}: {exc}"
        return Reply(response.status, tuple(chunks), got, error, chunked=response.chunked)
    finally:
        connection.close()


def _chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The chunks of a chunked answer as they came (http.client would join them)."""
    stream = response.fp
    assert stream is not None
    while True:
        line = stream.readline()
        if not line:
            raise ConnectionError("the answer ended before its last chunk")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass
            return
        yield stream.read(size)
        stream.read(2)


def post_all(
    server: TorchServe,
    name: str,
    bodies: Sequence[str],
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> list[Reply]:
    """Send every body at once (one thread each); the replies in the order of ``bodies``."""
    with ThreadPoolExecutor(max_workers=max(1, len(bodies))) as pool:
        futures = [
            pool.submit(post, server, name, body, headers=headers, timeout=timeout)
            for body in bodies
        ]
        return [future.result() for future in futures]


def in_background(call: Callable[[], Any]) -> threading.Thread:
    """Run ``call`` in a daemon thread (a request that hangs or kills its worker)."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


# -- what TorchServe and ts-health say ----------------------------------------------------


def customized(server: TorchServe, name: str, timeout: float = 30) -> tuple[int, Any]:
    """``GET /models/<name>?customized=true``: the status and the parsed body."""
    url = f"{server.management_url}/models/{name}?customized=true"
    answer = server.request("GET", url, timeout=timeout)
    try:
        return answer.status, json.loads(answer.body)
    except ValueError:
        return answer.status, answer.text


def worker_pid(server: TorchServe, name: str) -> Any:
    return server.describe(name)[0]["workers"][0]["pid"]


def model_json(server: TorchServe, state: Path, name: str) -> dict[str, Any]:
    """``ts-health status <name> --json``: the model's entry."""
    done = ts_health(server, "status", name, "--json", state_dir=state)
    return json.loads(done.stdout)["models"][0]


def ready(server: TorchServe, state: Path, name: str) -> subprocess.CompletedProcess[str]:
    return ts_health(server, "ready", name, state_dir=state)


def wait_state(
    server: TorchServe, state: Path, name: str, wanted: str, *, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Poll ``ts-health ready <name>`` until its state is ``wanted``; return that run."""
    seen: list[str] = []

    def reached() -> subprocess.CompletedProcess[str] | None:
        done = ready(server, state, name)
        seen.append(done.stdout.strip())
        return done if state_of(done) == wanted else None

    try:
        return wait_for(reached, timeout=timeout, what=f"ts-health ready {name}: {wanted}")
    except WaitTimeout as exc:
        raise WaitTimeout(f"{exc}; it said: {seen[-1] if seen else None!r}") from None


def beats(state: Path, name: str, version: str = "1.0") -> list[dict[str, Any]]:
    """The model version's heartbeat files as they are now (read directly, not through
    the probe: counting must not depend on a describe, see the continuous-batching tests)."""
    found = []
    for path in sorted((state / name / version).glob("beat.*.json")):
        try:
            found.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):  # being replaced: the next look sees it
            continue
    return found


def beat_counts(
    server: TorchServe, state: Path, name: str, *, after: float = 0.0
) -> list[tuple[int, int]] | None:
    """``(requests, failed)`` of each heartbeat of the model, once all of them were written
    after ``after`` (epoch seconds; ``None`` before that)."""
    found = beats(state, name)
    if not found or any(b["at"] <= after for b in found):
        return None
    return [(b["requests"], b["failed"]) for b in found]


def fresh_counts(server: TorchServe, state: Path, name: str) -> list[tuple[int, int]]:
    """The heartbeats' counts as they are now: from beats written after this call (a beat
    is up to one interval old; requests answered before now are in the next one)."""
    now = time.time()
    return wait_for(
        lambda: beat_counts(server, state, name, after=now), timeout=10, what="a fresh beat"
    )


# -- registrations ------------------------------------------------------------------------


class Models:
    """Registers mode models on a server and unregisters every one of them on ``close()``."""

    def __init__(self, server: TorchServe, store: Path, state: Path) -> None:
        self.server = server
        self.store = store
        self.state = state
        self.names: list[str] = []

    def __enter__(self) -> Models:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def one(
        self,
        mode: str,
        name: str,
        *,
        ours: bool = True,
        changes: Mapping[str, Any] | None = None,
        timeout: float = 120,
    ) -> str:
        """Register ``modes/<mode>`` (ours, or the twin) as ``name``; READY when it returns."""
        mar = archive_mode(mode, self.store, name, ours=ours, changes=changes)
        self.names.append(name)
        self.server.register(mar.name, initial_workers=1, synchronous=True, timeout=timeout)
        self.server.wait_until_ready(name, timeout=timeout)
        return name

    def pair(
        self, mode: str, name: str, *, changes: Mapping[str, Any] | None = None
    ) -> tuple[str, str]:
        """Ours as ``name`` and the twin as ``<name>_twin``, same config, both READY."""
        return (
            self.one(mode, name, changes=changes),
            self.one(mode, f"{name}_twin", ours=False, changes=changes),
        )

    def close(self) -> None:
        for name in reversed(self.names):
            with contextlib.suppress(ServerError):
                self.server.unregister(name, check=False)
        self.names.clear()


# -- the checks every mode's tests share ---------------------------------------------------


def same_answers(
    server: TorchServe,
    ours: str,
    twin: str,
    bodies: Sequence[str],
    *,
    at_once: bool = True,
    headers: Mapping[str, str] | None = None,
    ignore_headers: Iterable[str] = (),
) -> list[Reply]:
    """Send ``bodies`` to ours and to the twin (all at once, or one after another) and
    assert each answer is the twin's, byte for byte; return ours."""
    if at_once:
        mine = post_all(server, ours, bodies, headers=headers)
        theirs = post_all(server, twin, bodies, headers=headers)
    else:
        mine = [post(server, ours, body, headers=headers) for body in bodies]
        theirs = [post(server, twin, body, headers=headers) for body in bodies]
    for body, a, b in zip(bodies, mine, theirs):
        assert a.comparable(ignore_headers=ignore_headers) == b.comparable(
            ignore_headers=ignore_headers
        ), (body, a, b)
    return mine


def _parent(pid: int) -> int | None:
    stat = read_stat(pid)
    return None if stat is None else stat.ppid


def ready_record(server: TorchServe, state: Path, name: str, mode: str) -> dict[str, Any]:
    """The status document of a model just registered says ready, first attempt, this
    worker; ``worker.mode`` once the schema has it. Returns the document."""
    document = server.status_document(name)
    assert document["status"] == "ready", document
    assert document["ready"] is True, document
    init = document["initialization"]
    assert init["phase"] == "ready", init
    assert init["attempt"] == 1, init
    assert init["history"]["attempts_to_ready"] == 1, init
    assert init["history"]["failures"] == 0, init
    described = worker_pid(server, name)
    # torchrun: TorchServe describes the worker by whichever rank reported its pid last;
    # rank 0 answers. Both are children of one torchrun.
    assert document["worker"]["pid"] == described or (
        _parent(document["worker"]["pid"]) == _parent(described)
    ), document["worker"]
    if schema_has("worker", "mode"):
        assert document["worker"]["mode"] == mode, document["worker"]
    record = json.loads(server.init_record_path(name).read_text(encoding="utf-8"))
    assert record["attempts_to_ready"] == 1, record
    assert state_of(ready(server, state, name)) == "ready"
    return document


def counted(
    server: TorchServe,
    state: Path,
    name: str,
    send: Callable[[], Sequence[Reply]],
    *,
    describe: bool = True,
) -> tuple[int, int]:
    """Run ``send`` and assert the worker counted exactly its requests (and its failed
    ones, answered >= 400): in the status document (when ``describe`` works in the mode)
    and in the heartbeat. Returns ``(sent, failed)``."""
    before = fresh_counts(server, state, name)
    assert len(before) == 1, before
    if describe:
        first = server.status_document(name)["requests"]
        assert (first["total"], first["failed"]) == before[0], (first, before)
    replies = send()
    sent = len(replies)
    failed = sum(1 for r in replies if r.failed)
    wanted = (before[0][0] + sent, before[0][1] + failed)
    assert fresh_counts(server, state, name) == [wanted], wanted
    if describe:
        requests = server.status_document(name)["requests"]
        assert (requests["total"], requests["failed"]) == wanted, requests
        if schema_has("requests", "in_flight"):
            assert requests["in_flight"] == 0, requests
    return sent, failed


def goes_stuck(
    server: TorchServe, state: Path, name: str, *, hang: str = "hang"
) -> subprocess.CompletedProcess[str]:
    """One hung request makes ``ts-health ready`` say stuck within the threshold and a
    beat (:data:`STUCK_WITHIN_S`); TorchServe still says READY. Returns the probe's run."""
    assert state_of(ready(server, state, name)) == "ready"
    in_background(lambda: post(server, name, hang, timeout=120))
    done = wait_state(server, state, name, "stuck", timeout=STUCK_WITHIN_S)
    assert done.returncode == 1, done
    assert "one request has run for" in done.stdout, done.stdout
    assert server.worker_statuses(name) == ["READY"]
    return done


def goes_failing(
    server: TorchServe, state: Path, name: str, *, body: str = "fail", times: int = 3
) -> subprocess.CompletedProcess[str]:
    """``failing_after_requests`` (3) failures in a row make it failing, naming the error;
    one success after them makes it ready again."""
    for _ in range(times):
        reply = post(server, name, body)
        assert reply.failed, reply
    done = wait_state(server, state, name, "failing", timeout=10)
    assert done.returncode == 1, done
    assert "ValueError: bad input" in done.stdout, done.stdout
    reply = post(server, name, "hello")
    assert reply.status == 200, reply
    wait_state(server, state, name, "ready", timeout=10)
    return done


def dies_while_serving(
    server: TorchServe, state: Path, name: str, *, body: str = "die"
) -> dict[str, Any]:
    """A request that kills its worker is a death while serving: with
    ``unstable_after_deaths: 1`` the model is unstable once the next worker is READY, the
    reason says it died while serving, and the record holds the death (cause ``died``, in a
    request). Returns the model's ``status --json`` entry."""
    pid = worker_pid(server, name)
    post(server, name, body, timeout=60)
    wait_for(
        lambda: (
            worker_pid(server, name) not in (pid, None)
            and server.worker_statuses(name) == ["READY"]
        ),
        timeout=60,
        what="a new worker process",
    )
    done = wait_state(server, state, name, "unstable", timeout=20)
    assert "a worker died once" in done.stdout, done.stdout
    assert "while serving" in done.stdout, done.stdout
    model = model_json(server, state, name)
    deaths = model["initialization"]["deaths"]
    assert [(d["cause"], d["request_s"] is not None) for d in deaths] == [("died", True)], deaths
    return model


def ready_by_beat(server: TorchServe, state: Path, name: str, mode: str) -> dict[str, Any]:
    """The record and the heartbeat of a model just registered, read without a describe
    (for modes where TorchServe cannot route one): the record's first attempt was READY,
    the one beat is this worker's and names the mode. Returns the beat."""
    record = json.loads(server.init_record_path(name).read_text(encoding="utf-8"))
    assert record["attempts_to_ready"] == 1, record
    assert record["phase"] == "ready", record
    assert record["failures"] == 0, record
    found = wait_for(lambda: beats(state, name), timeout=10, what=f"a heartbeat of {name}")
    assert len(found) == 1, found
    assert found[0]["pid"] == worker_pid(server, name), found
    if "mode" in found[0]:
        assert found[0]["mode"] == mode, found
    return found[0]
