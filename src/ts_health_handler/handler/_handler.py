"""``HealthHandler``: :class:`HealthMixin` on TorchServe's ``BaseHandler`` (imports torch)."""

from __future__ import annotations

from ts.torch_handler.base_handler import BaseHandler

from ._mixin import HealthMixin

__all__ = ["HealthHandler"]


class HealthHandler(HealthMixin, BaseHandler):  # type: ignore[misc]
    """``BaseHandler`` with recorded initialization and a JSON describe status.

    Subclass it and override ``initialize()``, ``preprocess()``, ``inference()`` and
    ``postprocess()`` as with ``BaseHandler``; nothing else changes.
    """
