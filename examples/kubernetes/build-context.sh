#!/usr/bin/env bash
# The build step of examples/kubernetes/Dockerfile: puts everything its COPY lines read into one
# directory, the docker build context:
#
#   OUT/Dockerfile, OUT/ts-entrypoint.sh
#   OUT/dist/ts_health_handler-<version>-py3-none-any.whl   built from this checkout, and the
#                                                           wheels of its dependencies
#   OUT/model-store/<MODEL_NAME>.mar                         MODEL_DIR's handler.py + model-config.yml
#
# Usage: bash examples/kubernetes/build-context.sh OUT [MODEL_DIR] [MODEL_NAME]
#   MODEL_DIR defaults to examples/empty_model, MODEL_NAME to my_model (what deployment.yaml loads).
# Then: docker build -t registry.example.com/my-model-torchserve:0.12.0-health OUT
# Needs Python with pip (PYTHON, default python3) and torch-model-archiver (on PATH, else next
# to PYTHON).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:?usage: build-context.sh OUT [MODEL_DIR] [MODEL_NAME]}
MODEL_DIR=$(cd "${2:-$ROOT/examples/empty_model}" && pwd)
NAME=${3:-my_model}
PYTHON=${PYTHON:-python3}

ARCHIVER=$(command -v torch-model-archiver || true)
[ -n "$ARCHIVER" ] || ARCHIVER="$(dirname "$PYTHON")/torch-model-archiver"
[ -x "$ARCHIVER" ] || { echo "build-context.sh: torch-model-archiver not found" >&2; exit 1; }

mkdir -p "$OUT/dist" "$OUT/model-store"
rm -f "$OUT"/dist/*.whl
# The wheel and those of its dependencies: the image installs them without the package index.
"$PYTHON" -m pip wheel --quiet --wheel-dir "$OUT/dist" "$ROOT"
install -m 644 "$HERE/Dockerfile" "$OUT/Dockerfile"
install -m 755 "$HERE/ts-entrypoint.sh" "$OUT/ts-entrypoint.sh"
ARCHIVE=("$ARCHIVER" --model-name "$NAME" --version 1.0 --handler "$MODEL_DIR/handler.py"
  --export-path "$OUT/model-store" --force)
[ -f "$MODEL_DIR/model-config.yml" ] && ARCHIVE+=(--config-file "$MODEL_DIR/model-config.yml")
"${ARCHIVE[@]}"
echo "build-context.sh: build context ready in $OUT" >&2
