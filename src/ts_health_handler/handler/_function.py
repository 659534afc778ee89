"""``with_health``: the record, the status document and the truth after READY for a
module-level function handler (``handler: my_handler.py:handle`` in TorchServe terms).

TorchServe 0.12 calls such a function once with ``data=None`` to initialize it, then with
each batch (``ts/model_loader.py``, ``_get_function_entry_point``). The decorated function
is served through a :class:`~._mixin.HealthMixin` of its own, so it gets exactly what a
class handler gets.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ._mixin import HealthMixin

__all__ = ["with_health"]

_Handle = TypeVar("_Handle", bound=Callable[[Any, Any], Any])


def with_health(
    handle: _Handle | None = None, *, health_check: Callable[[], Any] | None = None
) -> Any:
    """Decorate a function handler ``handle(data, context)``; use bare or with arguments::

        @with_health
        def handle(data, context): ...

        @with_health(health_check=lambda: {"weights_loaded": True})
        def handle(data, context): ...

    The decorated function keeps its name; its :class:`HealthMixin` is its ``health``
    attribute (``handle.health.health_status()`` in a unit test).

    Raises:
        TypeError: ``handle`` is not callable, or is an ``async def``: TorchServe 0.12 calls
            a function handler with ``data=None`` to initialize it without awaiting it, so
            an async one could never initialize (serve it as a class with an
            ``async def handle`` and ``asyncCommunication: true``).
    """
    if handle is None:
        return functools.partial(with_health, health_check=health_check)
    if not callable(handle):
        raise TypeError(f"with_health: {handle!r} is not callable; expected handle(data, context)")
    if inspect.iscoroutinefunction(handle):
        raise TypeError(
            f"with_health: {handle.__qualname__} is an async def; TorchServe 0.12 calls a "
            "function handler with data=None to initialize it without awaiting it: use a "
            "class handler with async def handle and asyncCommunication: true"
        )
    health = _function_handler(handle, health_check)

    @functools.wraps(handle)
    def entry_point(data: Any, context: Any) -> Any:
        if data is None:  # TorchServe's initialize call
            return health.initialize(context)
        return health.handle(data, context)

    entry_point.health = health  # type: ignore[attr-defined]
    return entry_point


def _function_handler(
    function: Callable[[Any, Any], Any], check: Callable[[], Any] | None
) -> HealthMixin:
    class FunctionHandler(HealthMixin):
        __qualname__ = f"with_health({getattr(function, '__qualname__', 'handle')})"

        def initialize(self, context: Any) -> Any:
            return function(None, context)

        def handle(self, data: Any, context: Any) -> Any:
            return function(data, context)

        if check is not None:

            def health_check(self) -> Any:
                return check()

    return FunctionHandler()
