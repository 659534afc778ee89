"""Run a real TorchServe for tests and demos: archive a handler, start a server, stop it.

Standard library only, and nothing of torch or ts is imported: the server runs in its own
process group, started through the ``torchserve`` command that sits next to the running
interpreter (else on ``PATH``)::

    from ts_health_handler.testing import archive_model, serve

    mar = archive_model(Path("handler.py"), "my_model", store, config_file=Path("model-config.yml"))
    with serve(store) as server:
        server.register(mar.name)
        assert server.ping() == (200, {"status": "Healthy"})
        status = server.status_document("my_model")

Every server gets free loopback ports, its own log directory (``LOG_LOCATION`` and
``METRICS_LOCATION``) and its own temporary directory (``TEMP``/``TMPDIR``: TorchServe keeps
its pid file, the workers' ``.ts.sock.<port>`` sockets and the unpacked models there), so two
servers on one machine never collide. On exit the exact process group that was started is
stopped (SIGTERM, then SIGKILL), also when the body raised; nothing is ever killed by name.

TorchServe 0.12.0 facts this module relies on (checked against the real server and its
``model-server.jar``):

- ``torchserve --start`` writes its pid file to ``tempfile.gettempdir()/.model_server.pid``
  and refuses to start while that file names a live server; ``TEMP`` also becomes the
  frontend's ``-Djava.io.tmpdir``, where the worker sockets live. Hence one temp dir per server.
- With token authorization on (the 0.12 default) the frontend writes ``key_file.json`` into its
  *working directory* (``user.dir``)::

      {"management": {"key": "...", "expiration time": "<ISO instant>"},
       "inference": {"key": "...", "expiration time": "..."},
       "API": {"key": "..."}}

  Keys expire after ``token_expiration_min`` (default 60) minutes. Every inference-port request,
  ``/ping`` included, needs ``Authorization: Bearer <inference key>`` (without it: 400
  ``InvalidKeyException``); the management port needs the management key; the metrics port
  needs none.
- ``customizedMetadata`` in ``GET /models/{name}?customized=true`` comes back as a JSON object
  (a dict, or a JSON text, returned by ``describe_handle()`` is parsed); anything that is not a
  JSON object becomes ``{}``. Older TorchServe versions returned a JSON *string*;
  :meth:`TorchServe.status_document` accepts both.
- A customized describe is queued to the model's worker: when no worker is alive (a model whose
  ``initialize()`` keeps failing) it never answers. Always give it a timeout.
- ``POST /models?synchronous=true`` for a model whose ``initialize()`` fails answers 500
  ``Failed to start workers`` at once and leaves the model registered with no worker and no
  retries. Register failing models with ``synchronous=False`` to watch TorchServe's retries.
- A failing worker is restarted after 1, 1, 2, 3, 5, 8, 13, ... s (Fibonacci, capped at
  1597 s). ``/ping`` stays ``200 {"status": "Healthy"}`` while every model has at least
  ``minWorkers`` workers that are alive or within ``maxRetryTimeoutInSec`` (model-config.yml,
  default 300) of their first failure; after that it answers ``500 {"status": "Unhealthy"}``
  and TorchServe stops restarting that worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar, Union

from ._errors import HealthError
from ._state import ENV_STATE_DIR

__all__ = [
    "HttpResponse",
    "ServerError",
    "Tokens",
    "TorchServe",
    "WaitTimeout",
    "archive_model",
    "find_executable",
    "serve",
    "wait_for",
]

_T = TypeVar("_T")
PathLike = Union[str, "os.PathLike[str]"]

#: Lines of a log kept in an error message.
TAIL_LINES: Final = 40
#: How long a stopped server may take before its process group gets SIGKILL.
STOP_TIMEOUT_S: Final = 30.0
#: Attempts at starting when the picked ports were taken in the meantime.
PORT_ATTEMPTS: Final = 3
LOG_FILE: Final = "ts_log.log"
CONSOLE_FILE: Final = "torchserve-console.log"
KEY_FILE: Final = "key_file.json"


class ServerError(HealthError):
    """TorchServe could not be archived for, started, reached or stopped."""


class WaitTimeout(ServerError, TimeoutError):
    """:func:`wait_for` gave up; the message says what was awaited and what was last seen."""


# -- small helpers ------------------------------------------------------------------------


def find_executable(name: str) -> str:
    """``name`` next to the running interpreter (a virtualenv's ``bin``), else on ``PATH``.

    Raises:
        ServerError: neither place has it.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ServerError(
            f"{name} not found next to {sys.executable} nor on PATH; "
            "install torchserve==0.12.0 and torch-model-archiver==0.12.0"
        )
    return found


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file, or a note saying why there are none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"<{path}: {exc.strerror or exc}>"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else f"<{path} is empty>"


def wait_for(
    condition: Callable[[], _T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str = "condition",
) -> _T:
    """Call ``condition`` until it returns something truthy, and return that.

    Polls every ``interval`` seconds for at most ``timeout`` seconds; exceptions raised by
    ``condition`` count as "not yet" (the last one is reported).

    Raises:
        WaitTimeout: naming ``what`` and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = condition()
        except Exception as exc:  # "not yet": e.g. connection refused while starting
            last = f"{type(exc).__name__}: {exc}"
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


# -- archiving ------------------------------------------------------------------------------


def archive_model(
    handler: PathLike,
    model_name: str,
    export_dir: PathLike,
    *,
    version: str = "1.0",
    config_file: PathLike | None = None,
    extra_files: Sequence[PathLike] = (),
    serialized_file: PathLike | None = None,
    requirements_file: PathLike | None = None,
    timeout: float = 300.0,
) -> Path:
    """Build ``<export_dir>/<model_name>.mar`` with ``torch-model-archiver --force``.

    Args:
        handler: the handler ``.py`` file (exactly one class defined in it).
        model_name: the model name, also the file name of the archive.
        export_dir: created when missing; usually the server's model store.
        version: the model version written into the manifest.
        config_file: a ``model-config.yml`` to pack (its settings override
            ``config.properties`` defaults for this model).
        extra_files: more files packed next to the handler.
        serialized_file: weights, if the handler loads any.
        requirements_file: a ``requirements.txt`` (installed only with
            ``install_py_dep_per_model=true``).
        timeout: seconds the archiver may take.

    Returns:
        The path of the ``.mar`` file.

    Raises:
        ServerError: a missing input, or the archiver failed (with its stderr tail).
    """
    handler_path = Path(handler)
    inputs = [handler_path, *(Path(f) for f in extra_files)]
    for optional in (config_file, serialized_file, requirements_file):
        if optional is not None:
            inputs.append(Path(optional))
    for path in inputs:
        if not path.exists():
            raise ServerError(f"cannot archive {model_name}: {path} does not exist")
    export = Path(export_dir)
    export.mkdir(parents=True, exist_ok=True)
    command = [
        find_executable("torch-model-archiver"),
        "--model-name",
        model_name,
        "--version",
        version,
        "--handler",
        str(handler_path),
        "--export-path",
        str(export),
        "--force",
    ]
    if config_file is not None:
        command += ["--config-file", str(config_file)]
    if serialized_file is not None:
        command += ["--serialized-file", str(serialized_file)]
    if requirements_file is not None:
        command += ["--requirements-file", str(requirements_file)]
    if extra_files:
        command += ["--extra-files", ",".join(str(f) for f in extra_files)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ServerError(
            f"torch-model-archiver did not finish within {timeout:g} s for {model_name}"
        ) from None
    mar = export / f"{model_name}.mar"
    if done.returncode != 0 or not mar.is_file():
        detail = _one_line(done.stderr or done.stdout or "")
        raise ServerError(
            f"torch-model-archiver failed for {model_name} (exit {done.returncode}): {detail}"
        )
    return mar


def _one_line(output: str, keep: int = 6) -> str:
    """The informative end of a tool's output on one line, traceback frames left out."""
    lines = [
        line.strip()
        for line in output.splitlines()
        if line.strip()
        and not line.startswith((" ", "\t"))
        and not line.startswith("Traceback (most recent call last)")
    ]
    return " | ".join(lines[-keep:]) or "no output"


# -- talking to a server ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    """The keys of a server started with token authorization (from ``key_file.json``)."""

    inference: str
    management: str
    #: The key of the ``/token`` API that renews the other two.
    api: str | None = None

    @classmethod
    def from_key_file(cls, path: PathLike) -> Tokens:
        """Parse TorchServe 0.12's ``key_file.json``.

        Raises:
            ServerError: the file is missing, not JSON or lacks a key.
        """
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            api = raw.get("API", {}).get("key")
            return cls(
                inference=str(raw["inference"]["key"]),
                management=str(raw["management"]["key"]),
                api=None if api is None else str(api),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ServerError(f"unreadable TorchServe key file {path}: {exc!r}") from None


@dataclass(frozen=True)
class HttpResponse:
    """A status, headers and body; HTTP errors are answers too, not exceptions."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ServerError: the body is not JSON.
        """
        try:
            return json.loads(self.body)
        except ValueError:
            raise ServerError(
                f"expected JSON, got HTTP {self.status}: {self.text[:500]!r}"
            ) from None


@dataclass(frozen=True)
class TorchServe:
    """A running server started by :func:`serve`, with helpers for its REST APIs."""

    inference_url: str
    management_url: str
    metrics_url: str
    log_dir: Path
    model_store: Path
    #: Pid of the ``torchserve`` process started, also the id of its process group (the Java
    #: frontend and the Python workers belong to it).
    pid: int
    token: Tokens | None = None
    workdir: Path = Path()
    temp_dir: Path = Path()
    config_file: Path = Path()
    #: ``$TS_HEALTH_STATE_DIR`` of the server's workers: where handlers without
    #: ``health.state_dir`` persist their ``init.json``.
    state_dir: Path = Path()

    def init_record_path(self, name: str, version: str = "1.0") -> Path:
        """Where a model's ``init.json`` is under :attr:`state_dir` (names URL-quoted)."""
        quoted = urllib.parse.quote
        return self.state_dir / quoted(name, safe="") / quoted(version, safe="") / "init.json"

    # -- raw HTTP ---------------------------------------------------------------------------

    def auth_headers(self, url: str) -> dict[str, str]:
        """The ``Authorization`` header ``url`` needs (none for metrics or without tokens)."""
        if self.token is None:
            return {}
        if url.startswith(self.management_url):
            return {"Authorization": f"Bearer {self.token.management}"}
        if url.startswith(self.inference_url):
            return {"Authorization": f"Bearer {self.token.inference}"}
        return {}

    def request(
        self,
        method: str,
        url: str,
        *,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        auth: bool = True,
    ) -> HttpResponse:
        """Send one request; the Bearer token is added when the server needs one.

        Args:
            url: a full URL (e.g. ``server.inference_url + "/ping"``).
            auth: ``False`` sends no token (to see what an unauthenticated client gets).

        Raises:
            ServerError: no HTTP answer (connection refused, reset, timed out).
        """
        body = data.encode("utf-8") if isinstance(data, str) else data
        all_headers = self.auth_headers(url) if auth else {}
        all_headers.update(headers or {})
        request = urllib.request.Request(url, data=body, headers=all_headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return HttpResponse(answer.status, answer.read(), dict(answer.headers.items()))
        except urllib.error.HTTPError as error:
            try:
                payload = error.read()
            finally:
                error.close()
            return HttpResponse(error.code, payload, dict(error.headers.items()))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerError(f"{method} {url}: no answer ({reason})") from exc

    # -- inference API -------------------------------------------------------------------------

    def ping(self, *, timeout: float = 10.0) -> tuple[int, Any]:
        """``GET /ping``: ``(status, parsed body)``, e.g. ``(200, {"status": "Healthy"})``."""
        answer = self.request("GET", f"{self.inference_url}/ping", timeout=timeout)
        try:
            return answer.status, json.loads(answer.body)
        except ValueError:
            return answer.status, answer.text

    def infer(
        self,
        name: str,
        data: bytes | str = b"",
        *,
        version: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> HttpResponse:
        """``POST /predictions/{name}[/{version}]`` with ``data`` as the body."""
        return self.request(
            "POST",
            f"{self.inference_url}/predictions/{_model_path(name, version)}",
            data=data,
            headers=headers,
            timeout=timeout,
        )

    # -- management API ------------------------------------------------------------------------

    def register(
        self,
        mar_name: str,
        *,
        initial_workers: int = 1,
        synchronous: bool = True,
        timeout: float = 180.0,
        check: bool = True,
        **params: str | int | float | bool,
    ) -> HttpResponse:
        """``POST /models?url=<mar_name>&initial_workers=...&synchronous=...``.

        ``mar_name`` is a file in the model store (or a URL). Extra keyword arguments become
        query parameters (``model_name``, ``batch_size``, ``response_timeout``, ...).

        TorchServe 0.12 answers a synchronous registration of a model whose ``initialize()``
        fails with 500 at once and then does not retry that worker; use ``synchronous=False``
        for failing models.

        Raises:
            ServerError: with ``check`` (the default), when the answer is not 2xx.
        """
        query: dict[str, str] = {
            "url": mar_name,
            "initial_workers": str(initial_workers),
            "synchronous": "true" if synchronous else "false",
        }
        for key, value in params.items():
            query[key] = str(value).lower() if isinstance(value, bool) else str(value)
        url = f"{self.management_url}/models?{urllib.parse.urlencode(query)}"
        answer = self.request("POST", url, timeout=timeout)
        if check and not 200 <= answer.status < 300:
            raise ServerError(
                f"registering {mar_name} failed: HTTP {answer.status} {answer.text.strip()}"
                f"\n--- {LOG_FILE} (tail) ---\n{self.log_tail()}"
            )
        return answer

    def unregister(
        self,
        name: str,
        *,
        version: str | None = None,
        timeout: float = 120.0,
        check: bool = True,
    ) -> HttpResponse:
        """``DELETE /models/{name}[/{version}]``.

        Raises:
            ServerError: with ``check`` (the default), when the answer is not 2xx.
        """
        url = f"{self.management_url}/models/{_model_path(name, version)}"
        answer = self.request("DELETE", url, timeout=timeout)
        if check and not 200 <= answer.status < 300:
            raise ServerError(f"unregistering {name} failed: HTTP {answer.status} {answer.text}")
        return answer

    def describe(
        self,
        name: str,
        *,
        version: str | None = None,
        customized: bool = False,
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """``GET /models/{name}[/{version}][?customized=true]``, parsed (a list, one per version).

        A customized describe goes through the model's worker and never answers while no worker
        is alive: ``timeout`` bounds the wait.

        Raises:
            ServerError: no answer within ``timeout``, a non-200 answer or a non-JSON body.
        """
        url = f"{self.management_url}/models/{_model_path(name, version)}"
        if customized:
            url += "?customized=true"
        answer = self.request("GET", url, timeout=timeout)
        if answer.status != 200:
            raise ServerError(f"describe {name}: HTTP {answer.status} {answer.text.strip()}")
        parsed = answer.json()
        if not isinstance(parsed, list):
            raise ServerError(f"describe {name}: expected a JSON list, got {answer.text[:500]!r}")
        return parsed

    def status_document(
        self, name: str, *, version: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The handler's status document: ``customizedMetadata`` of a customized describe.

        Accepts both the JSON object TorchServe 0.12 sends and the JSON string of older ones.

        Raises:
            ServerError: as :meth:`describe`, or when there is no JSON object to return.
        """
        entries = self.describe(name, version=version, customized=True, timeout=timeout)
        metadata = entries[0].get("customizedMetadata") if entries else None
        if isinstance(metadata, str):
            try:
                metadata = json.loads(metadata)
            except ValueError:
                raise ServerError(
                    f"{name}: customizedMetadata is not JSON: {metadata[:500]!r}"
                ) from None
        if not isinstance(metadata, dict):
            raise ServerError(f"{name}: no customizedMetadata object in {entries!r}"[:2000])
        return metadata

    def worker_statuses(self, name: str, *, version: str | None = None) -> list[str]:
        """The ``status`` of each worker of the model (``READY``, ``UNLOADING``, ...)."""
        entries = self.describe(name, version=version)
        return [str(worker.get("status")) for worker in entries[0].get("workers", [])]

    def wait_until_ready(
        self, name: str, *, version: str | None = None, workers: int = 1, timeout: float = 120.0
    ) -> list[dict[str, Any]]:
        """Poll describe until ``workers`` workers of the model are ``READY``; return describe.

        Raises:
            WaitTimeout: not ready in time (the message holds the tail of ``ts_log.log``).
        """

        def ready() -> list[dict[str, Any]] | None:
            entries = self.describe(name, version=version)
            statuses = [w.get("status") for w in entries[0].get("workers", [])]
            return entries if statuses.count("READY") >= workers else None

        try:
            return wait_for(ready, timeout=timeout, what=f"{workers} READY worker(s) of {name}")
        except WaitTimeout as exc:
            raise WaitTimeout(f"{exc}\n--- {LOG_FILE} (tail) ---\n{self.log_tail()}") from None

    # -- logs ---------------------------------------------------------------------------------

    def log_tail(self, name: str = LOG_FILE, lines: int = TAIL_LINES) -> str:
        """The last ``lines`` lines of a log in :attr:`log_dir` (``model_log.log``, ...)."""
        return tail(self.log_dir / name, lines)


def _model_path(name: str, version: str | None) -> str:
    path = urllib.parse.quote(name, safe="")
    if version is not None:
        path += "/" + urllib.parse.quote(version, safe="")
    return path


# -- starting and stopping ---------------------------------------------------------------------


def _models_setting(models: Mapping[str, str] | Sequence[str] | str | None) -> str | None:
    if models is None:
        return None
    if isinstance(models, str):
        return models
    if isinstance(models, Mapping):
        return ",".join(f"{name}={mar}" for name, mar in models.items())
    return ",".join(models)


def _write_properties(path: Path, settings: Mapping[str, str]) -> None:
    lines = ["# written by ts_health_handler.testing.serve"]
    for key, value in settings.items():
        if "\n" in key or "\n" in str(value):
            raise ServerError(f"config.properties entry {key!r} must be one line")
        lines.append(f"{key}={value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in process group ``pgid``."""
    proc = Path("/proc")
    if proc.is_dir():
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False
    try:  # pragma: no cover - not Linux: zombies count as alive here
        os.killpg(pgid, 0)
    except ProcessLookupError:  # pragma: no cover
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True  # pragma: no cover


def _stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop the process group that ``process`` leads: SIGTERM, wait, then SIGKILL.

    The group id is the pid of the process we started (``start_new_session=True``); while any
    member lives no other process can get that id, so only our own processes are signalled.
    """
    pgid = process.pid

    def signal_group(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)

    if process.poll() is None or _group_alive(pgid):
        signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)
        if process.poll() is not None and not _group_alive(pgid):
            return
        time.sleep(0.1)
    signal_group(signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    # Members may already be reparented; give the kernel a moment to reap them.
    with contextlib.suppress(WaitTimeout):
        wait_for(lambda: not _group_alive(pgid), timeout=10, interval=0.1, what="SIGKILL")


def _port_clash(log_dir: Path) -> bool:
    text = tail(log_dir / LOG_FILE, 400) + tail(log_dir / CONSOLE_FILE, 200)
    return "Address already in use" in text or "BindException" in text


@contextlib.contextmanager
def serve(
    model_store: PathLike,
    *,
    models: Mapping[str, str] | Sequence[str] | str | None = None,
    config: Mapping[str, str | int | float | bool] | None = None,
    token_auth: bool = False,
    model_api: bool = True,
    startup_timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
    workdir: PathLike | None = None,
    workers_per_model: int = 1,
) -> Iterator[TorchServe]:
    """Start TorchServe (``torchserve --start --foreground --ncs``) and stop it on exit.

    Args:
        model_store: the directory holding the ``.mar`` files.
        models: loaded at start-up (``load_models``): ``"all"``, a list of ``.mar`` files, or
            ``{"name": "file.mar"}``; ``None`` (default) loads none, register them instead.
        config: extra ``config.properties`` entries; they override the ones written here
            (addresses, ``model_store``, ``default_workers_per_model``, token and model API).
        token_auth: keep TorchServe 0.12's token authorization on; :attr:`TorchServe.token`
            then holds the keys from ``key_file.json`` and every helper sends them.
        model_api: allow registering and unregistering through the management API.
        startup_timeout: seconds until ``/ping`` must answer (any HTTP status).
        env: extra environment variables for the server and its workers.
            ``TS_HEALTH_STATE_DIR`` (from here, else from this process) is always set for the
            workers: by default to ``<workdir>/health-state`` (:attr:`TorchServe.state_dir`).
        workdir: where ``config.properties``, ``logs/`` and ``key_file.json`` go (the server's
            working directory). By default a fresh temporary directory, removed on a clean exit
            and kept (its path is in the error) when starting or the body failed.
        workers_per_model: ``default_workers_per_model`` (TorchServe's own default is one per
            CPU core); a model's ``minWorkers`` overrides it.

    Yields:
        The running :class:`TorchServe`.

    Raises:
        ServerError: the server did not start (the message holds the tail of ``ts_log.log``).
    """
    store = Path(model_store).resolve()
    if not store.is_dir():
        raise ServerError(f"model store {store} is not a directory")
    torchserve = find_executable("torchserve")
    java_home = (env or {}).get("JAVA_HOME") or os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None or not os.access(java, os.X_OK):
        raise ServerError(
            "java not found (TorchServe's frontend needs Java 17): install it or set JAVA_HOME"
        )
    own_workdir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="ts-serve-")) if workdir is None else Path(workdir)
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    log_dir = root / "logs"
    log_dir.mkdir(exist_ok=True)
    # Records go with the workdir unless the caller chose a place: the workers' TMPDIR (and so
    # the library's default state dir) is the temp dir below, removed on exit.
    state_dir = Path(
        (env or {}).get(ENV_STATE_DIR) or os.environ.get(ENV_STATE_DIR) or root / "health-state"
    )
    # Unix socket paths are limited to ~107 bytes: keep the temp dir short and separate.
    temp_dir = Path(tempfile.mkdtemp(prefix="tsrv-"))
    process: subprocess.Popen[bytes] | None = None
    clean = False
    try:
        server: TorchServe | None = None
        for attempt in range(1, PORT_ATTEMPTS + 1):
            inference, management, metrics, grpc_inference, grpc_management = _free_ports(5)
            settings: dict[str, str] = {
                "inference_address": f"http://127.0.0.1:{inference}",
                "management_address": f"http://127.0.0.1:{management}",
                "metrics_address": f"http://127.0.0.1:{metrics}",
                "grpc_inference_address": "127.0.0.1",
                "grpc_management_address": "127.0.0.1",
                "grpc_inference_port": str(grpc_inference),
                "grpc_management_port": str(grpc_management),
                "model_store": str(store),
                "default_workers_per_model": str(workers_per_model),
                "disable_token_authorization": "false" if token_auth else "true",
                "enable_model_api": "true" if model_api else "false",
            }
            loaded = _models_setting(models)
            if loaded:
                settings["load_models"] = loaded
            for key, value in (config or {}).items():
                settings[key] = str(value).lower() if isinstance(value, bool) else str(value)
            config_file = root / "config.properties"
            _write_properties(config_file, settings)
            (root / KEY_FILE).unlink(missing_ok=True)
            (temp_dir / ".model_server.pid").unlink(missing_ok=True)
            command = [
                torchserve,
                "--start",
                "--foreground",
                "--ncs",
                "--ts-config",
                str(config_file),
                "--model-store",
                str(store),
            ]
            if not token_auth:
                command.append("--disable-token-auth")
            if model_api:
                command.append("--enable-model-api")
            environment = dict(os.environ)
            environment.update(env or {})
            environment.update(
                {
                    "LOG_LOCATION": str(log_dir),
                    "METRICS_LOCATION": str(log_dir),
                    "TEMP": str(temp_dir),
                    "TMPDIR": str(temp_dir),
                    "TMP": str(temp_dir),
                    ENV_STATE_DIR: str(state_dir),
                    # The CLI prefers $TS_CONFIG_FILE over --ts-config: make both ours.
                    "TS_CONFIG_FILE": str(config_file),
                }
            )
            with open(log_dir / CONSOLE_FILE, "ab") as console:
                process = subprocess.Popen(
                    command,
                    cwd=root,
                    env=environment,
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            server = _await_start(
                process,
                TorchServe(
                    inference_url=settings["inference_address"].rstrip("/"),
                    management_url=settings["management_address"].rstrip("/"),
                    metrics_url=settings["metrics_address"].rstrip("/"),
                    log_dir=log_dir,
                    model_store=store,
                    pid=process.pid,
                    workdir=root,
                    temp_dir=temp_dir,
                    config_file=config_file,
                    state_dir=state_dir,
                ),
                token_auth=token_auth,
                timeout=startup_timeout,
                last_attempt=attempt == PORT_ATTEMPTS,
            )
            if server is not None:
                break
            _stop(process)
            process = None
        assert server is not None  # _await_start raises on the last attempt
        yield server
        clean = True
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)
        if own_workdir and clean:
            shutil.rmtree(root, ignore_errors=True)


def _await_start(
    process: subprocess.Popen[bytes],
    server: TorchServe,
    *,
    token_auth: bool,
    timeout: float,
    last_attempt: bool,
) -> TorchServe | None:
    """Wait until ``/ping`` answers; ``None`` means "ports were taken, try again"."""
    key_file = server.workdir / KEY_FILE
    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            if not last_attempt and _port_clash(server.log_dir):
                return None
            raise ServerError(
                f"TorchServe exited with code {code} while starting (workdir {server.workdir})"
                + _logs(server)
            )
        current: TorchServe | None = server
        if token_auth:
            try:
                current = _with_tokens(server, Tokens.from_key_file(key_file))
            except ServerError:
                current = None  # key file not written yet
        if current is not None:
            with contextlib.suppress(ServerError):
                current.ping(timeout=2.0)  # any HTTP answer means the frontend is up
                return current
        if time.monotonic() >= deadline:
            if not last_attempt and _port_clash(server.log_dir):
                return None
            _stop(process)
            raise ServerError(
                f"TorchServe did not answer /ping within {timeout:g} s "
                f"(workdir {server.workdir})" + _logs(server)
            )
        time.sleep(0.2)


def _with_tokens(server: TorchServe, tokens: Tokens) -> TorchServe:
    return dataclasses.replace(server, token=tokens)


def _logs(server: TorchServe) -> str:
    return (
        f"\n--- {LOG_FILE} (tail) ---\n{server.log_tail()}"
        f"\n--- {CONSOLE_FILE} (tail) ---\n{server.log_tail(CONSOLE_FILE, 15)}"
    )
