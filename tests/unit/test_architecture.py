"""The shape of the package, checked: which side may import which, one HTTP module, rooms of a
readable size (test files too), torch and ts only where a worker or the test runner runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ts_health_handler"
TESTS = Path(__file__).resolve().parents[1]
#: A test file longer than this is split by concern (tests/unit mirrors the packages).
TEST_FILE_LINES = 800
MODULES = sorted(SRC.rglob("*.py"))
#: The packages, each a side; the root's own modules are the common ground below them all.
SIDES = ("handler", "record", "torchserve", "monitor", "probe", "serve", "cli", "testing")
#: Who may import whom (besides the common modules): the handler side and the command side
#: meet only in ``record`` (written by the worker, read by the monitor).
ALLOWED = {
    "handler": {"record"},
    "record": set(),
    "torchserve": set(),
    "monitor": {"record", "torchserve"},
    "probe": {"monitor", "record", "torchserve"},
    "serve": {"monitor", "record", "torchserve"},
    "cli": {"monitor", "probe", "serve", "record", "torchserve"},
    "testing": {"handler", "record", "torchserve"},
}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(("ts_health_handler", *path.relative_to(SRC).parent.parts))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _side(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "ts_health_handler" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in SIDES else None


def _rel(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def test_every_module_belongs_to_a_side_or_the_common_ground() -> None:
    for path in MODULES:
        top = path.relative_to(SRC).parts[0]
        assert top in SIDES or top.endswith(".py"), _rel(path)


@pytest.mark.parametrize("side", SIDES)
def test_a_side_imports_only_the_sides_below_it(side: str) -> None:
    for path in sorted((SRC / side).rglob("*.py")):
        used = {_side(m) for m in _imports(path)} - {None, side}
        assert used <= ALLOWED[side], f"{_rel(path)} imports {sorted(used - ALLOWED[side])}"


def test_the_common_modules_import_no_side() -> None:
    for path in SRC.glob("*.py"):
        if path.name in ("__init__.py", "__main__.py"):
            continue  # the public names (re-exported lazily) and `python -m`
        used = {_side(m) for m in _imports(path)} - {None}
        assert not used, f"{_rel(path)} imports {sorted(used)}"  # type: ignore[type-var]


def test_probe_and_serve_never_import_each_other() -> None:
    for one, other in (("probe", "serve"), ("serve", "probe")):
        for path in (SRC / one).rglob("*.py"):
            assert not any(_side(m) == other for m in _imports(path)), _rel(path)


def test_exactly_one_module_speaks_http() -> None:
    # The client is ``_http.py``'s own (http.client would import email and ssl): no module
    # uses a library's HTTP client, and only ``_http.py`` opens connections.
    libraries = [_rel(p) for p in MODULES if {"http.client", "urllib.request"} & _imports(p)]
    assert libraries == []
    connecting = [_rel(p) for p in MODULES if "create_connection(" in p.read_text("utf-8")]
    assert connecting == ["torchserve/_http.py"]


def test_torch_and_ts_only_where_a_worker_or_the_test_runner_runs() -> None:
    for path in MODULES:
        heavy = {m for m in _imports(path) if m.split(".")[0] in ("torch", "ts")}
        if heavy:
            assert path.relative_to(SRC).parts[0] in ("handler", "testing"), (
                f"{_rel(path)} imports {sorted(heavy)}"
            )


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_no_module_is_longer_than_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 500, f"{_rel(path)} has {lines} lines"


def test_no_test_file_is_longer_than_800_lines() -> None:
    lengths = {
        path.relative_to(TESTS).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in TESTS.rglob("*.py")
    }
    assert len(lengths) > 50  # the walk found the test trees
    assert {name: n for name, n in lengths.items() if n > TEST_FILE_LINES} == {}


def test_the_runner_asks_torchserve_through_the_shared_client() -> None:
    imports = _imports(SRC / "testing" / "_torchserve.py")
    assert "ts_health_handler.torchserve._client.TorchServeClient" in imports
    assert "ts_health_handler.torchserve._http.request" not in imports
    for path in sorted((SRC / "testing").rglob("*.py")):
        below = {m for m in _imports(path) if m.startswith("ts_health_handler.torchserve._http")}
        assert not below, f"{_rel(path)} imports {sorted(below)}: ask through the client"
