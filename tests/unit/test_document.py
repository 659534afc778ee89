"""The status document's types (``_document``) in step with ``schema/status.v1.json``, and the
one check of what TorchServe hands back."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest

from tests.support.status_docs import status_doc
from ts_health_handler import CheckStatus, HealthStatus, InitFailurePolicy, InitPhase
from ts_health_handler._document import (
    CheckWord,
    ModeWord,
    PhaseWord,
    PolicyWord,
    StatusDoc,
    StatusWord,
    parse_status,
)
from ts_health_handler._lifecycle import ServingMode
from ts_health_handler.torchserve._answers import status_from_metadata

SCHEMA: dict[str, Any] = json.loads(
    files("ts_health_handler").joinpath("schema/status.v1.json").read_text(encoding="utf-8")
)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/$defs/")
    return _resolve(SCHEMA["$defs"][ref.removeprefix("#/$defs/")])


def _nullable(schema: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Whether ``schema`` allows null, and the schema of its value that is not null."""
    schema = _resolve(schema)
    options = schema.get("oneOf")
    if options is not None:
        rest = [_resolve(o) for o in options if o != {"type": "null"}]
        assert len(rest) == 1, schema
        return len(rest) < len(options), rest[0]
    kinds = schema.get("type")
    return isinstance(kinds, list) and "null" in kinds, schema


def _optional(kind: Any) -> tuple[bool, Any]:
    """Whether ``kind`` is ``Optional[X]``, and ``X``."""
    if get_origin(kind) is Union:
        rest = [a for a in get_args(kind) if a is not type(None)]
        assert len(rest) == 1, f"{kind}: the parser knows Optional[X] only"
        return True, rest[0]
    return False, kind


def _is_typeddict(kind: Any) -> bool:
    return isinstance(kind, type) and hasattr(kind, "__required_keys__")


def _pairs(schema: dict[str, Any], kind: Any, where: str) -> list[tuple[str, dict[str, Any], Any]]:
    """Every object of the schema with its TypedDict (or mapping type), by path."""
    if "properties" not in schema:
        # faults, versions: objects without named properties are mappings.
        assert get_origin(kind) is dict, f"{where}: {kind} for an object without properties"
        return []
    found = [(where, schema, kind)]
    hints = get_type_hints(kind)
    for name, sub in schema["properties"].items():
        if name not in hints:
            continue  # reported by the test on keys
        _, value = _nullable(sub)
        _, field = _optional(hints[name])
        if value.get("type") == "object" or "properties" in value:
            found += _pairs(value, field, f"{where}.{name}")
        elif value.get("type") == "array" and "items" in value:
            (item,) = get_args(field)
            items = _resolve(value["items"])
            if "properties" in items:
                found += _pairs(items, item, f"{where}.{name}[]")
    return found


PAIRS = _pairs(SCHEMA, StatusDoc, "document")


def test_every_object_of_the_schema_has_its_typeddict() -> None:
    assert [where for where, _, _ in PAIRS] == [
        "document",
        "document.conditions[]",
        "document.model",
        "document.worker",
        "document.worker.gpu",
        "document.initialization",
        "document.initialization.error",
        "document.initialization.history",
        "document.initialization.history.recent_errors[]",
        "document.requests",
        "document.requests.last_error",
        "document.requests.fatal",
        "document.check",
        "document.state_store",
        "document.heartbeat",
    ]


@pytest.mark.parametrize(("where", "schema", "kind"), PAIRS, ids=[p[0] for p in PAIRS])
def test_keys_and_required_keys_agree(where: str, schema: dict[str, Any], kind: Any) -> None:
    assert _is_typeddict(kind), where
    assert set(get_type_hints(kind)) == set(schema["properties"]), where
    assert kind.__required_keys__ == frozenset(schema.get("required", ())), where


@pytest.mark.parametrize(("where", "schema", "kind"), PAIRS, ids=[p[0] for p in PAIRS])
def test_nullable_fields_are_optional_and_not_required(
    where: str, schema: dict[str, Any], kind: Any
) -> None:
    # TorchServe 0.12 drops null fields: what may be null may be missing.
    hints = get_type_hints(kind)
    for name, sub in schema["properties"].items():
        nullable, value = _nullable(sub)
        optional, field = _optional(hints[name])
        assert optional == nullable, f"{where}.{name}"
        if nullable:
            assert name not in kind.__required_keys__, f"{where}.{name}"
        if "enum" in value or "const" in value:
            words = value.get("enum", [value.get("const")])
            assert get_origin(field) is Literal, f"{where}.{name}"
            assert list(get_args(field)) == words, f"{where}.{name}"


@pytest.mark.parametrize(
    ("words", "enum"),
    [
        (StatusWord, HealthStatus),
        (PhaseWord, InitPhase),
        (PolicyWord, InitFailurePolicy),
        (CheckWord, CheckStatus),
        (ModeWord, ServingMode),
    ],
)
def test_the_words_are_the_enums_values(words: Any, enum: Any) -> None:
    assert list(get_args(words)) == [member.value for member in enum]


def test_a_valid_document_is_returned_as_it_is() -> None:
    document = status_doc(unknown_field={"from": "a newer handler"})
    assert parse_status(document) is document
    assert status_from_metadata(json.dumps(document)) == (document, None)


HISTORY = {"attempts": 1, "failures": 0, "consecutive_failures": 0, "recent_errors": []}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"status": "Healthy"}, "field 'status' is 'Healthy', expected one of 'ready', "),
        ({"schema_version": 2}, "field 'schema_version' is 2, expected 1"),
        ({"schema_version": True}, "field 'schema_version' is True, expected 1"),
        ({"check": "broken"}, "field 'check' is 'broken', expected an object"),
        ({"check": None}, "field 'check' is None, expected an object"),
        ({"worker": {"pid": 1.5}}, "field 'worker.pid' is 1.5, expected an integer"),
        ({"worker": {"pid": True}}, "field 'worker.pid' is True, expected an integer"),
        ({"worker": {"pid": 1, "uptime_s": "3"}}, "'worker.uptime_s' is '3', expected a number"),
        (
            {"initialization": {"error": {"message": "no weights"}}},
            "field 'initialization.error.type' is missing",
        ),
        (
            {"initialization": {"error": "x"}},
            "field 'initialization.error' is 'x', expected an object or null",
        ),
        (
            {"initialization": {"history": {**HISTORY, "recent_errors": [{"type": 1}]}}},
            "field 'initialization.history.recent_errors[0].type' is 1, expected a string",
        ),
        ({"versions": {"torch": 2}}, "field 'versions.torch' is 2, expected a string or null"),
        ({"conditions": {}}, "field 'conditions' is {}, expected a list"),
    ],
)
def test_what_is_not_a_document_is_reported_naming_the_field(
    change: dict[str, Any], why: str
) -> None:
    document = status_doc(**change)
    with pytest.raises(ValueError, match=re.escape(why)) as raised:
        parse_status(document)
    assert status_from_metadata(document) == (
        None,
        f"customizedMetadata is not a ts-health status ({raised.value})",
    )


def test_a_missing_field_is_named() -> None:
    document = status_doc()
    del document["check"]
    with pytest.raises(ValueError, match=r"^field 'check' is missing$"):
        parse_status(document)


@pytest.mark.parametrize("value", [[], "ready", 3, None])
def test_what_is_not_an_object_is_not_a_document(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^expected a JSON object, got "):
        parse_status(value)


def test_a_long_value_is_cut_in_the_complaint() -> None:
    with pytest.raises(ValueError, match=r"^field 'status' is 'xxx") as raised:
        parse_status(status_doc("x" * 10_000))
    assert len(str(raised.value)) < 200
