"""The requests one worker serves: counters and the ``handle()`` calls running now.

The ``handle()`` wrappers (``_mixin``, ``_function``) write a :class:`Requests` on every call;
the heartbeat (``_serving``) and the status document read it. It is plain data, shared by
those three, so that none writes into another's object.

TorchServe 0.12 runs one ``handle()`` call at a time in the default mode, but many at once
with ``asyncCommunication`` (each batch an asyncio task, ``ts/async_service.py``); and with
``continuousBatching`` one request spans several calls, until the ``context.stopping_criteria``
the handler set for it says stop (``ts/protocol/otf_message_handler.py``). So the calls in
flight are kept one entry each (when each started, how many requests, their context), and
the requests that span calls are kept apart by TorchServe's request id (:class:`Spans`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Final, NamedTuple

__all__ = ["InFlight", "Requests", "Spans", "request_ids"]

#: Request ids a heartbeat names for the oldest call (a batch may hold many).
IDS_SHOWN: Final = 4


class InFlight(NamedTuple):
    """What runs now: requests in ``handle()`` calls, the oldest call's start and ids."""

    requests: int = 0
    oldest_started: float | None = None
    oldest_ids: tuple[str, ...] = ()


class Requests:
    """One worker's request counters and the calls in flight.

    The wrappers write the attributes directly: that is the hot path, where a method call
    per request would cost more than the rest of the wrapper
    (``benchmarks/handle_overhead.py``).
    """

    __slots__ = (
        "calls",
        "failed",
        "gated",
        "last_started",
        "ok",
        "spans",
        "sync_context",
        "total",
    )

    def __init__(self) -> None:
        #: Requests seen (one per batch item; a request spanning calls once) and those
        #: that failed.
        self.total = 0
        self.failed = 0
        #: ``handle()`` calls that returned: a failure streak ends at the next one.
        self.ok = 0
        self.last_started: float | None = None
        #: The context of the default (synchronous) service's call running now (its
        #: ``request_ids`` count its requests; it started at ``last_started``); ``None``
        #: between calls.
        self.sync_context: Any = None
        #: The async calls running now: id(context) -> (started, requests, context).
        self.calls: dict[int, tuple[float, int, Any]] = {}
        #: True when a call must go through the tracker's gate (a beat due, a held
        #: failure, inference faults, requests that span calls).
        self.gated = False
        #: Continuous batching: the requests that span calls; else ``None``.
        self.spans: Spans | None = None

    @property
    def busy(self) -> bool:
        """A call runs now."""
        return self.sync_context is not None or bool(self.calls)

    def in_flight(self) -> InFlight:
        """The calls running now (read by the watchdog thread beside the calls)."""
        running: list[tuple[float, int, Any]] = []
        for _ in range(3):
            try:
                running = list(self.calls.values())
            except RuntimeError:  # the dict changed while copied: look again
                continue
            break
        context, started = self.sync_context, self.last_started
        if context is not None and started is not None:
            ids = getattr(context, "request_ids", None)
            running.append((started, len(ids) if isinstance(ids, dict) else 1, context))
        if not running:
            return InFlight()
        started, _count, context = min(running, key=lambda call: call[0])
        return InFlight(sum(call[1] for call in running), started, request_ids(context))


def request_ids(context: Any) -> tuple[str, ...]:
    """TorchServe's ids of the requests of a call (``context.request_ids``), a few at most."""
    try:
        return tuple(_ids(context)[:IDS_SHOWN])
    except Exception:  # a context of another kind (ids that do not sort): none to show
        return ()


class Spans:
    """Continuous batching: each request counted once, at its first call, and ended when the
    stopping criterion its handler set says stop (or when its call fails).

    TorchServe calls ``context.stopping_criteria[idx](result)`` after ``handle()`` returns,
    once per request: ``None`` or a true value ends the request, ``False`` continues it
    (``create_predict_response`` in ``ts/protocol/otf_message_handler.py``). The criteria
    have side effects (a token budget), so they are never called here: each is wrapped so
    that TorchServe's own call tells this object the outcome.
    """

    __slots__ = ("open",)

    def __init__(self) -> None:
        #: Requests begun and not ended: request id -> when its first call started.
        self.open: dict[str, float] = {}

    def begin(self, context: Any, started: float) -> int:
        """A call starts: how many of its requests were counted at an earlier call."""
        seen = 0
        for request_id in _ids(context):
            if request_id in self.open:
                seen += 1
            else:
                self.open[request_id] = started
        return seen

    def returned(self, context: Any) -> None:
        """The call returned: wrap each request's criterion, end those that have none."""
        ids = _ids(context)
        criteria = getattr(context, "stopping_criteria", None)
        if (
            not isinstance(criteria, list)
            or len(criteria) != len(ids)
            or os.environ.get("LOCAL_RANK", "0") != "0"
        ):
            # No criterion: TorchServe ends every request after this call. A torchrun rank
            # other than 0 answers nothing, so its criteria are never called.
            self.end(ids)
            return
        for index, request_id in enumerate(ids):
            criterion = criteria[index]
            if isinstance(criterion, _Criterion):
                criterion = criterion.wrapped
            if callable(criterion):
                criteria[index] = _Criterion(criterion, request_id, self.open)
            else:
                self.open.pop(request_id, None)

    def end(self, ids: list[str]) -> None:
        """These requests are over (TorchServe ended them)."""
        for request_id in ids:
            self.open.pop(request_id, None)

    def end_call(self, context: Any) -> None:
        """A call failed: TorchServe fails, and so ends, every request in it."""
        self.end(_ids(context))

    def oldest(self) -> float | None:
        """When the oldest open request began."""
        try:
            return min(self.open.values(), default=None)
        except RuntimeError:  # changed while read: the next beat tells
            return None


def _ids(context: Any) -> list[str]:
    """``context.request_ids`` (batch index -> id) in batch order; none for another context."""
    ids = getattr(context, "request_ids", None)
    if not isinstance(ids, dict):
        return []
    return [str(ids[index]) for index in sorted(ids)]


class _Criterion:
    """A request's stopping criterion, which tells :class:`Spans` when it stops the request."""

    __slots__ = ("open", "request_id", "wrapped")

    def __init__(
        self, wrapped: Callable[[Any], Any], request_id: str, open_: dict[str, float]
    ) -> None:
        self.wrapped: Final = wrapped
        self.request_id: Final = request_id
        self.open: Final = open_

    def __call__(self, result: Any) -> Any:
        stop = self.wrapped(result)
        if stop is None or stop:
            self.open.pop(self.request_id, None)
        return stop

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)
