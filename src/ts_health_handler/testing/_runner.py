"""Start a real TorchServe for tests and demos, and always stop exactly what was started.

Standard library only. The server runs in its own process group, started through the
``torchserve`` command that sits next to the running interpreter (else on ``PATH``).

Every server gets free loopback ports, its own log directory (``LOG_LOCATION`` and
``METRICS_LOCATION``) and its own temporary directory (``TEMP``/``TMPDIR``: TorchServe keeps
its pid file, the workers' ``.ts.sock.<port>`` sockets and the unpacked models there), so two
servers on one machine never collide. On exit the exact process group that was started is
stopped (SIGTERM, then SIGKILL), also when the body raised, and then every process left that
inherited the server's own ``TMPDIR`` (torchrun starts each rank in a session of its own);
nothing is ever killed by name.

TorchServe 0.12.0 facts this module relies on (checked against the real server and its
``model-server.jar``):

- ``torchserve --start`` writes its pid file to ``tempfile.gettempdir()/.model_server.pid``
  and refuses to start while that file names a live server; ``TEMP`` also becomes the
  frontend's ``-Djava.io.tmpdir``, where the worker sockets live. Hence one temp dir per server.
- With token authorization on (the 0.12 default) the frontend writes ``key_file.json`` into its
  *working directory* (``user.dir``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final, Union

from .._errors import ServerError
from .._proc import PROC, read_stat
from ..record import ENV_STATE_DIR
from ._archive import find_executable
from ._torchserve import (
    CONSOLE_FILE,
    KEY_FILE,
    LOG_FILE,
    Tokens,
    TorchServe,
    WaitTimeout,
    tail,
    wait_for,
)

__all__ = ["serve"]

PathLike = Union[str, "os.PathLike[str]"]

#: How long a stopped server may take before its process group gets SIGKILL.
STOP_TIMEOUT_S: Final = 30.0
#: Attempts at starting when the picked ports were taken in the meantime.
PORT_ATTEMPTS: Final = 3


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
    if PROC.is_dir():
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            stat = read_stat(entry.name)
            if stat is not None and stat.pgrp == pgid and stat.state != "Z":
                return True
        return False
    try:  # pragma: no cover - not Linux: zombies count as alive here
        os.killpg(pgid, 0)
    except ProcessLookupError:  # pragma: no cover
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True  # pragma: no cover


def _stop(
    process: subprocess.Popen[bytes], temp_dir: Path | None = None, timeout: float = STOP_TIMEOUT_S
) -> None:
    """Stop the process group that ``process`` leads (SIGTERM, wait, then SIGKILL), then every
    process left that the server started outside it (:func:`_strays`).

    The group id is the pid of the process we started (``start_new_session=True``); while any
    member lives no other process can get that id, so only our own processes are signalled.
    """
    pgid = process.pid

    def signal_group(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)

    if process.poll() is None or _group_alive(pgid):
        signal_group(signal.SIGTERM)
    if not _ended(process, pgid, time.monotonic() + timeout):
        signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        # Members may already be reparented; give the kernel a moment to reap them.
        with contextlib.suppress(WaitTimeout):
            wait_for(lambda: not _group_alive(pgid), timeout=10, interval=0.1, what="SIGKILL")
    for pid in _strays(temp_dir) if temp_dir is not None else []:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _ended(process: subprocess.Popen[bytes], pgid: int, deadline: float) -> bool:
    """Whether the frontend and its whole group ended before ``deadline``."""
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)
        if process.poll() is not None and not _group_alive(pgid):
            return True
        time.sleep(0.1)
    return False


def _strays(temp_dir: Path) -> list[int]:
    """This user's live processes whose environment holds ``TMPDIR=<temp_dir>``: the server's
    descendants, found also after they left its process group.

    torchrun starts each rank in a session of its own, and the frontend stops a parallel
    model by killing torchrun alone (SIGKILL): a rank busy with a request that never ends
    is left behind, a child of init, holding its memory for ever.
    """
    if not PROC.is_dir():  # pragma: no cover - not Linux
        return []
    mark = b"TMPDIR=" + os.fsencode(temp_dir)
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        stat = read_stat(entry.name)
        if mark in environment.split(b"\0") and stat is not None and stat.state != "Z":
            found.append(int(entry.name))
    return found


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
        env: extra environment variables for the server and its workers. They always get
            ``TS_HEALTH_STATE_DIR`` (from here, else this process, else ``<workdir>/health-state``).
        workdir: where ``config.properties``, ``logs/`` and ``key_file.json`` go (the server's
            working directory). By default a fresh temporary directory, removed on a clean exit
            and kept (its path is in the error) when starting or the body failed.
        workers_per_model: ``default_workers_per_model`` (TorchServe's own default is one per
            CPU core); a model's ``minWorkers`` overrides it.

    Yields the running :class:`TorchServe`; on exit stops it and every process it started.

    Raises:
        ServerError: the server did not start (the message holds the tail of ``ts_log.log``).
    """
    launch = _prepare(model_store, workdir, env, token_auth, model_api, startup_timeout)
    process: subprocess.Popen[bytes] | None = None
    clean = False
    try:
        process, server = _start_on_free_ports(launch, models, config, workers_per_model)
        yield server
        clean = True
    finally:
        if process is not None:
            _stop(process, launch.temp_dir)
        shutil.rmtree(launch.temp_dir, ignore_errors=True)
        if workdir is None and clean:
            shutil.rmtree(launch.root, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class _Launch:
    """What every start attempt of one :func:`serve` shares."""

    torchserve: str
    store: Path
    root: Path
    temp_dir: Path
    state_dir: Path
    token_auth: bool
    model_api: bool
    startup_timeout: float
    env: Mapping[str, str]

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def config_file(self) -> Path:
        return self.root / "config.properties"


def _prepare(
    model_store: PathLike,
    workdir: PathLike | None,
    env: Mapping[str, str] | None,
    token_auth: bool,
    model_api: bool,
    startup_timeout: float,
) -> _Launch:
    """Check the store, torchserve and java, then make the server's directories."""
    store = Path(model_store).resolve()
    if not store.is_dir():
        raise ServerError(f"model store {store} is not a directory")
    torchserve = find_executable("torchserve")
    _find_java(env)
    root = Path(tempfile.mkdtemp(prefix="ts-serve-") if workdir is None else workdir).resolve()
    (root / "logs").mkdir(parents=True, exist_ok=True)
    # Records go with the workdir unless the caller chose a place: the workers' TMPDIR (and so
    # the library's default state dir) is the temp dir below, removed on exit.
    state_dir = Path(
        (env or {}).get(ENV_STATE_DIR) or os.environ.get(ENV_STATE_DIR) or root / "health-state"
    )
    # Unix socket paths are limited to ~107 bytes: keep the temp dir short and separate.
    temp_dir = Path(tempfile.mkdtemp(prefix="tsrv-"))
    return _Launch(
        torchserve,
        store,
        root,
        temp_dir,
        state_dir,
        token_auth,
        model_api,
        startup_timeout,
        env or {},
    )


def _start_on_free_ports(
    launch: _Launch,
    models: Mapping[str, str] | Sequence[str] | str | None,
    config: Mapping[str, str | int | float | bool] | None,
    workers_per_model: int,
) -> tuple[subprocess.Popen[bytes], TorchServe]:
    """Start on free ports, again (:data:`PORT_ATTEMPTS` in all) when they were taken before
    TorchServe bound them."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        settings = _settings(launch, models, config, workers_per_model)
        process, server = _start(launch, settings, last_attempt=attempt == PORT_ATTEMPTS)
        if server is not None:
            return process, server
        _stop(process, launch.temp_dir)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def _find_java(env: Mapping[str, str] | None) -> str:
    java_home = (env or {}).get("JAVA_HOME") or os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None or not os.access(java, os.X_OK):
        raise ServerError(
            "java not found (TorchServe's frontend needs Java 17): install it or set JAVA_HOME"
        )
    return java


def _settings(
    launch: _Launch,
    models: Mapping[str, str] | Sequence[str] | str | None,
    config: Mapping[str, str | int | float | bool] | None,
    workers_per_model: int,
) -> dict[str, str]:
    """``config.properties`` on free loopback ports; ``config`` overrides every entry."""
    inference, management, metrics, grpc_inference, grpc_management = _free_ports(5)
    settings: dict[str, str] = {
        "inference_address": f"http://127.0.0.1:{inference}",
        "management_address": f"http://127.0.0.1:{management}",
        "metrics_address": f"http://127.0.0.1:{metrics}",
        "grpc_inference_address": "127.0.0.1",
        "grpc_management_address": "127.0.0.1",
        "grpc_inference_port": str(grpc_inference),
        "grpc_management_port": str(grpc_management),
        "model_store": str(launch.store),
        "default_workers_per_model": str(workers_per_model),
        "disable_token_authorization": "false" if launch.token_auth else "true",
        "enable_model_api": "true" if launch.model_api else "false",
    }
    loaded = _models_setting(models)
    if loaded:
        settings["load_models"] = loaded
    for key, value in (config or {}).items():
        settings[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return settings


def _start(
    launch: _Launch, settings: Mapping[str, str], *, last_attempt: bool
) -> tuple[subprocess.Popen[bytes], TorchServe | None]:
    """One attempt: write the config, start the frontend in a session of its own, await
    ``/ping``; no server means "the ports were taken, try again"."""
    _write_properties(launch.config_file, settings)
    (launch.root / KEY_FILE).unlink(missing_ok=True)
    (launch.temp_dir / ".model_server.pid").unlink(missing_ok=True)
    with open(launch.log_dir / CONSOLE_FILE, "ab") as console:
        process = subprocess.Popen(
            _command(launch),
            cwd=launch.root,
            env=_environment(launch),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = TorchServe(
        inference_url=settings["inference_address"].rstrip("/"),
        management_url=settings["management_address"].rstrip("/"),
        metrics_url=settings["metrics_address"].rstrip("/"),
        log_dir=launch.log_dir,
        model_store=launch.store,
        pid=process.pid,
        workdir=launch.root,
        temp_dir=launch.temp_dir,
        config_file=launch.config_file,
        state_dir=launch.state_dir,
    )
    try:
        return process, _await_start(
            process,
            server,
            token_auth=launch.token_auth,
            timeout=launch.startup_timeout,
            last_attempt=last_attempt,
        )
    except BaseException:
        _stop(process, launch.temp_dir)
        raise


def _command(launch: _Launch) -> list[str]:
    command = [launch.torchserve, "--start", "--foreground", "--ncs"]
    command += ["--ts-config", str(launch.config_file), "--model-store", str(launch.store)]
    if not launch.token_auth:
        command.append("--disable-token-auth")
    if launch.model_api:
        command.append("--enable-model-api")
    return command


def _environment(launch: _Launch) -> dict[str, str]:
    """This process's environment, ``env``, and the server's own directories.

    Every process the server starts inherits ``TMPDIR``, the server's own temp dir: that is
    how :func:`_stop` finds those that left its process group (torchrun's ranks)."""
    environment = dict(os.environ)
    environment.update(launch.env)
    # The frontend starts `torchrun` for parallel models (parallelType) by name: it must find
    # the one of the interpreter's environment, activated or not.
    beside = str(Path(sys.executable).parent)
    path = environment.get("PATH", os.defpath)
    if beside not in path.split(os.pathsep):
        environment["PATH"] = os.pathsep.join((beside, path))
    temp = str(launch.temp_dir)
    environment.update(
        {
            "LOG_LOCATION": str(launch.log_dir),
            "METRICS_LOCATION": str(launch.log_dir),
            "TEMP": temp,
            "TMPDIR": temp,
            "TMP": temp,
            ENV_STATE_DIR: str(launch.state_dir),
            # The CLI prefers $TS_CONFIG_FILE over --ts-config: make both ours.
            "TS_CONFIG_FILE": str(launch.config_file),
        }
    )
    return environment


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
