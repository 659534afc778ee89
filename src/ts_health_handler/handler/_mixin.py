"""``HealthMixin``: recorded initialization, controlled failures and a JSON describe status.

Use it as the first base of a TorchServe handler::

    class MyHandler(HealthMixin, BaseHandler):
        def initialize(self, context): ...

TorchServe's worker takes the bound ``initialize`` and ``handle`` of the handler instance.
Every class that mixes us in gets its own ``initialize`` and ``handle`` wrapped when it is
defined (``__init_subclass__``), so the user's code is recorded without calling anything new,
and a describe request is answered even when the user overrides ``handle()``. Only the
outermost call of each does the bookkeeping; ``super()`` chains pass straight through.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

from .._errors import InferenceError
from ._requests import call_keys
from ._tracker import Tracker

__all__ = ["HealthMixin"]

_F = TypeVar("_F", bound=Callable[..., Any])
_WRAPPED: Final = "__ts_health_wrapped__"
#: The tracker whose ``handle()`` runs in this thread or asyncio task: an inner ``super()``
#: call of the same handler passes straight through (async calls interleave in one thread,
#: so a flag on the tracker could not tell them apart).
_HANDLING: Final[contextvars.ContextVar[Tracker | None]] = contextvars.ContextVar(
    "ts_health_handling", default=None
)


def _tracker(handler: HealthMixin) -> Tracker:
    """The handler's tracker, made on first use.

    The clock and sleep it gets look up ``health_clock``/``health_sleep`` on every call, so
    that a fake installed on the instance (``handler.health_clock = fake``) is always seen.
    """
    # Never through handler.__dict__: touching it makes CPython 3.11 drop the compact
    # attribute layout, which slows every attribute access of the handler's own code.
    try:
        return handler._ts_health
    except AttributeError:
        pass
    tracker = Tracker(
        clock=lambda: handler.health_clock(),
        sleep=lambda seconds: handler.health_sleep(seconds),
    )
    handler._ts_health = tracker
    return tracker


def _wrap_initialize(method: _F) -> _F:
    @functools.wraps(method)
    def initialize(self: HealthMixin, context: Any, *args: Any, **kwargs: Any) -> Any:
        tracker = _tracker(self)
        if tracker.in_initialize:  # a super() call inside the user's initialize()
            return method(self, context, *args, **kwargs)
        result = tracker.initialize(
            context, functools.partial(method, self, context, *args, **kwargs)
        )
        adopt_instance_handle(self)
        return result

    setattr(initialize, _WRAPPED, True)
    return initialize  # type: ignore[return-value]


def _wrap_handle(method: _F) -> _F:
    """The class's ``handle()``, tracked; an ``async def handle`` stays a coroutine function
    (TorchServe's async service awaits the entry point, ``ts/async_service.py``)."""
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def handle_async(self: HealthMixin, data: Any, context: Any) -> Any:
            return await serve_async(self, method.__get__(self), data, context)

        setattr(handle_async, _WRAPPED, True)
        return handle_async  # type: ignore[return-value]

    @functools.wraps(method)
    def handle(self: HealthMixin, data: Any, context: Any) -> Any:
        return serve(self, method.__get__(self), data, context)

    setattr(handle, _WRAPPED, True)
    return handle  # type: ignore[return-value]


def serve(handler: HealthMixin, call: Callable[[Any, Any], Any], data: Any, context: Any) -> Any:
    """One ``handle()`` call, tracked: a describe answered, else ``call(data, context)``.

    This runs on every request: kept flat, it writes the :class:`Requests` counters itself
    (see ``benchmarks/handle_overhead.py`` before adding anything here).
    """
    try:
        tracker = handler._ts_health
    except AttributeError:
        tracker = _tracker(handler)
    if _HANDLING.get() is tracker:  # a super() call inside the user's handle()
        return call(data, context)
    if _is_describe(context):
        return _describe(handler, data, context)
    requests = tracker.requests
    count = len(data) if isinstance(data, list) else 1
    started = handler.health_clock()
    key = next(call_keys)
    calls = requests.calls
    calls[key] = (started, count, context)
    requests.total += count
    requests.last_started = started
    entered = _HANDLING.set(tracker)
    try:
        if requests.gated:
            delay = tracker.gate(context, count, started)
            if delay:
                handler.health_sleep(delay)
            tracker.inject()
        result = call(data, context)
        if requests.spans is not None:
            requests.spans.returned(context)
    except InferenceError as exc:
        tracker.request_failed(exc, count, context)
        raise to_prediction_exception(exc) from exc
    except Exception as exc:
        tracker.request_failed(exc, count, context)
        raise
    finally:
        del calls[key]
        _HANDLING.reset(entered)
    requests.ok += 1
    return result


async def serve_async(
    handler: HealthMixin, call: Callable[[Any, Any], Any], data: Any, context: Any
) -> Any:
    """:func:`serve` for an ``async def handle``: many such calls run at once in one worker
    (``asyncCommunication``), each an asyncio task with its own context variables."""
    try:
        tracker = handler._ts_health
    except AttributeError:
        tracker = _tracker(handler)
    if _HANDLING.get() is tracker:
        return await call(data, context)
    if _is_describe(context):
        # Off the event loop: the user's check may take up to check_timeout_s, and every
        # request in flight in this worker would wait for it.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, _describe, handler, data, context)
    requests = tracker.requests
    count = len(data) if isinstance(data, list) else 1
    started = handler.health_clock()
    key = next(call_keys)
    calls = requests.calls
    calls[key] = (started, count, context)
    requests.total += count
    requests.last_started = started
    entered = _HANDLING.set(tracker)
    try:
        if requests.gated:
            delay = tracker.gate(context, count, started)
            if delay:
                await asyncio.sleep(delay)
            tracker.inject()
        result = await call(data, context)
        if requests.spans is not None:
            requests.spans.returned(context)
    except InferenceError as exc:
        tracker.request_failed(exc, count, context)
        raise to_prediction_exception(exc) from exc
    except Exception as exc:
        tracker.request_failed(exc, count, context)
        raise
    finally:
        del calls[key]
        _HANDLING.reset(entered)
    requests.ok += 1
    return result


def _is_describe(context: Any) -> bool:
    """A customized describe request (TorchServe sets the ``describe`` header)."""
    try:
        # In ts 0.12, Context.get_request_header(idx, key) is exactly this lookup
        # (ts/context.py: _request_processor[idx].get_request_property(key), which
        # returns _request_header.get(key)); reading it here saves two calls a request.
        return bool(context._request_processor[0]._request_header.get("describe") == "True")
    except AttributeError:  # another context: ask through the public method
        pass
    except (IndexError, KeyError, TypeError):
        return False
    try:
        return bool(context.get_request_header(0, "describe") == "True")
    except (AttributeError, IndexError, KeyError, TypeError):
        return False


def _describe(handler: HealthMixin, data: Any, context: Any) -> list[Any]:
    _tracker(handler).described()
    handler.context = context
    document = handler.describe_handle()
    return [document] * max(1, len(data) if isinstance(data, list) else 1)


class _InstanceHandle:
    """A ``handle`` set on the instance (``self.handle = MicroBatching(self)`` in
    ``__init__``, as TorchServe's micro-batching example does), tracked like the class's.

    Attribute reads and writes go to the wrapped object, so ``self.handle.parallelism = 2``
    still reaches ``MicroBatching``.
    """

    __ts_health_wrapped__ = True
    __slots__ = ("_handler", "_wrapped")

    def __init__(self, wrapped: Callable[[Any, Any], Any], handler: HealthMixin) -> None:
        object.__setattr__(self, "_wrapped", wrapped)
        object.__setattr__(self, "_handler", handler)

    def __call__(self, data: Any, context: Any) -> Any:
        return serve(self._handler, self._wrapped, data, context)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._wrapped, name, value)

    def __repr__(self) -> str:
        return f"<tracked {self._wrapped!r}>"


class _AsyncInstanceHandle(_InstanceHandle):
    """:class:`_InstanceHandle` of an awaitable ``handle``."""

    __slots__ = ()

    async def __call__(self, data: Any, context: Any) -> Any:
        return await serve_async(self._handler, self._wrapped, data, context)


def _is_async(call: Any) -> bool:
    """``call`` is a coroutine function, or an object whose ``__call__`` is one."""
    dunder = next(
        (k.__dict__["__call__"] for k in type(call).__mro__ if "__call__" in k.__dict__), None
    )
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(dunder)


def adopt_instance_handle(handler: HealthMixin) -> None:
    """Track a ``handle`` the instance holds itself (set in ``__init__`` or ``initialize``).

    TorchServe takes ``instance.handle`` once, right after ``__init__`` and before
    ``initialize()`` (``ts/model_loader.py``): a ``handle`` set in ``initialize()`` is
    never what TorchServe calls, but tests that call ``handler.handle`` see it tracked too.
    """
    try:
        current = handler.handle
    except AttributeError:
        return
    if getattr(current, _WRAPPED, False) or not callable(current):
        return
    kind = _AsyncInstanceHandle if _is_async(current) else _InstanceHandle
    handler.handle = kind(current, handler)  # type: ignore[method-assign]


def _wrap_init(method: _F) -> _F:
    @functools.wraps(method)
    def __init__(self: HealthMixin, *args: Any, **kwargs: Any) -> None:
        method(self, *args, **kwargs)
        adopt_instance_handle(self)

    setattr(__init__, _WRAPPED, True)
    return __init__  # type: ignore[return-value]


_WRAPPERS: Final = {"initialize": _wrap_initialize, "handle": _wrap_handle}


def to_prediction_exception(error: InferenceError) -> Exception:
    """Convert ``error`` into TorchServe's ``PredictionException`` (the one mapping)."""
    from ts.utils.util import PredictionException

    converted: Exception = PredictionException(error.message, error.status_code)
    converted.__cause__ = error
    return converted


class HealthMixin:
    """Adds honest health to a TorchServe handler. Put it first among the bases.

    Override :meth:`health_check` to add a runtime check of your own. Read
    :meth:`health_status` (or ``describe_handle()``) for the status document.
    """

    #: This handler's bookkeeping, made on first use: the one attribute we add.
    _ts_health: Tracker
    #: TorchServe's context; set on describe, as ``BaseHandler.handle()`` does.
    context: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adopt_instance_handle(self)

    def health_clock(self) -> float:
        """Wall clock in epoch seconds. Tests replace it: ``handler.health_clock = fake``."""
        return time.time()

    def health_sleep(self, seconds: float) -> None:
        """Sleep used by the delay faults. Tests replace it like :meth:`health_clock`."""
        time.sleep(seconds)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, wrap in _WRAPPERS.items():
            method = cls.__dict__.get(name)
            if method is None and getattr(cls, name, None) is _MIXIN_METHODS.get(name):
                # Wrap the next implementation after the mixin directly: one call layer
                # (our pass-through super() call) less on every request.
                method = _next_after_mixin(cls, name)
            if callable(method) and not getattr(method, _WRAPPED, False):
                setattr(cls, name, wrap(method))
        init = cls.__dict__.get("__init__")
        if callable(init) and not getattr(init, _WRAPPED, False):
            cls.__init__ = _wrap_init(init)  # type: ignore[method-assign]
        for klass in cls.__mro__:
            if klass is HealthMixin:
                break
            if not issubclass(klass, HealthMixin) and any(n in vars(klass) for n in _WRAPPERS):
                raise TypeError(
                    f"{cls.__qualname__}: HealthMixin must come before {klass.__qualname__} "
                    f"in the bases, e.g. class {cls.__name__}(HealthMixin, "
                    f"{klass.__name__}); otherwise {klass.__name__}.initialize/handle "
                    "would bypass it"
                )

    # -- hooks users may override -------------------------------------------------------

    def health_check(self) -> Any:
        """Your own runtime check, run on every describe within ``health.check_timeout_s``.

        Return ``True``, ``False`` or a dict (``{"healthy": False, ...}`` fails); raising
        fails too. The default reports ``not_configured``.
        """
        return None

    # -- TorchServe entry points ----------------------------------------------------------

    @_wrap_initialize
    def initialize(self, context: Any) -> Any:
        parent = super()
        if hasattr(parent, "initialize"):
            return parent.initialize(context)
        return None

    @_wrap_handle
    def handle(self, data: Any, context: Any) -> Any:
        try:
            parent_handle = super().handle  # type: ignore[misc]
        except AttributeError:
            raise NotImplementedError(
                f"{type(self).__qualname__} has no handle(): subclass BaseHandler or define one"
            ) from None
        return parent_handle(data, context)

    def describe_handle(self) -> dict[str, Any]:
        """The status document (a dict: TorchServe 0.12 drops anything but a JSON object)."""
        return self.health_status()

    # -- the status document ------------------------------------------------------------

    def health_status(self) -> dict[str, Any]:
        """Build the status document; see ``docs/status.md`` for every field."""
        overridden = type(self).health_check is not HealthMixin.health_check
        document = _tracker(self).status(self.health_check if overridden else None, _device(self))
        # Typed inside (``_document.StatusDoc``); a plain dict to users, whose overrides of
        # describe_handle() may add fields of their own.
        return cast("dict[str, Any]", document)


def _next_after_mixin(cls: type, name: str) -> Any:
    mro = cls.__mro__
    for klass in mro[mro.index(HealthMixin) + 1 :]:
        if name in vars(klass):
            return vars(klass)[name]
    return None


_MIXIN_METHODS: Final = {"initialize": HealthMixin.initialize, "handle": HealthMixin.handle}


def _device(handler: HealthMixin) -> str | None:
    device = getattr(handler, "device", None)
    if device is not None:
        return str(device)
    context = getattr(handler, "context", None)
    properties = getattr(context, "system_properties", None)
    if isinstance(properties, dict):
        gpu = properties.get("gpu_id")
        return "cpu" if gpu is None else f"gpu:{gpu}"
    return None
