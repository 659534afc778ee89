"""Worker processes that ended while serving: found by their successor, kept in the record.

Standard library only. TorchServe restarts a READY worker whose process died (a segfault,
the OOM killer, its own kill at ``responseTimeout``, or ours after a fatal error under
``health.on_fatal_error: restart``) and describes it as READY again once the new process has
initialized: nothing shows that it happened. The new process finds its predecessor's last
heartbeat (``_beat``) and records what that process was doing when it was last seen.
"""

# No `from __future__ import annotations`: typing would compile each named-tuple field's
# annotation when ts-health starts (docs/architecture.md, "Start-up").
import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Optional

from ._fields import RecordError, field, mapping

if TYPE_CHECKING:
    from ._beat import Beat

__all__ = ["Death", "DeathCause", "death_from_beat", "deaths_within"]

#: Deaths a record keeps (the newest).
KEEP_DEATHS: Final = 20


class DeathCause(str, enum.Enum):
    """Why a serving worker process ended, as far as its last heartbeat tells."""

    #: Gone without a word: a signal (the OOM killer's SIGKILL), a crash, a segfault.
    DIED = "died"
    #: A request ran until TorchServe's ``responseTimeout``; TorchServe ended the process.
    RESPONSE_TIMEOUT = "response_timeout"
    #: A fatal error under ``health.on_fatal_error: restart``: the worker ended itself.
    FATAL_RESTART = "fatal_restart"


class Death(NamedTuple):
    """One worker process that ended while it served (times in epoch seconds)."""

    worker: str
    pid: int
    #: Its last heartbeat: the last time it was seen alive.
    last_seen: float
    #: When its successor started (and found it gone).
    found: float
    cause: DeathCause
    #: How long the request it was running had run at its last heartbeat, if any.
    request_s: Optional[float] = None
    #: The fatal error, for :attr:`DeathCause.FATAL_RESTART`.
    message: Optional[str] = None

    def describe(self) -> str:
        """``during a request, 0.2 s in`` / ``idle`` / ``after a fatal error: ...``."""
        if self.cause is DeathCause.FATAL_RESTART:
            return f"restarted after a fatal error: {self.message or 'unknown'}"
        if self.cause is DeathCause.RESPONSE_TIMEOUT:
            return f"killed by TorchServe at responseTimeout, a request {self.request_s:.0f} s in"
        if self.request_s is not None:
            return f"during a request, {self.request_s:.1f} s in when last seen"
        return "idle when last seen"

    def to_json(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "pid": self.pid,
            "last_seen": self.last_seen,
            "found": self.found,
            "cause": self.cause.value,
            "request_s": self.request_s,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, raw: Any, where: str, name: str) -> "Death":
        data = mapping(raw, where, name)
        prefix = f"{name}."
        number, optional = (int, float), (int, float, type(None))
        cause = field(data, "cause", str, where, prefix=prefix)
        try:
            parsed = DeathCause(cause)
        except ValueError:
            raise RecordError(where, f"field {prefix}cause is {cause!r}") from None
        request = field(data, "request_s", optional, where, default=None, prefix=prefix)
        return cls(
            worker=field(data, "worker", str, where, prefix=prefix),
            pid=field(data, "pid", int, where, prefix=prefix),
            last_seen=float(field(data, "last_seen", number, where, prefix=prefix)),
            found=float(field(data, "found", number, where, prefix=prefix)),
            cause=parsed,
            request_s=None if request is None else float(request),
            message=field(data, "message", (str, type(None)), where, default=None, prefix=prefix),
        )


def death_from_beat(beat: "Beat", *, found: float) -> Death:
    """What the last heartbeat of a process that is gone tells about its end."""
    request_s = None if beat.in_flight_since is None else max(0.0, beat.at - beat.in_flight_since)
    if beat.fatal is not None and beat.restarting:
        cause = DeathCause.FATAL_RESTART
    elif request_s is not None and request_s + beat.interval_s >= beat.response_timeout_s - 1:
        cause = DeathCause.RESPONSE_TIMEOUT
    else:
        cause = DeathCause.DIED
    message = None
    if cause is DeathCause.FATAL_RESTART and beat.fatal is not None:
        message = f"{beat.fatal.type.rsplit('.', 1)[-1]}: {beat.fatal.message}"
    return Death(beat.worker, beat.pid, beat.at, found, cause, request_s, message)


def deaths_within(deaths: Sequence[Death], now: float, window_s: float) -> list[Death]:
    """The deaths found in the last ``window_s`` seconds before ``now``, oldest first."""
    return sorted((d for d in deaths if now - d.found <= window_s), key=lambda d: d.found)
