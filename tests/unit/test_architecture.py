"""The shape of the package, checked: which side may import which, and only through the
side's ``__init__``; one HTTP module; rooms and functions of a readable size (test files too);
torch and ts only where a worker or the test runner runs."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ts_health_handler"
TESTS = Path(__file__).resolve().parents[1]
#: A test file longer than this is split by concern (tests/unit mirrors the packages).
TEST_FILE_LINES = 800
#: A function longer than this (from ``def`` to its last line, decorators aside, its
#: docstring included) is split into named steps.
FUNCTION_LINES = 50
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
    assert "ts_health_handler.torchserve.TorchServeClient" in imports
    assert "ts_health_handler.torchserve._http.request" not in imports
    for path in sorted((SRC / "testing").rglob("*.py")):
        below = {m for m in _imports(path) if m.startswith("ts_health_handler.torchserve._http")}
        assert not below, f"{_rel(path)} imports {sorted(below)}: ask through the client"


def _private_of_another_side(path: Path, module: str) -> bool:
    """Whether ``module`` is a private module of a side ``path`` is not in."""
    parts = module.split(".")
    own = path.relative_to(SRC).parts
    side = own[0] if len(own) > 1 else None
    return (
        len(parts) > 2
        and parts[0] == "ts_health_handler"
        and parts[1] in SIDES
        and parts[1] != side
        and parts[2].startswith("_")
    )


def _lazy_homes(package: str) -> dict[str, str]:
    module = importlib.import_module(package)
    homes: dict[str, str] = getattr(module, "_HOMES", {})
    return homes


#: Public names whose home imports torch (TorchServe's BaseHandler).
NEEDS_TORCH = {"HealthHandler"}
LAZY = ["ts_health_handler", *(f"ts_health_handler.{s}" for s in SIDES)]


def test_a_side_is_imported_through_its_init() -> None:
    """Another side's private modules are its own: imports (``TYPE_CHECKING`` ones and those
    inside functions included) and lazy homes go through the side's ``__init__``."""
    reaching = []
    for path in MODULES:
        reaching += [
            f"{_rel(path)}: {m}" for m in _imports(path) if _private_of_another_side(path, m)
        ]
    for package in LAZY:
        path = SRC.joinpath(*package.split(".")[1:], "__init__.py")
        for home in _lazy_homes(package).values():
            target = importlib.util.resolve_name(home, package)
            if _private_of_another_side(path, target):
                reaching.append(f"{_rel(path)}: _HOMES {target}")
    assert reaching == []


def _type_checking_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imported in node.body:
                assert isinstance(imported, ast.ImportFrom), ast.unparse(imported)
                names.update(alias.asname or alias.name for alias in imported.names)
    return names


@pytest.mark.parametrize("package", [p for p in LAZY if _lazy_homes(p)])
def test_a_lazy_package_names_each_public_name_in_its_home(package: str) -> None:
    """``__all__``, the ``TYPE_CHECKING`` imports (what type checkers see) and ``_HOMES``
    (what runs) list the same names, and each name is found where ``_HOMES`` says."""
    module = importlib.import_module(package)
    homes = _lazy_homes(package)
    path = SRC.joinpath(*package.split(".")[1:], "__init__.py")
    eager = {name for name in module.__all__ if name in vars(module)} - set(homes)
    assert set(module.__all__) == set(homes) | eager
    assert _type_checking_names(path) == set(homes)
    for name, home in homes.items():
        if name in NEEDS_TORCH and importlib.util.find_spec("torch") is None:
            continue  # torch==2.13.0 exists for Python 3.11 only
        value = getattr(module, name)
        found = getattr(importlib.import_module(home, package), name)
        assert value is found, name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match=f"module {package!r} has no attribute 'nothing'"):
        module.nothing  # noqa: B018


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_no_function_is_longer_than_50_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = {
        f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > FUNCTION_LINES
    }
    assert long == set()
