"""Archive an example model from ``examples/`` with changes to its ``model-config.yml``.

Shared by ``tests/integration`` and ``tests/reliability``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ts_health_handler.testing import archive_model, model_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def archive_example(
    example: str,
    store: Path,
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
    config = model_config(base, changes)
    mar = archive_model(
        source / "handler.py", name or example, store, version=version, config=config
    )
    return mar, config
