#!/usr/bin/env bash
# The main job on the embedded default: `slt-jax reproduce` makes the synthetic GSL-like corpus
# (preset `small`), trains the paper's four configs and gloss16 on normalised features with several
# seeds each (one vmapped program per config), evaluates, analyses the attention and writes
# ${OUT:-out}/index.html, rewritten after every config.
# Creates or reuses .venv. Run it again to reuse finished steps. Extra arguments go to
# `slt-jax reproduce` (see `slt-jax reproduce --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-out}

if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
.venv/bin/slt-jax reproduce --out "$OUT" "$@"
