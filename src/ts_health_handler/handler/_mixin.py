"""``HealthMixin``: recorded initialization, controlled failures and a JSON describe status.

Use it as the first base of a TorchServe handler::

    class MyHandler(HealthMixin, BaseHandler):
        def initialize(self, context): ...

TorchServe's worker takes the bound ``initialize`` and ``handle`` of the handler instance.
Every class that mixes us in gets its own ``initialize`` and ``handle`` wrapped when it is
defined (``__init_subclass__``), so the user's code is recorded without calling anything new,
and a describe request is answered even when the user overrides ``handle()``. Only the
outermost call of each does the bookkeeping; ``super()`` chains pass straight through.

An ``async def handle`` is wrapped by an ``async def`` (:func:`tracked_async`), and a
``handle`` the instance holds itself (``MicroBatching``) by :class:`_InstanceHandle`, after
``__init__`` and after ``initialize()``. The sync and the async wrapper are written out in
full, each flat: they are the hot path of every request, and they write the
:class:`~._requests.Requests` counters themselves (see ``benchmarks/handle_overhead.py``
before adding anything there). TorchServe's default service runs one call at a time in one
thread: the sync wrapper keeps the call's context in a plain attribute while it runs, which
also tells an inner ``super()`` call from a new request. Many async calls run at once in one
worker (``asyncCommunication``): each is an entry of ``Requests.calls``, keyed by its context,
since TorchServe gives every batch a copy of its own (``copy.deepcopy`` in
``ts/async_service.py``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

from .._errors import InferenceError
from ._tracker import Tracker

__all__ = ["HealthMixin"]

_F = TypeVar("_F", bound=Callable[..., Any])
_WRAPPED: Final = "__ts_health_wrapped__"


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
    wrapper = tracked_async(method) if inspect.iscoroutinefunction(method) else tracked(method)
    functools.update_wrapper(wrapper, method)
    setattr(wrapper, _WRAPPED, True)
    return wrapper  # type: ignore[return-value]


def tracked(fn: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    """``fn(handler, data, context)`` as a tracked ``handle()``: a describe answered by us,
    anything else counted, timed and its failure recorded (the module's docstring says how)."""

    def handle(self: HealthMixin, data: Any, context: Any) -> Any:
        try:
            tracker = self._ts_health
        except AttributeError:
            tracker = _tracker(self)
        requests = tracker.requests
        if requests.sync_context is not None or (requests.calls and id(context) in requests.calls):
            return fn(self, data, context)  # a super() call inside the user's handle()
        try:
            # In ts 0.12, Context.get_request_header(idx, key) is exactly this lookup
            # (ts/context.py: _request_processor[idx].get_request_property(key), which
            # returns _request_header.get(key)); reading it here saves two calls a request.
            describe = context._request_processor[0]._request_header.get("describe") == "True"
        except AttributeError:  # another context: ask through the public method
            describe = _is_describe(context)
        except (IndexError, KeyError, TypeError):
            describe = False
        if describe:
            return _describe(self, data, context)
        count = len(data) if isinstance(data, list) else 1
        requests.last_started = started = self.health_clock()
        requests.sync_context = context
        requests.total += count
        gated = requests.gated
        try:
            if gated:
                _pass_gate(self, tracker, context, count, started)
            result = fn(self, data, context)
            if gated and requests.spans is not None:
                requests.spans.returned(context)
        except Exception as exc:
            tracker.request_failed(exc, count, context)
            if isinstance(exc, InferenceError):
                raise to_prediction_exception(exc) from exc
            raise
        finally:
            requests.sync_context = None
        requests.ok += 1
        return result

    return handle


def tracked_async(fn: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    """:func:`tracked` for an awaitable ``fn``: a call whose context is already in flight is
    an inner ``super()`` call."""

    async def handle(self: HealthMixin, data: Any, context: Any) -> Any:
        try:
            tracker = self._ts_health
        except AttributeError:
            tracker = _tracker(self)
        requests = tracker.requests
        calls = requests.calls
        key = id(context)
        if key in calls or requests.sync_context is not None:
            return await fn(self, data, context)  # a super() call inside the user's handle()
        try:
            describe = context._request_processor[0]._request_header.get("describe") == "True"
        except AttributeError:  # another context: ask through the public method
            describe = _is_describe(context)
        except (IndexError, KeyError, TypeError):
            describe = False
        if describe:
            # Off the event loop: the user's check may take up to check_timeout_s, and
            # every request in flight in this worker would wait for it.
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, _describe, self, data, context)
        count = len(data) if isinstance(data, list) else 1
        requests.last_started = started = self.health_clock()
        calls[key] = (started, count, context)
        requests.total += count
        gated = requests.gated
        try:
            if gated:
                await _pass_gate_async(tracker, context, count, started)
            result = await fn(self, data, context)
            if gated and requests.spans is not None:
                requests.spans.returned(context)
        except BaseException as exc:
            # Also a task cancelled, or collected while it waited (GeneratorExit): TorchServe
            # 0.12 keeps no reference to it, and its request is never answered.
            tracker.request_failed(exc, count, context)
            if isinstance(exc, InferenceError):
                raise to_prediction_exception(exc) from exc
            raise
        finally:
            del calls[key]
        requests.ok += 1
        return result

    return handle


def _pass_gate(
    handler: HealthMixin, tracker: Tracker, context: Any, count: int, started: float
) -> None:
    """The gate of a sync ``handle()``: :meth:`Tracker.gate`, its delay slept, the injected
    failure raised."""
    delay = tracker.gate(context, count, started)
    if delay:
        handler.health_sleep(delay)
    tracker.inject()


async def _pass_gate_async(tracker: Tracker, context: Any, count: int, started: float) -> None:
    """The gate of an async ``handle()``: its delay awaited, never blocking the loop."""
    delay = tracker.gate(context, count, started)
    if delay:
        await asyncio.sleep(delay)
    tracker.inject()


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
    __slots__ = ("_call", "_handler", "_wrapped")

    def __init__(self, wrapped: Callable[[Any, Any], Any], handler: HealthMixin) -> None:
        def call(handler: Any, data: Any, context: Any) -> Any:
            return wrapped(data, context)

        track = tracked_async if _is_async(wrapped) else tracked
        object.__setattr__(self, "_wrapped", wrapped)
        object.__setattr__(self, "_handler", handler)
        object.__setattr__(self, "_call", track(call))

    def __call__(self, data: Any, context: Any) -> Any:
        return self._call(self._handler, data, context)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._wrapped, name, value)

    def __repr__(self) -> str:
        return f"<tracked {self._wrapped!r}>"


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
    handler.handle = _InstanceHandle(current, handler)  # type: ignore[method-assign]


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

    #: Wall clock in epoch seconds. Tests replace it: ``handler.health_clock = fake``. (The
    #: builtin itself, not a method around it: it is read on every request.)
    health_clock: Callable[[], float] = staticmethod(time.time)

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
