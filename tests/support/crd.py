"""Custom resources checked as the API server would: the vendored CRD schemas, and the fields
it would drop silently. Shared by the KServe and Prometheus Operator manifest tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any


def crd_schema(schemas: Path, document: dict[str, Any]) -> dict[str, Any]:
    """The schema of ``document``'s kind in a vendored ``{"kinds": {...}}`` file (gzipped)."""
    kinds = json.loads(gzip.decompress(schemas.read_bytes()))["kinds"]
    return dict(kinds[f"{document['apiVersion']}/{document['kind']}"])


def pruned(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would drop silently: not in the schema's ``properties``."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        known = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if known is not None and key in known:
                found += pruned(item, known[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += pruned(item, extra, f"{path}.{key}")
            elif known is not None:
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += pruned(item, schema["items"], f"{path}[{index}]")
    return found


def schema_errors(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """What JSON Schema draft 7 (as the CRDs' ``openAPIV3Schema``) finds wrong in ``document``,
    by path. Needs jsonschema: call it after ``pytest.importorskip("jsonschema")``."""
    import jsonschema

    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path)
    )
    return [f"{list(e.path)}: {e.message}" for e in errors]
