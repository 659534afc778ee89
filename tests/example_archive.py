"""Archive an example model from ``examples/`` with changes to its ``model-config.yml``.

Shared by ``tests/integration`` and ``tests/reliability`` (``tests/conftest.py`` puts this
directory on ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ts_health_handler.testing import archive_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, mappings recursively; a ``None`` value deletes."""
    merged = dict(base)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def archive_example(
    example: str,
    store: Path,
    scratch: Path,
    *,
    name: str | None = None,
    changes: Mapping[str, Any] | None = None,
    version: str = "1.0",
    base_config: Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Archive ``examples/<example>`` as ``name`` into ``store``; return the ``.mar`` and the
    ``model-config.yml`` it carries (the example's, or ``base_config``, with ``changes``)."""
    source = EXAMPLES / example
    base = base_config or source / "model-config.yml"
    config = merge(yaml.safe_load(base.read_text(encoding="utf-8")) or {}, changes or {})
    config_file = scratch / "model-config.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    mar = archive_model(
        source / "handler.py", name or example, store, version=version, config_file=config_file
    )
    return mar, config
