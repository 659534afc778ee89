"""Fixtures for the reliability tests: a real TorchServe 0.12 per test module.

- ``rel_server``: one server per test module, started by the module's first test that needs
  it and stopped after its last (so that none is left running when ``tests/integration``
  starts its own), through the runner (``ts_health_handler.testing._torchserve.serve``), which stops
  its exact process group. Token authorization is **on** (TorchServe's default) and the server's
  environment carries secret markers (:data:`SECRET_ENV`), so that every test also checks
  that nothing secret leaks. The state directory is ``rel_state_dir``.
- ``rel_model``: ``rel_model(example, name, changes)`` archives an example from ``examples/``
  under ``name`` with ``changes`` merged into its ``model-config.yml``, registers it and waits
  until its ``minWorkers`` workers are READY.
- ``probe``: runs the real ``ts-health`` CLI against ``rel_server`` (key file, URLs, state
  directory filled in), bounded in time; returns exit code, stdout, stderr and wall time.
- ``load``: ``benchmarks/_load.py``, the load generator shared with the benchmarks.

These tests run before ``tests/integration`` (whose shared server lives until the end of the
session): on a small machine only one TorchServe runs at a time.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.reliability.reliability_support import (
    SECRET_ENV,
    SERVER_CONFIG,
    ProbeRun,
    load_generator,
    run_probe,
)
from tests.support.example_archive import archive_example
from ts_health_handler.testing import TorchServe, serve

HERE = Path(__file__).resolve().parent


def _ours(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


def _needs_server(item: pytest.Item) -> bool:
    return item.get_closest_marker("integration") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if _ours(item)]
    if not mine:
        return
    if shutil.which("java") is None:
        skip = pytest.mark.skip(
            reason="java not found: TorchServe's frontend needs Java 17 "
            "(scripts/setup.sh installs it)"
        )
        for item in mine:
            if _needs_server(item):
                item.add_marker(skip)
    # Ours go right before the first integration test (tests/integration keeps its own order
    # among its own positions), so that its session-wide shared server is not yet running.
    others = [item for item in items if not _ours(item)]
    first = next(
        (i for i, item in enumerate(others) if "integration" in Path(str(item.path)).parts),
        len(others),
    )
    items[:] = others[:first] + mine + others[first:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _ours(item):
        server = getattr(item, "funcargs", {}).get("rel_server")
        if isinstance(server, TorchServe):
            report.sections.append(("ts_log.log (tail)", server.log_tail(lines=60)))
            report.sections.append(("model_log.log (tail)", server.log_tail("model_log.log", 40)))


@pytest.fixture(scope="session")
def rel_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rel-store")


@pytest.fixture(scope="session")
def rel_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rel-state")


@pytest.fixture(scope="module")
def rel_server(
    tmp_path_factory: pytest.TempPathFactory, rel_store: Path, rel_state_dir: Path
) -> Iterator[TorchServe]:
    with serve(
        rel_store,
        config=SERVER_CONFIG,
        env={"TS_HEALTH_STATE_DIR": str(rel_state_dir), **SECRET_ENV},
        workdir=tmp_path_factory.mktemp("rel-server"),
        token_auth=True,
        startup_timeout=120,
    ) as server:
        assert server.token is not None, "token authorization must be on"
        yield server


@pytest.fixture(scope="module")
def rel_model(
    rel_server: TorchServe, rel_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., str]:
    """``rel_model(example, name, changes=None) -> name``, registered with READY workers."""

    def register(example: str, name: str, changes: Mapping[str, Any] | None = None) -> str:
        _, config = archive_example(example, rel_store, name=name, changes=changes)
        workers = int(config.get("minWorkers", 1))
        rel_server.register(f"{name}.mar", initial_workers=workers, synchronous=True)
        rel_server.wait_until_ready(name, workers=workers, timeout=120)
        return name

    return register


@pytest.fixture
def probe(rel_server: TorchServe, rel_state_dir: Path) -> Callable[..., ProbeRun]:
    """``probe("status", "MODEL", "--json")``: ts-health against ``rel_server``."""

    def call(*args: str, key_file: bool = True, env: Mapping[str, str] | None = None) -> ProbeRun:
        connection = [
            "--inference-url",
            rel_server.inference_url,
            "--management-url",
            rel_server.management_url,
            "--state-dir",
            str(rel_state_dir),
        ]
        if key_file:
            connection += ["--key-file", str(rel_server.workdir / "key_file.json")]
        return run_probe([*args, *connection], env=env)

    return call


@pytest.fixture(scope="session")
def load() -> ModuleType:
    """``benchmarks/_load.py``: ``load.run_load(url, requests=..., concurrency=...)``."""
    return load_generator
