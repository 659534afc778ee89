#!/usr/bin/env bash
# Run every test (unit and integration against a real TorchServe) with coverage, then the
# unit tests on Python 3.9 and 3.13.
# Does all the set-up itself; extra arguments go to pytest (e.g. tests/unit -k config).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# `coverage run` rather than pytest-cov: our pytest11 plugin imports the package before
# pytest-cov would start measuring.
set +e
.venv/bin/python -m coverage run -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure here" >&2
  exit 1
fi
if [ "$#" -eq 0 ]; then
  # The whole suite must cover at least 90 % of the library's lines.
  .venv/bin/python -m coverage report --fail-under=90 || { [ "$status" -ne 0 ] || status=1; }
  # And the unit tests on Python 3.9 and 3.13 (no torch there: what needs it is skipped).
  bash scripts/test-other-pythons.sh || { [ "$status" -ne 0 ] || status=1; }
else
  .venv/bin/python -m coverage report
fi
exit "$status"
