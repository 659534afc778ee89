#!/usr/bin/env bash
# Set up everything the demo and the tests need, on a fresh machine: Java 17 (TorchServe's
# frontend), chromium and prometheus (tests of ts-health serve), a virtualenv in .venv with
# the pinned CPU torch, TorchServe, the model archiver, the test tools and this package.
# Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

# System packages: Java for TorchServe's frontend; chromium and prometheus (with promtool)
# for the tests of `ts-health serve`'s status page and alert rules.
MISSING=()
command -v java >/dev/null 2>&1 || MISSING+=(openjdk-17-jre-headless)
command -v chromium >/dev/null 2>&1 || MISSING+=(chromium)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || MISSING+=(prometheus)
if [ "${#MISSING[@]}" -gt 0 ]; then
  echo "setup: installing ${MISSING[*]}" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

# `unshare` (util-linux) runs the simulated kubelet's containers as PID 1 of their own PID
# namespace (tests/integration/test_kubelet.py).
if ! command -v unshare >/dev/null 2>&1; then
  echo "setup: unshare not found; installing util-linux" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq util-linux >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# torch first and pinned: anything unpinned would pull a multi-GB CUDA build.
"${PIP[@]}" install "torch==2.13.0"
"${PIP[@]}" install "torchserve==0.12.0" "torch-model-archiver==0.12.0"

if [ "${CI:-}" = "true" ]; then
  # CI tests the built wheel, not the source tree, so that a packaging slip fails CI.
  rm -rf dist
  "${PIP[@]}" install build
  "$VENV/bin/python" -m build --wheel --outdir dist . >/dev/null
  "${PIP[@]}" install --force-reinstall --no-deps dist/*.whl
  "${PIP[@]}" install "$(ls dist/*.whl)[serve,test]"
else
  "${PIP[@]}" install -e ".[serve,test]"
fi
