"""The ``health`` section of model-config.yml: defaults, accepted values, and every rejection."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import json_strategies
from ts_health_handler import ConfigError, Faults, HealthConfig, HealthError, InitFailurePolicy

# -- defaults and valid values ------------------------------------------------------------


@pytest.mark.parametrize("model_yaml", [None, {}, {"health": None}, {"minWorkers": 2}])
def test_missing_section_gives_defaults(model_yaml: Any) -> None:
    config = HealthConfig.from_model_yaml(model_yaml)

    assert config == HealthConfig()
    assert config.on_init_failure is InitFailurePolicy.RAISE
    assert config.state_dir is None
    assert config.check_timeout_s == 1.0
    assert config.traceback_limit == 4000
    assert config.termination_log is None
    assert config.faults == Faults()  # every knob off


def test_every_key_is_parsed() -> None:
    config = HealthConfig.from_model_yaml(
        {
            "minWorkers": 1,
            "health": {
                "on_init_failure": "hold",
                "state_dir": "/var/run/ts-health",
                "check_timeout_s": 2,
                "traceback_limit": 0,
                "termination_log": "/dev/termination-log",
                "faults": {
                    "fail_initialize": "weights missing",
                    "initialize_delay_s": 1,
                    "inference_delay_s": 0.25,
                    "fail_inference": "backend down",
                    "fail_inference_status": 429,
                },
            },
        }
    )

    assert config == HealthConfig(
        on_init_failure=InitFailurePolicy.HOLD,
        state_dir="/var/run/ts-health",
        check_timeout_s=2.0,
        traceback_limit=0,
        termination_log="/dev/termination-log",
        faults=Faults(
            fail_initialize="weights missing",
            initialize_delay_s=1.0,
            inference_delay_s=0.25,
            fail_inference="backend down",
            fail_inference_status=429,
        ),
    )
    # integers given for seconds become floats
    assert type(config.check_timeout_s) is float
    assert type(config.faults.initialize_delay_s) is float
    assert config.faults != Faults()  # knobs on


@pytest.mark.parametrize(
    ("section", "attribute", "expected"),
    [
        ({"check_timeout_s": 0.01}, "check_timeout_s", 0.01),
        ({"check_timeout_s": 300}, "check_timeout_s", 300.0),
        ({"traceback_limit": 100_000}, "traceback_limit", 100_000),
        ({"on_init_failure": "raise"}, "on_init_failure", InitFailurePolicy.RAISE),
        ({"state_dir": None}, "state_dir", None),
        ({"termination_log": None}, "termination_log", None),
    ],
)
def test_boundary_values_are_accepted(
    section: dict[str, Any], attribute: str, expected: Any
) -> None:
    assert getattr(HealthConfig.from_mapping(section), attribute) == expected


@pytest.mark.parametrize(
    ("faults", "attribute", "expected"),
    [
        ({"fail_inference_status": 400}, "fail_inference_status", 400),
        ({"fail_inference_status": 599}, "fail_inference_status", 599),
        ({"initialize_delay_s": 3600}, "initialize_delay_s", 3600.0),
        ({"inference_delay_s": 0}, "inference_delay_s", 0.0),
        ({"fail_initialize": None}, "fail_initialize", None),
    ],
)
def test_fault_boundary_values_are_accepted(
    faults: dict[str, Any], attribute: str, expected: Any
) -> None:
    assert getattr(HealthConfig.from_mapping({"faults": faults}).faults, attribute) == expected


def test_policy_enum_values_are_the_config_words() -> None:
    assert [p.value for p in InitFailurePolicy] == ["raise", "hold"]


# -- every bad value names key, value and expectation ------------------------------------

NUMBER_0_3600 = "a number from 0 to 3600"
TEXT = "a non-empty string or null"

BAD_VALUES: list[tuple[Any, str, Any, str]] = [
    # (health section, dotted key, offending value, expected-text)
    ("yes", "health", "yes", "a mapping"),
    ([1, 2], "health", [1, 2], "a mapping"),
    (7, "health", 7, "a mapping"),
    ({"colour": "red"}, "health.colour", "red", "a known key: on_init_failure, state_dir"),
    ({"Faults": {}}, "health.Faults", {}, "a known key"),
    ({"on_init_failure": "retry"}, "health.on_init_failure", "retry", "raise or hold"),
    ({"on_init_failure": "RAISE"}, "health.on_init_failure", "RAISE", "raise or hold"),
    ({"on_init_failure": True}, "health.on_init_failure", True, "raise or hold"),
    ({"on_init_failure": 1}, "health.on_init_failure", 1, "raise or hold"),
    ({"on_init_failure": None}, "health.on_init_failure", None, "raise or hold"),
    ({"on_init_failure": ["hold"]}, "health.on_init_failure", ["hold"], "raise or hold"),
    ({"state_dir": ""}, "health.state_dir", "", TEXT),
    ({"state_dir": "   "}, "health.state_dir", "   ", TEXT),
    ({"state_dir": 5}, "health.state_dir", 5, TEXT),
    ({"state_dir": True}, "health.state_dir", True, TEXT),
    ({"state_dir": ["/tmp"]}, "health.state_dir", ["/tmp"], TEXT),
    ({"check_timeout_s": "5"}, "health.check_timeout_s", "5", "a number from 0.01 to 300"),
    ({"check_timeout_s": True}, "health.check_timeout_s", True, "a number from 0.01 to 300"),
    ({"check_timeout_s": False}, "health.check_timeout_s", False, "a number from 0.01 to 300"),
    ({"check_timeout_s": 0}, "health.check_timeout_s", 0, "a number from 0.01 to 300"),
    ({"check_timeout_s": 0.001}, "health.check_timeout_s", 0.001, "a number from 0.01 to 300"),
    ({"check_timeout_s": 300.5}, "health.check_timeout_s", 300.5, "a number from 0.01 to 300"),
    ({"check_timeout_s": -1}, "health.check_timeout_s", -1, "a number from 0.01 to 300"),
    ({"check_timeout_s": math.inf}, "health.check_timeout_s", math.inf, "from 0.01 to 300"),
    ({"check_timeout_s": 10**400}, "health.check_timeout_s", 10**400, "from 0.01 to 300"),
    ({"check_timeout_s": None}, "health.check_timeout_s", None, "a number from 0.01 to 300"),
    ({"traceback_limit": 1.5}, "health.traceback_limit", 1.5, "an integer from 0 to 100000"),
    ({"traceback_limit": 10.0}, "health.traceback_limit", 10.0, "an integer from 0 to 100000"),
    ({"traceback_limit": True}, "health.traceback_limit", True, "an integer from 0 to 100000"),
    ({"traceback_limit": -1}, "health.traceback_limit", -1, "an integer from 0 to 100000"),
    ({"traceback_limit": 100_001}, "health.traceback_limit", 100_001, "an integer from 0"),
    ({"traceback_limit": "10"}, "health.traceback_limit", "10", "an integer from 0 to 100000"),
    ({"termination_log": 0}, "health.termination_log", 0, TEXT),
    ({"termination_log": ""}, "health.termination_log", "", TEXT),
    ({"faults": "all"}, "health.faults", "all", "a mapping"),
    ({"faults": [1]}, "health.faults", [1], "a mapping"),
    ({"faults": {"explode": 1}}, "health.faults.explode", 1, "a known key: fail_initialize"),
    ({"faults": {"fail_initialize": 1}}, "health.faults.fail_initialize", 1, TEXT),
    ({"faults": {"fail_initialize": ""}}, "health.faults.fail_initialize", "", TEXT),
    ({"faults": {"fail_initialize": True}}, "health.faults.fail_initialize", True, TEXT),
    ({"faults": {"initialize_delay_s": -1}}, "health.faults.initialize_delay_s", -1, NUMBER_0_3600),
    (
        {"faults": {"initialize_delay_s": 3601}},
        "health.faults.initialize_delay_s",
        3601,
        NUMBER_0_3600,
    ),
    (
        {"faults": {"initialize_delay_s": True}},
        "health.faults.initialize_delay_s",
        True,
        NUMBER_0_3600,
    ),
    (
        {"faults": {"initialize_delay_s": "1s"}},
        "health.faults.initialize_delay_s",
        "1s",
        NUMBER_0_3600,
    ),
    (
        {"faults": {"inference_delay_s": -0.5}},
        "health.faults.inference_delay_s",
        -0.5,
        NUMBER_0_3600,
    ),
    (
        {"faults": {"inference_delay_s": -(10**400)}},
        "health.faults.inference_delay_s",
        -(10**400),
        NUMBER_0_3600,
    ),
    (
        {"faults": {"inference_delay_s": None}},
        "health.faults.inference_delay_s",
        None,
        NUMBER_0_3600,
    ),
    ({"faults": {"fail_inference": []}}, "health.faults.fail_inference", [], TEXT),
    ({"faults": {"fail_inference": " "}}, "health.faults.fail_inference", " ", TEXT),
    (
        {"faults": {"fail_inference_status": 200}},
        "health.faults.fail_inference_status",
        200,
        "an integer from 400 to 599",
    ),
    (
        {"faults": {"fail_inference_status": 600}},
        "health.faults.fail_inference_status",
        600,
        "an integer from 400 to 599",
    ),
    (
        {"faults": {"fail_inference_status": 503.0}},
        "health.faults.fail_inference_status",
        503.0,
        "an integer from 400 to 599",
    ),
    (
        {"faults": {"fail_inference_status": True}},
        "health.faults.fail_inference_status",
        True,
        "an integer from 400 to 599",
    ),
    (
        {"faults": {"fail_inference_status": "503"}},
        "health.faults.fail_inference_status",
        "503",
        "an integer from 400 to 599",
    ),
]


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    BAD_VALUES,
    ids=[f"{key}={value!r}"[:60] for _, key, value, _ in BAD_VALUES],
)
def test_bad_value_raises_config_error_naming_key_value_and_expectation(
    section: Any, key: str, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        HealthConfig.from_model_yaml({"health": section})

    error = caught.value
    message = str(error)
    assert error.key == key
    assert error.value == value  # kept as found
    assert expected in error.expected
    assert message == f"invalid {key}: {value!r}; expected {error.expected}"
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("nan", [math.nan, float("nan")])
@pytest.mark.parametrize(
    ("section", "key"),
    [
        (lambda v: {"check_timeout_s": v}, "health.check_timeout_s"),
        (lambda v: {"faults": {"initialize_delay_s": v}}, "health.faults.initialize_delay_s"),
        (lambda v: {"faults": {"inference_delay_s": v}}, "health.faults.inference_delay_s"),
    ],
)
def test_nan_is_rejected(nan: float, section: Any, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        HealthConfig.from_mapping(section(nan))

    assert caught.value.key == key
    assert str(caught.value).startswith(f"invalid {key}: nan; expected a number from ")


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError) as caught:
        HealthConfig.from_model_yaml(["health"])

    assert caught.value.key == "model-config.yml"
    assert str(caught.value) == (
        "invalid model-config.yml: ['health']; expected a mapping at top level"
    )


def test_unknown_key_that_would_break_the_line_is_shown_quoted() -> None:
    with pytest.raises(ConfigError) as caught:
        HealthConfig.from_mapping({"state\ndir": "/x"})

    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert caught.value.key == "health.'state\\ndir'"
    assert message.startswith("invalid health.'state\\ndir': '/x'; expected a known key: ")


def test_non_string_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        HealthConfig.from_mapping({"faults": {3: "x"}})

    assert caught.value.key == "health.faults.3"


def test_config_error_is_a_value_error_and_a_health_error() -> None:
    error = ConfigError("health.x", 1, "nothing")

    assert isinstance(error, ValueError)
    assert isinstance(error, HealthError)
    assert (error.key, error.value, error.expected) == ("health.x", 1, "nothing")


def test_faults_from_mapping_alone_uses_its_own_key() -> None:
    with pytest.raises(ConfigError) as caught:
        Faults.from_mapping({"fail_inference_status": 1}, key="custom.faults")

    assert caught.value.key == "custom.faults.fail_inference_status"
    assert Faults.from_mapping(None) == Faults()


# -- property: arbitrary JSON-like values only ever give a one-line ConfigError ----------

json_values = json_strategies.json_values()

TOP_KEYS = ["on_init_failure", "state_dir", "check_timeout_s", "traceback_limit", "termination_log"]
FAULT_KEYS = list(Faults.__dataclass_fields__)


def _check_only_config_error(section: Any, key: str) -> HealthConfig | None:
    """Parse; anything but a ConfigError propagates and fails the property."""
    error: ConfigError | None = None
    try:
        return HealthConfig.from_model_yaml({"health": section})
    except ConfigError as exc:
        error = exc
    message = str(error)
    assert len(message.splitlines()) == 1, message
    assert error.key.startswith(key), (error.key, key)
    assert error.key in message
    assert message.startswith(f"invalid {error.key}: ")
    assert f"; expected {error.expected}" in message
    return None


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(TOP_KEYS), value=json_values)
def test_any_value_of_a_top_key_gives_config_or_config_error(key: str, value: Any) -> None:
    config = _check_only_config_error({key: value}, f"health.{key}")
    if config is not None and key == "check_timeout_s":
        assert 0.01 <= config.check_timeout_s <= 300
    if config is not None and key == "traceback_limit":
        assert 0 <= config.traceback_limit <= 100_000


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(FAULT_KEYS), value=json_values)
def test_any_value_of_a_fault_key_gives_config_or_config_error(key: str, value: Any) -> None:
    config = _check_only_config_error({"faults": {key: value}}, f"health.faults.{key}")
    if config is not None and key == "fail_inference_status":
        assert 400 <= config.faults.fail_inference_status <= 599


@settings(max_examples=60, deadline=None)
@given(section=json_values)
def test_any_section_gives_config_or_config_error(section: Any) -> None:
    _check_only_config_error(section, "health")


@settings(max_examples=40, deadline=None)
@given(faults=json_values)
def test_any_faults_section_gives_config_or_config_error(faults: Any) -> None:
    _check_only_config_error({"faults": faults}, "health.faults")


@pytest.mark.parametrize("model_yaml", [None, ["health"], "health: {}"])
def test_salvage_of_something_that_is_not_a_mapping_gives_defaults(model_yaml: Any) -> None:
    assert HealthConfig.salvage(model_yaml) == HealthConfig()


@pytest.mark.parametrize("value", ["", "  ", 3])
def test_a_text_setting_must_be_a_non_empty_string(value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        HealthConfig.from_mapping({"termination_log": value})

    assert str(caught.value) == (
        f"invalid health.termination_log: {value!r}; expected a non-empty string or null"
    )
