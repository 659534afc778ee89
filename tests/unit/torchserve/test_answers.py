"""TorchServe's answers parsed once (``torchserve._answers``): describe entries with odd fields,
the status document inside ``customizedMetadata``, key files and Java instants."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.key_files import SECRET, expiring_key_file
from tests.support.records import NOW

# -- key files and Java instants -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2025-06-15T15:06:40Z", 1_750_000_000.0),
        ("2025-06-15T15:06:40.5Z", 1_750_000_000.5),
        ("2025-06-15T15:06:40.250Z", 1_750_000_000.25),
        ("2025-06-15T15:06:40.123456789Z", 1_750_000_000.123456789),
    ],
)
def test_java_instants_are_parsed(text: str, epoch: float) -> None:
    from ts_health_handler.torchserve._answers import parse_instant

    assert parse_instant(text) == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize("text", ["2025-06-15 15:06:40Z", "2025-06-15T15:06:40", "soon", ""])
def test_odd_instants_are_refused(text: str) -> None:
    from ts_health_handler.torchserve._answers import parse_instant

    with pytest.raises(ValueError, match="expected an instant like"):
        parse_instant(text)


def test_key_file_expiration_times_are_read(tmp_path: Path) -> None:
    from ts_health_handler.torchserve._answers import Keys

    path = expiring_key_file(tmp_path / "k.json", management_at=NOW + 60, inference_at=NOW + 30)
    keys = Keys.from_key_file(path)
    assert keys.management_expires_at == pytest.approx(NOW + 60, abs=1e-3)
    assert keys.inference_expires_at == pytest.approx(NOW + 30, abs=1e-3)
    assert keys.api == "api-" + SECRET
    assert SECRET not in repr(keys)
