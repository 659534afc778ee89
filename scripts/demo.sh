#!/usr/bin/env bash
# The demo: set everything up, serve the example models on a real TorchServe, print their
# health (TorchServe's view next to ours), stop the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/demo.py
