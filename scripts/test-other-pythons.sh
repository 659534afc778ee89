#!/usr/bin/env bash
# The unit tests on the oldest and the newest supported Python (3.9, as in TorchServe's
# official images, and 3.13), with torchserve but without torch: torch==2.13.0 is built for
# Python 3.11 only, so the few tests that need it are skipped, with the reason shown.
# Called by scripts/test.sh; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {  # pyenv's interpreter of a minor version, else one on PATH that runs
  local version=$1 candidate
  local root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
  for candidate in "$root"/versions/"$version".*/bin/"python$version"; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  # pyenv's bare shims refuse a version that is not selected: try the command, not its name.
  if command -v "python$version" >/dev/null && "python$version" -c "" 2>/dev/null; then
    command -v "python$version"
    return 0
  fi
  return 1
}

status=0
for version in 3.9 3.13; do
  python=$(find_python "$version") || {
    echo "test-other-pythons: no Python $version found (PATH or pyenv); it is required" >&2
    exit 1
  }
  venv=".venv-$version"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
  "${pip[@]}" install "torchserve==0.12.0" pytest pytest-mock hypothesis jsonschema pyyaml
  if [ "${CI:-}" = "true" ] && ls dist/*.whl >/dev/null 2>&1; then
    "${pip[@]}" install --force-reinstall "$(ls dist/*.whl)"  # the wheel CI built
  else
    "${pip[@]}" install -e .
  fi
  echo "== unit tests on $("$venv/bin/python" --version)"
  set +e
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -rs tests/unit "$@"
  code=$?
  set -e
  if [ "$code" -eq 5 ]; then
    echo "test-other-pythons: pytest collected no tests on Python $version" >&2
    code=1
  fi
  [ "$code" -eq 0 ] || status=$code
done
exit "$status"
