"""The ``health`` section of a model's ``model-config.yml``, parsed and checked.

Example (every key optional)::

    health:
      on_init_failure: raise        # raise | hold
      state_dir: /var/run/ts-health # else $TS_HEALTH_STATE_DIR, else <tmp>/ts-health
      check_timeout_s: 1
      traceback_limit: 4000
      termination_log: /dev/termination-log
      faults:                       # for testing health machinery; all off by default
        fail_initialize: "weights missing"
        initialize_delay_s: 0
        inference_delay_s: 0
        fail_inference: "backend down"
        fail_inference_status: 503
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .._errors import ConfigError

__all__ = ["Faults", "HealthConfig", "InitFailurePolicy"]

SECTION: Final = "health"


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


@dataclass(frozen=True)
class Faults:
    """Fault-injection knobs (``health.faults``); all off by default."""

    fail_initialize: str | None = None
    initialize_delay_s: float = 0.0
    inference_delay_s: float = 0.0
    fail_inference: str | None = None
    fail_inference_status: int = 503

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
    faults: Faults = field(default_factory=Faults)

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
        return cls.from_mapping(model_yaml_config.get(SECTION))

    @classmethod
    def from_mapping(cls, raw: Any) -> HealthConfig:
        """Parse the ``health`` section itself (``None`` gives the defaults)."""
        section = _section(SECTION, raw, tuple(cls.__dataclass_fields__))
        policy = section.get("on_init_failure", InitFailurePolicy.RAISE.value)
        allowed = tuple(p.value for p in InitFailurePolicy)
        if policy not in allowed:
            raise ConfigError(f"{SECTION}.on_init_failure", policy, " or ".join(allowed))
        return cls(
            on_init_failure=InitFailurePolicy(policy),
            state_dir=_text(f"{SECTION}.state_dir", section.get("state_dir")),
            check_timeout_s=_number(
                f"{SECTION}.check_timeout_s", section.get("check_timeout_s", 1.0), 0.01, 300
            ),
            traceback_limit=_integer(
                f"{SECTION}.traceback_limit", section.get("traceback_limit", 4000), 0, 100_000
            ),
            termination_log=_text(f"{SECTION}.termination_log", section.get("termination_log")),
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
