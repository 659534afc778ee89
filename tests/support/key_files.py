"""TorchServe's ``key_file.json``, written for tests, and the secret its keys are made of (no
output may ever show it)."""

from __future__ import annotations

import json
from pathlib import Path

from ts_health_handler.record import utc_iso

SECRET = "s3cr3t-T0KEN-value"


def write_key_file(
    path: Path, management: str = "mgmt-" + SECRET, inference: str = "inf-" + SECRET
) -> Path:
    """A key file whose keys expire in 2099."""
    path.write_text(
        json.dumps(
            {
                "management": {"key": management, "expiration time": "2099-01-01T00:00:00Z"},
                "inference": {"key": inference, "expiration time": "2099-01-01T00:00:00Z"},
                "API": {"key": "api-" + SECRET},
            }
        )
    )
    return path


def iso(epoch: float) -> str:
    """``epoch`` as Java's ``Instant.toString()`` writes it (TorchServe's expiration times)."""
    return utc_iso(epoch).replace("+00:00", "Z")


def expiring_key_file(
    path: Path, *, management_at: float, inference_at: float, management: str = "mgmt-" + SECRET
) -> Path:
    """A key file whose management and inference keys expire at the given epoch seconds."""
    path.write_text(
        json.dumps(
            {
                "management": {"key": management, "expiration time": iso(management_at)},
                "inference": {"key": "inf-" + SECRET, "expiration time": iso(inference_at)},
                "API": {"key": "api-" + SECRET},
            }
        )
    )
    return path
