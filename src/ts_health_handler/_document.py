"""The status document's shape: one ``TypedDict`` per object, and the one check of a document
read back.

Standard library only: the handler side builds the document (``handler._describe``) and the
monitor reads it back from TorchServe's ``customizedMetadata`` (``torchserve._answers``), an
untrusted JSON value that :func:`parse_status` checks against these types before anything
reads it. They mirror ``schema/status.v1.json`` field for field (a unit test keeps both in
step); ``docs/status.md`` says what each field means.

TorchServe 0.12 drops null-valued fields from ``customizedMetadata``, so every field that may
be null is optional here, as in the schema: a reader gets ``None`` from ``.get()`` whether
the field was null or dropped. Fields unknown to this version are allowed and ignored (a
newer handler may add fields within a ``schema_version``).

No ``from __future__ import annotations`` and no ``X | Y`` here: :func:`parse_status` reads
these annotations at run time, on Python 3.9 too.
"""

import functools
from typing import (
    Any,
    Literal,
    Optional,
    TypedDict,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)

from ._text import clip

__all__ = [
    "CheckDoc",
    "CheckWord",
    "ConditionDoc",
    "ErrorDoc",
    "GpuDoc",
    "HeartbeatDoc",
    "HistoryDoc",
    "InitializationDoc",
    "ModeWord",
    "ModelDoc",
    "PhaseWord",
    "PolicyWord",
    "RequestsDoc",
    "StateStoreDoc",
    "StatusDoc",
    "StatusWord",
    "WorkerDoc",
    "parse_status",
]

#: ``status``: the values of :class:`~._lifecycle.HealthStatus`.
StatusWord = Literal["ready", "degraded", "failed"]
#: ``initialization.phase``: the values of :class:`~._lifecycle.InitPhase`.
PhaseWord = Literal["initializing", "ready", "failed"]
#: ``initialization.policy``: the values of ``handler._config.InitFailurePolicy``.
PolicyWord = Literal["raise", "hold"]
#: ``check.status``: the values of :class:`~._lifecycle.CheckStatus`.
CheckWord = Literal["ok", "failed", "error", "timeout", "not_configured"]
#: ``worker.mode``: the values of :class:`~._lifecycle.ServingMode`.
ModeWord = Literal["default", "async", "continuous", "sequence", "sequence_continuous"]
ConditionType = Literal["Initialized", "HealthCheckPassed", "Ready"]
ConditionStatus = Literal["True", "False", "Unknown"]

# Each object is a TypedDict of its required keys and a ``total=False`` subclass adding the
# optional ones (``NotRequired`` is Python 3.11's).


class _ErrorRequired(TypedDict):
    type: str
    message: str
    at: str
    attempt: int


class ErrorDoc(_ErrorRequired, total=False):
    """A failed ``initialize()``: ``initialization.error`` and each of ``recent_errors``."""

    traceback: Optional[str]


class _ConditionRequired(TypedDict):
    type: ConditionType
    status: ConditionStatus
    reason: str


class ConditionDoc(_ConditionRequired, total=False):
    """One Kubernetes-style condition."""

    message: str
    lastTransitionTime: Optional[str]


class ModelDoc(TypedDict):
    name: str
    version: str


class _WorkerRequired(TypedDict):
    pid: int


class _GpuRequired(TypedDict):
    device: str


class GpuDoc(_GpuRequired, total=False):
    """``worker.gpu``: the CUDA device's memory in bytes; absent on a CPU."""

    memory_allocated: int
    memory_reserved: int
    max_memory_allocated: int
    #: Why the figures could not be read (a broken context).
    memory_error: str


class WorkerDoc(_WorkerRequired, total=False):
    started_at: Optional[str]
    uptime_s: Optional[float]
    device: Optional[str]
    gpu: GpuDoc
    #: How TorchServe serves the model.
    mode: ModeWord


class _HistoryRequired(TypedDict):
    attempts: int
    failures: int
    consecutive_failures: int
    recent_errors: list[ErrorDoc]


class HistoryDoc(_HistoryRequired, total=False):
    """``initialization.history``: the persisted record's counters."""

    attempts_to_ready: Optional[int]
    first_failure_at: Optional[str]


class _InitializationRequired(TypedDict):
    phase: PhaseWord
    policy: PolicyWord


class InitializationDoc(_InitializationRequired, total=False):
    attempt: Optional[int]
    started_at: Optional[str]
    finished_at: Optional[str]
    duration_s: Optional[float]
    error: Optional[ErrorDoc]
    history: Optional[HistoryDoc]


class _RequestsRequired(TypedDict):
    total: int
    failed: int


class RequestsDoc(_RequestsRequired, total=False):
    #: Requests in the ``handle()`` calls running now (the describe's own call aside).
    in_flight: int
    #: Continuous batching: requests begun and not ended; ``None`` in the other modes.
    open: Optional[int]
    last_request_at: Optional[str]
    consecutive_failures: int
    last_error: Optional[ErrorDoc]
    fatal: Optional[ErrorDoc]


class _HeartbeatRequired(TypedDict):
    interval_s: float


class HeartbeatDoc(_HeartbeatRequired, total=False):
    """``heartbeat``: this READY worker's watchdog (absent outside TorchServe)."""

    path: Optional[str]
    error: Optional[str]


class _CheckRequired(TypedDict):
    status: CheckWord


class CheckDoc(_CheckRequired, total=False):
    """The user's ``health_check()`` as run by this describe."""

    #: What the check returned, made JSON-safe: any JSON value.
    result: Any
    error: Optional[str]
    duration_s: Optional[float]


class _StateStoreRequired(TypedDict):
    ok: bool


class StateStoreDoc(_StateStoreRequired, total=False):
    path: Optional[str]
    error: Optional[str]


class _StatusRequired(TypedDict):
    status: StatusWord
    schema_version: Literal[1]
    model: ModelDoc
    worker: WorkerDoc
    initialization: InitializationDoc
    requests: RequestsDoc
    check: CheckDoc
    state_store: StateStoreDoc
    #: The fault knobs switched on, by name.
    faults: dict[str, Any]
    #: Versions by distribution name (``ts_health_handler`` always), ``None`` if absent.
    versions: dict[str, Optional[str]]


class StatusDoc(_StatusRequired, total=False):
    """The whole status document (``schema_version`` 1)."""

    # Optional only because a handler older than these fields does not send them.
    ready: bool
    conditions: list[ConditionDoc]
    heartbeat: HeartbeatDoc


#: Longest value shown in a complaint.
SHOWN_LIMIT = 80


def parse_status(data: object) -> StatusDoc:
    """``data`` (a parsed JSON value) as a status document, once it is checked to be one.

    Every field this version knows is checked against its type; unknown fields are allowed.

    Raises:
        ValueError: not a status document; the message names the first field that is wrong,
            e.g. ``field 'check.status' is 'fine', expected one of 'ok', 'failed', ...``.
    """
    _check(StatusDoc, data, "")
    return cast(StatusDoc, data)


@functools.cache
def _fields(kind: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """A TypedDict's field types (its bases' included) and its required keys."""
    return get_type_hints(kind), frozenset(kind.__required_keys__)


def _is_typeddict(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, dict) and hasattr(kind, "__total__")


def _check(kind: Any, value: object, where: str, nullable: bool = False) -> None:
    """Raise :class:`ValueError` unless ``value`` is of ``kind``; ``where`` names the field."""
    if kind is Any:
        return
    origin = get_origin(kind)
    if origin is Union:  # only Optional[X] is used
        options = [option for option in get_args(kind) if option is not type(None)]
        if value is None:
            return
        (option,) = options
        _check(option, value, where, nullable=True)
        return
    if _is_typeddict(kind):
        if not isinstance(value, dict):
            raise _wrong(kind, value, where, nullable)
        types, required = _fields(kind)
        for key, field_kind in types.items():
            inner = f"{where}.{key}" if where else key
            if key in value:
                _check(field_kind, value[key], inner)
            elif key in required:
                raise ValueError(f"field {inner!r} is missing")
        return
    if origin is list:
        if not isinstance(value, list):
            raise _wrong(kind, value, where, nullable)
        (item,) = get_args(kind)
        for index, element in enumerate(value):
            _check(item, element, f"{where}[{index}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise _wrong(kind, value, where, nullable)
        _, item = get_args(kind)
        for key, element in value.items():
            _check(item, element, f"{where}.{key}")
        return
    if not _matches(kind, value):
        raise _wrong(kind, value, where, nullable)


def _matches(kind: Any, value: object) -> bool:
    if get_origin(kind) is Literal:
        # 1 == True and "ready" == HealthStatus.READY: compare the JSON type too.
        return any(type(value) is type(word) and value == word for word in get_args(kind))
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:  # JSON has one number type: 3 is a float too
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    raise TypeError(f"no check for {kind!r}")  # a type added above without a check here


def _wrong(kind: Any, value: object, where: str, nullable: bool) -> ValueError:
    expected = _describe(kind) + (" or null" if nullable else "")
    shown = clip(repr(value), SHOWN_LIMIT, marker="...")
    if not where:
        return ValueError(f"expected a JSON object, got {shown}")
    return ValueError(f"field {where!r} is {shown}, expected {expected}")


def _describe(kind: Any) -> str:
    if get_origin(kind) is Literal:
        words = [repr(word) for word in get_args(kind)]
        return words[0] if len(words) == 1 else "one of " + ", ".join(words)
    if get_origin(kind) is list:
        return "a list"
    if _is_typeddict(kind) or get_origin(kind) is dict:
        return "an object"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(kind, repr(kind))
