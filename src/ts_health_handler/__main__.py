"""``python -m ts_health_handler``: the ``ts-health`` probe."""

from __future__ import annotations

import sys

from .probe import main

if __name__ == "__main__":
    sys.exit(main())
