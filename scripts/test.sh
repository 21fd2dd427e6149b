#!/usr/bin/env bash
# The test suite, on a fresh machine with only Python and pip.
#   .venv          the core package with its dev extra: every test
#   .venv-extract  the `extract` extra (mediapipe 0.10.21, numpy<2, jax 0.7.x): the tests that
#                  need mediapipe, and the core's tests again on that older stack's numpy/jax
# Each environment is created on first use and reused afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

venv() {  # venv DIR EXTRAS: create or reuse DIR with the package installed editable
  if [ ! -x "$1/bin/python" ]; then "$PYTHON" -m venv "$1"; fi
  "$1/bin/python" -m pip install -q --disable-pip-version-check -e ".[$2]"
}

venv .venv dev
.venv/bin/python -m pytest -q "$@"

if [ "${SLT_SKIP_EXTRACT_ENV:-0}" != 1 ]; then
  venv .venv-extract extract,dev
  .venv-extract/bin/python -m pytest -q -m extract_env "$@"
  .venv-extract/bin/python -m pytest -q tests/test_model.py tests/test_train.py "$@"
fi
