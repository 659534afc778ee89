"""Status documents for tests: complete and valid, as the monitor receives them.

Shared by ``tests/unit`` and ``tests/reliability``. Null fields are left out, as TorchServe 0.12
drops them from ``customizedMetadata``.
"""

from __future__ import annotations

from typing import Any


def status_doc(status: str = "ready", **changes: Any) -> dict[str, Any]:
    """A valid document of ``status``; each change replaces a field, and a dict given for an
    object field is merged into it (``initialization={"error": {...}}`` keeps the phase)."""
    document: dict[str, Any] = {
        "status": status,
        "schema_version": 1,
        "ready": status == "ready",
        "model": {"name": "m", "version": "1.0"},
        "worker": {"pid": 4242, "started_at": "2026-11-25T08:08:31.904Z", "uptime_s": 12.5},
        "initialization": {
            "phase": "failed" if status == "failed" else "ready",
            "policy": "hold" if status == "failed" else "raise",
        },
        "requests": {"total": 0, "failed": 0},
        "check": {"status": "failed" if status == "degraded" else "ok"},
        "state_store": {"path": "/tmp/ts-health/m/1.0/init.json", "ok": True},
        "faults": {},
        "versions": {"ts_health_handler": "0.1.0", "python": "3.11.7"},
    }
    for key, value in changes.items():
        old = document.get(key)
        merge = isinstance(old, dict) and isinstance(value, dict)
        document[key] = {**old, **value} if merge else value
    return document
