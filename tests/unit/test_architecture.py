"""The shape of the package, checked: one HTTP module, rooms of a readable size, a light probe."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ts_health_handler"
MODULES = sorted(SRC.rglob("*.py"))


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


def test_exactly_one_module_speaks_http() -> None:
    speakers = [
        p.relative_to(SRC).as_posix()
        for p in MODULES
        if {"http.client", "urllib.request"} & _imports(p)
    ]
    assert speakers == ["_http.py"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(SRC).as_posix())
def test_no_module_is_longer_than_500_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 500, f"{path.relative_to(SRC)} has {lines} lines"


def test_probe_and_client_stay_on_the_standard_library_side() -> None:
    light = [p for p in MODULES if p.parent.name == "probe"] + [
        SRC / name for name in ("_client.py", "_answers.py", "_http.py", "_state.py")
    ]
    heavy = ("torch", "ts", "ts_health_handler._mixin", "ts_health_handler._handler")
    for path in light:
        bad = {m for m in _imports(path) if m.split(".")[0] in heavy[:2] or m.startswith(heavy[2:])}
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


def test_the_runner_asks_torchserve_through_the_shared_client() -> None:
    imports = _imports(SRC / "_server.py")
    assert "ts_health_handler._http.request" in imports
    assert "ts_health_handler._answers.ModelEntry" in imports
