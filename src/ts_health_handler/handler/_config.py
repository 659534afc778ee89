"""The ``health`` section of a model's ``model-config.yml``, parsed and checked.

Example (every key optional)::

    health:
      on_init_failure: raise        # raise | hold
      state_dir: /var/run/ts-health # else $TS_HEALTH_STATE_DIR, else <tmp>/ts-health
      check_timeout_s: 1
      traceback_limit: 4000
      termination_log: /dev/termination-log
      heartbeat_interval_s: 2       # the watchdog's beat, while the worker serves
      stuck_after_s: null           # a request running longer is "stuck"; null: 3/4 of
                                    # the model's responseTimeout (TorchServe's default 120 s)
      failing_after_requests: 5     # failed requests in a row that make the model "failing"
      fatal_errors: [...]           # regular expressions; see DEFAULT_FATAL_ERRORS
      oom_fatal_after: 3            # CUDA out-of-memory errors in a row that count as fatal
      on_fatal_error: report        # report | restart (end the worker after answering)
      unstable_after_deaths: 3      # worker deaths while serving within death_window_s
      death_window_s: 600
      faults:                       # for testing health machinery; all off by default
        fail_initialize: "weights missing"
        initialize_delay_s: 0
        inference_delay_s: 0
        fail_inference: "backend down"
        fail_inference_status: 503
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from .. import _thresholds as thresholds
from .._errors import ConfigError

__all__ = [
    "DEFAULT_FATAL_ERRORS",
    "FatalErrorPolicy",
    "Faults",
    "HealthConfig",
    "InitFailurePolicy",
]

SECTION: Final = "health"
#: Errors after which a CUDA context stays corrupt: no later request can succeed in this
#: process (matched, case-insensitively, against ``"<type>: <message>"``).
DEFAULT_FATAL_ERRORS: Final = (
    r"device-side assert triggered",
    r"an illegal memory access was encountered",
    r"CUBLAS_STATUS_EXECUTION_FAILED",
    r"CUDNN_STATUS_EXECUTION_FAILED",
    r"NCCL error",
)


class InitFailurePolicy(str, enum.Enum):
    """What happens when ``initialize()`` fails."""

    #: Re-raise (as :class:`InitializationError`): TorchServe restarts the worker.
    RAISE = "raise"
    #: Keep the worker alive; describe reports ``failed``, inference answers 503.
    HOLD = "hold"


def _number(key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, value, f"a number from {low:g} to {high:g}")
    # NaN fails the range test too; math.isnan() would overflow on a huge int.
    if (isinstance(value, float) and math.isnan(value)) or not low <= value <= high:
        raise ConfigError(key, value, f"a number from {low:g} to {high:g}")
    return float(value)


def _integer(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(key, value, f"an integer from {low} to {high}")
    return value


def _text(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, value, "a non-empty string or null")
    return value


def _section(key: str, value: Any, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, "a mapping")
    for name in value:
        if name not in allowed:
            # repr() a key that would not print on one line (e.g. holds a newline).
            shown = name if isinstance(name, str) and name.isprintable() else repr(name)
            raise ConfigError(f"{key}.{shown}", value[name], f"a known key: {', '.join(allowed)}")
    return value


class FatalErrorPolicy(str, enum.Enum):
    """What a worker does after a fatal error (``health.on_fatal_error``)."""

    #: Keep serving (every request fails); the model is reported ``failing``.
    REPORT = "report"
    #: Answer the failing request, then end the worker process: TorchServe starts a fresh
    #: one (with a fresh CUDA context). The restart is recorded and counted.
    RESTART = "restart"


def _patterns(key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_FATAL_ERRORS
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(key, value, "a list of regular expressions (strings)")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(key, pattern, f"a valid regular expression ({exc})") from None
    return tuple(value)


_Policy = TypeVar("_Policy", InitFailurePolicy, FatalErrorPolicy)


def _policy(section: Mapping[str, Any], name: str, default: _Policy) -> _Policy:
    """``health.<name>``, one of the values of ``default``'s enum (``default`` when absent)."""
    value = section.get(name, default.value)
    allowed = tuple(p.value for p in type(default))
    if value not in allowed:
        raise ConfigError(f"{SECTION}.{name}", value, " or ".join(allowed))
    return type(default)(value)


def _number_setting(
    section: Mapping[str, Any], name: str, default: float, low: float, high: float
) -> float:
    """``health.<name>``, a number from ``low`` to ``high`` (``default`` when absent)."""
    return _number(f"{SECTION}.{name}", section.get(name, default), low, high)


def _integer_setting(
    section: Mapping[str, Any], name: str, default: int, low: int, high: int
) -> int:
    """``health.<name>``, an integer from ``low`` to ``high`` (``default`` when absent)."""
    return _integer(f"{SECTION}.{name}", section.get(name, default), low, high)


@dataclass(frozen=True)
class Faults:
    """Fault-injection knobs (``health.faults``); all off by default."""

    fail_initialize: str | None = None
    initialize_delay_s: float = 0.0
    inference_delay_s: float = 0.0
    fail_inference: str | None = None
    fail_inference_status: int = 503

    @property
    def in_inference(self) -> bool:
        """A fault applies to requests: each one goes through the tracker's gate."""
        return self.inference_delay_s > 0 or self.fail_inference is not None

    @classmethod
    def from_mapping(cls, raw: Any, key: str = f"{SECTION}.faults") -> Faults:
        """Parse ``health.faults``; raise :class:`ConfigError` on the first bad value."""
        section = _section(key, raw, tuple(cls.__dataclass_fields__))
        return cls(
            fail_initialize=_text(f"{key}.fail_initialize", section.get("fail_initialize")),
            initialize_delay_s=_number(
                f"{key}.initialize_delay_s", section.get("initialize_delay_s", 0), 0, 3600
            ),
            inference_delay_s=_number(
                f"{key}.inference_delay_s", section.get("inference_delay_s", 0), 0, 3600
            ),
            fail_inference=_text(f"{key}.fail_inference", section.get("fail_inference")),
            fail_inference_status=_integer(
                f"{key}.fail_inference_status", section.get("fail_inference_status", 503), 400, 599
            ),
        )


@dataclass(frozen=True)
class HealthConfig:
    """Parsed ``health`` section of ``model-config.yml``."""

    on_init_failure: InitFailurePolicy = InitFailurePolicy.RAISE
    state_dir: str | None = None
    check_timeout_s: float = 1.0
    traceback_limit: int = 4000
    termination_log: str | None = None
    heartbeat_interval_s: float = thresholds.HEARTBEAT_INTERVAL_S
    #: ``None``: ``_thresholds.STUCK_SHARE`` of ``response_timeout_s``.
    stuck_after_s: float | None = None
    failing_after_requests: int = thresholds.FAILING_AFTER
    fatal_errors: tuple[str, ...] = DEFAULT_FATAL_ERRORS
    oom_fatal_after: int = 3
    on_fatal_error: FatalErrorPolicy = FatalErrorPolicy.REPORT
    unstable_after_deaths: int = thresholds.UNSTABLE_AFTER
    death_window_s: float = thresholds.DEATH_WINDOW_S
    #: TorchServe's ``responseTimeout`` (top level of ``model-config.yml``), not ours.
    response_timeout_s: float = thresholds.RESPONSE_TIMEOUT_S
    faults: Faults = field(default_factory=Faults)

    @property
    def stuck_threshold_s(self) -> float:
        """Seconds after which a running request is stuck."""
        if self.stuck_after_s is not None:
            return self.stuck_after_s
        return thresholds.stuck_after(self.response_timeout_s)

    @classmethod
    def from_model_yaml(cls, model_yaml_config: Any) -> HealthConfig:
        """Read the ``health`` section of a whole ``model-config.yml`` mapping.

        Raises:
            ConfigError: naming the key, the bad value and what is allowed.
        """
        if model_yaml_config is None:
            return cls()
        if not isinstance(model_yaml_config, Mapping):
            raise ConfigError("model-config.yml", model_yaml_config, "a mapping at top level")
        parsed = cls.from_mapping(model_yaml_config.get(SECTION))
        timeout = model_yaml_config.get("responseTimeout")
        if timeout is None:
            return parsed
        seconds = _number("responseTimeout", timeout, 1, 10_000_000)
        return dataclasses.replace(parsed, response_timeout_s=seconds)

    @classmethod
    def from_mapping(cls, raw: Any) -> HealthConfig:
        """Parse the ``health`` section itself (``None`` gives the defaults)."""
        keys = tuple(n for n in cls.__dataclass_fields__ if n != "response_timeout_s")
        section = _section(SECTION, raw, keys)
        on_init_failure = _policy(section, "on_init_failure", InitFailurePolicy.RAISE)
        on_fatal_error = _policy(section, "on_fatal_error", FatalErrorPolicy.REPORT)
        stuck = section.get("stuck_after_s")
        return cls(
            on_init_failure=on_init_failure,
            state_dir=_text(f"{SECTION}.state_dir", section.get("state_dir")),
            check_timeout_s=_number_setting(section, "check_timeout_s", 1.0, 0.01, 300),
            traceback_limit=_integer_setting(section, "traceback_limit", 4000, 0, 100_000),
            termination_log=_text(f"{SECTION}.termination_log", section.get("termination_log")),
            heartbeat_interval_s=_number_setting(
                section, "heartbeat_interval_s", thresholds.HEARTBEAT_INTERVAL_S, 0.1, 60
            ),
            stuck_after_s=None
            if stuck is None
            else _number(f"{SECTION}.stuck_after_s", stuck, 0.1, 10_000_000),
            failing_after_requests=_integer_setting(
                section, "failing_after_requests", thresholds.FAILING_AFTER, 1, 1_000_000
            ),
            fatal_errors=_patterns(f"{SECTION}.fatal_errors", section.get("fatal_errors")),
            oom_fatal_after=_integer_setting(section, "oom_fatal_after", 3, 1, 1_000_000),
            on_fatal_error=on_fatal_error,
            unstable_after_deaths=_integer_setting(
                section, "unstable_after_deaths", thresholds.UNSTABLE_AFTER, 1, 1_000_000
            ),
            death_window_s=_number_setting(
                section, "death_window_s", thresholds.DEATH_WINDOW_S, 1, 10_000_000
            ),
            faults=Faults.from_mapping(section.get("faults")),
        )

    @classmethod
    def salvage(cls, model_yaml_config: Any) -> HealthConfig:
        """Defaults, plus ``state_dir`` and ``termination_log`` where those two are valid.

        Used when the section has an error elsewhere: the failure is then still recorded
        where the user asked, and still reaches the termination log.
        """
        raw = model_yaml_config.get(SECTION) if isinstance(model_yaml_config, Mapping) else None
        if not isinstance(raw, Mapping):
            return cls()
        kept: dict[str, str] = {}
        for key in ("state_dir", "termination_log"):
            value = raw.get(key)
            if isinstance(value, str) and value.strip():
                kept[key] = value
        return cls(**kept)  # type: ignore[arg-type]
