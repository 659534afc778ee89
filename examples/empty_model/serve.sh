#!/usr/bin/env bash
# Archive an example model with torch-model-archiver and serve it with TorchServe, in one go.
#
#   examples/empty_model/serve.sh                       # the empty model
#   examples/empty_model/serve.sh examples/slow_model   # any example dir (handler.py + model-config.yml)
#
# Runs in the foreground (Ctrl-C stops it). Everything it writes (model store, logs, TorchServe's
# pid file and worker sockets) goes to $WORK_DIR, by default <tmp>/ts-health-example-<name>.
# Needs torchserve==0.12.0, torch-model-archiver==0.12.0 and ts-health-handler installed (found
# on PATH, else in the repository's .venv) and Java 17.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
MODEL_DIR=$(cd "${1:-$HERE}" && pwd)
NAME=$(basename "$MODEL_DIR")
VERSION=${MODEL_VERSION:-1.0}
CONFIG=${TS_CONFIG:-$HERE/config.properties}
[ -f "$MODEL_DIR/config.properties" ] && CONFIG=${TS_CONFIG:-$MODEL_DIR/config.properties}
WORK_DIR=${WORK_DIR:-${TMPDIR:-/tmp}/ts-health-example-$NAME}

# Prefer tools on PATH, else the repository's virtualenv.
BIN=""
if ! command -v torchserve >/dev/null 2>&1; then
  BIN="$HERE/../../.venv/bin/"
  [ -x "${BIN}torchserve" ] || { echo "serve.sh: torchserve not found (pip install torchserve==0.12.0)" >&2; exit 1; }
fi
command -v java >/dev/null 2>&1 || { echo "serve.sh: java not found (TorchServe needs Java 17)" >&2; exit 1; }

mkdir -p "$WORK_DIR/model_store" "$WORK_DIR/logs" "$WORK_DIR/tmp"
ARCHIVE=("${BIN}torch-model-archiver" --model-name "$NAME" --version "$VERSION"
  --handler "$MODEL_DIR/handler.py" --export-path "$WORK_DIR/model_store" --force)
[ -f "$MODEL_DIR/model-config.yml" ] && ARCHIVE+=(--config-file "$MODEL_DIR/model-config.yml")
"${ARCHIVE[@]}"
echo "serve.sh: archived $WORK_DIR/model_store/$NAME.mar" >&2

# The workers write each model's initialization record here, and ts-health reads it from here:
# a probe started from another shell needs the same directory (exported below, printed here).
export TS_HEALTH_STATE_DIR=${TS_HEALTH_STATE_DIR:-$WORK_DIR/health-state}

cat >&2 <<HINT
serve.sh: starting TorchServe (logs in $WORK_DIR/logs); once up, try:
  curl -s http://127.0.0.1:8080/ping
  curl -s http://127.0.0.1:8080/predictions/$NAME -H "Content-Type: text/plain" --data-binary hello
  curl -s "http://127.0.0.1:8081/models/$NAME?customized=true"
  TS_HEALTH_STATE_DIR=$TS_HEALTH_STATE_DIR ts-health status $NAME
HINT

cd "$WORK_DIR"  # key_file.json (with token auth on) is written to the working directory
export LOG_LOCATION="$WORK_DIR/logs" METRICS_LOCATION="$WORK_DIR/logs"
# TorchServe keeps its pid file and worker sockets in the temp dir: one per example.
export TEMP="$WORK_DIR/tmp" TMPDIR="$WORK_DIR/tmp"
unset TS_CONFIG_FILE
exec "${BIN}torchserve" --start --foreground --ncs \
  --ts-config "$CONFIG" --model-store "$WORK_DIR/model_store" --models "$NAME=$NAME.mar"
