"""Fixtures for tests against a real TorchServe 0.12 (Java 17 + torchserve in this venv).

- ``shared_server``: one server for the whole session; scenarios register their own ``.mar``
  (different model names) into it. It is started lazily, by the first test that needs it.
- Tests marked ``own_server`` start a server of their own (``/ping`` is server-wide, token auth
  is a server setting). They are moved before every shared-server test, so that at most one
  TorchServe runs at a time on small machines.
- ``build_mar``: archive an example from ``examples/`` (optionally under another name and with
  changes to its ``model-config.yml``) into a model store.

When a test using a server fails, the tail of that server's ``ts_log.log`` and ``model_log.log``
is added to the report.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.example_archive import archive_example
from tests.support.modes import Models
from tests.support.serve_support import ServeProcess
from ts_health_handler.record import StateStore
from ts_health_handler.testing import TorchServe, serve

HERE = Path(__file__).resolve().parent

#: Extra config.properties entries for every test server: no system-metrics subprocess.
TEST_SERVER_CONFIG: Mapping[str, str] = {"disable_system_metrics": "true"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "own_server: the test starts a TorchServe of its own (runs first)"
    )


def _ours(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [i for i, item in enumerate(items) if _ours(item)]
    if shutil.which("java") is None:
        skip = pytest.mark.skip(
            reason="java not found: TorchServe's frontend needs Java 17 "
            "(scripts/setup.sh installs it)"
        )
        for index in mine:
            items[index].add_marker(skip)
    # Own-server tests first: the session-scoped shared server then never runs beside them.
    ordered = sorted(
        (items[i] for i in mine), key=lambda item: item.get_closest_marker("own_server") is None
    )
    for position, item in enumerate(ordered):
        items[mine[position]] = item


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _ours(item):
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, TorchServe):
                report.sections.append(("ts_log.log (tail)", _log_tail(value)))
                model_log = value.log_tail("model_log.log", 40)
                report.sections.append(("model_log.log (tail)", model_log))


def _log_tail(server: TorchServe, lines: int = 60) -> str:
    """The last ``lines`` of ``ts_log.log`` without torchrun's start-up banner (one
    ``key : value`` line per launcher setting), which would fill the tail by itself."""
    kept = [
        line
        for line in server.log_tail(lines=600).splitlines()
        if "torch/distributed/launcher/api.py" not in line
        and "torch/distributed/elastic/agent/server/api.py:553]   " not in line
    ]
    return "\n".join(kept[-lines:])


BuildMar = Callable[..., Path]


@pytest.fixture
def serve_own(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[TorchServe]]:
    """``serve_own(store, state_dir=..., **serve_kwargs)``: a server of the test's own.

    Mark the test ``own_server`` so that it runs before the shared server starts.
    """

    def start(
        store: Path, *, state_dir: Path, config: Mapping[str, str] | None = None, **kwargs: Any
    ) -> contextlib.AbstractContextManager[TorchServe]:
        return serve(
            store,
            config={**TEST_SERVER_CONFIG, **(config or {})},
            env={"TS_HEALTH_STATE_DIR": str(state_dir)},
            workdir=tmp_path / "server",
            **kwargs,
        )

    return start


@pytest.fixture(scope="session")
def build_mar(tmp_path_factory: pytest.TempPathFactory) -> BuildMar:
    """``build_mar(example, store, name=None, changes=None, base_config=None) -> .mar path``.

    ``changes`` are merged into the example's ``model-config.yml`` (or ``base_config``);
    a ``None`` value deletes a key.
    """

    def build(
        example: str,
        store: Path,
        *,
        name: str | None = None,
        changes: Mapping[str, Any] | None = None,
        version: str = "1.0",
        base_config: Path | None = None,
    ) -> Path:
        mar, _ = archive_example(
            example,
            store,
            name=name,
            changes=changes,
            version=version,
            base_config=base_config,
        )
        return mar

    return build


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared-store")


@pytest.fixture(scope="session")
def shared_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared-state")


@pytest.fixture(scope="session")
def shared_server(
    tmp_path_factory: pytest.TempPathFactory, shared_store: Path, shared_state_dir: Path
) -> Iterator[TorchServe]:
    """One TorchServe for every scenario that does not change server-wide behaviour."""
    with serve(
        shared_store,
        config=TEST_SERVER_CONFIG,
        env={"TS_HEALTH_STATE_DIR": str(shared_state_dir)},
        workdir=tmp_path_factory.mktemp("shared-server"),
        startup_timeout=120,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def registered(
    shared_server: TorchServe, shared_store: Path, build_mar: BuildMar
) -> Callable[..., str]:
    """``registered(example, name=None, changes=None, base_config=None) -> name``: READY.

    Registers each name once per session; later calls return at once.
    """
    done: dict[str, str] = {}

    def register(
        example: str,
        *,
        name: str | None = None,
        changes: Mapping[str, Any] | None = None,
        base_config: Path | None = None,
    ) -> str:
        model = name or example
        if model not in done:
            mar = build_mar(
                example, shared_store, name=model, changes=changes, base_config=base_config
            )
            shared_server.register(mar.name, initial_workers=1, synchronous=True)
            shared_server.wait_until_ready(model, timeout=120)
            done[model] = model
        return done[model]

    return register


def _read_record(state_dir: Path, name: str, version: str = "1.0") -> dict[str, Any] | None:
    """The newest record file of the version (the only one, with one server per state dir)."""
    files = StateStore(state_dir, name, version).files()
    if not files:
        return None
    try:
        return json.loads(files[0].read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


@pytest.fixture(scope="session")
def read_record() -> Callable[..., dict[str, Any] | None]:
    """``read_record(state_dir, name, version="1.0")``: the persisted record or ``None``."""
    return _read_record


@pytest.fixture
def serve_process() -> Iterator[Callable[..., ServeProcess]]:
    """``serve_process(args, env)``: ``ts-health serve`` as a subprocess, stopped after."""
    started: list[ServeProcess] = []

    def start(args: list[str], env: dict[str, str]) -> ServeProcess:
        started.append(ServeProcess(args, env))
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def models(
    shared_server: TorchServe, shared_store: Path, shared_state_dir: Path
) -> Iterator[Models]:
    """The serving-mode models of one test module (``tests/support/modes.py``), registered
    on the shared server and unregistered after the module."""
    with Models(shared_server, shared_store, shared_state_dir) as registered:
        yield registered


@pytest.fixture
def scratch(
    shared_server: TorchServe, shared_store: Path, shared_state_dir: Path
) -> Iterator[Models]:
    """Serving-mode models for one test (a hung, failing or dying one), unregistered after it."""
    with Models(shared_server, shared_store, shared_state_dir) as registered:
        yield registered
