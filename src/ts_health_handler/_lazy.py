"""Public names of a package, each imported from its home module on first access.

Standard library only; imports no package. A package whose modules are costly or imported
where others must not be (torch in ``handler/``, sockets in ``torchserve/``) lists its
public names and their homes, and :func:`exports` gives it the module ``__getattr__`` and
``__dir__`` (PEP 562)::

    __getattr__, __dir__ = exports(__name__, {"Name": "._home"})

Importing the package then costs one small module; ``package.Name`` imports ``._home``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` (its ``__name__``): each name of
    ``homes`` is imported from its home module (relative to ``package``) when first asked
    for, then kept in the package's namespace so that later lookups skip this."""
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
