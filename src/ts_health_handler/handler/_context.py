"""What TorchServe's context tells a worker about its model: name, version, serving mode."""

from __future__ import annotations

from typing import Any, Final

from .._lifecycle import ServingMode

__all__ = ["UNKNOWN", "model_identity", "serving_mode"]

UNKNOWN: Final = "unknown"


def serving_mode(model_yaml_config: Any) -> ServingMode:
    """The mode TorchServe 0.12 serves a model in, from its ``model-config.yml``."""
    if not isinstance(model_yaml_config, dict):
        return ServingMode.DEFAULT

    def on(key: str) -> bool:
        value = model_yaml_config.get(key)
        return value is True or (isinstance(value, str) and value.strip().lower() == "true")

    if on("sequenceBatching"):
        return ServingMode.SEQUENCE_CONTINUOUS if on("continuousBatching") else ServingMode.SEQUENCE
    if on("continuousBatching"):
        return ServingMode.CONTINUOUS
    if on("asyncCommunication"):
        return ServingMode.ASYNC
    return ServingMode.DEFAULT


def model_identity(context: Any) -> tuple[str, str]:
    """Model name and version from TorchServe's context and the ``.mar`` manifest."""
    name = getattr(context, "model_name", None)
    version = UNKNOWN
    manifest = getattr(context, "manifest", None)
    if isinstance(manifest, dict):
        model = manifest.get("model")
        if isinstance(model, dict):
            name = name or model.get("modelName")
            version = str(model.get("modelVersion") or UNKNOWN)
    return str(name or UNKNOWN), version
