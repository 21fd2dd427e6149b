#!/usr/bin/env bash
# The GPU path, ready to run: make an environment with the CUDA build of jax, then on the GPU run
# the model/train/decode/record tests, `python -m benchmarks.run`, a full `slt-jax reproduce
# --corpus gsl` and the vmapped seed sweep against sequential runs (benchmarks/sweep_speed.py);
# figures go to benchmarks/results_gpu.json and a generated section of docs/benchmarks.md.
#
#   bash benchmarks/accelerator.sh [--epochs N]   # a machine with an NVIDIA GPU (driver only, no CUDA toolkit)
#   bash benchmarks/accelerator.sh --cpu --smoke  # the same steps on CPU at smoke size, in minutes
#
# Other options go to `python -m benchmarks.accelerator` (see its --help). Environments: .venv-gpu
# (CUDA jax), or with --cpu the project's .venv as scripts/test.sh makes it; VENV=DIR overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

cpu=0
for arg in "$@"; do
  if [ "$arg" = --cpu ]; then cpu=1; fi
done
if [ $cpu = 1 ]; then
  VENV=${VENV:-.venv}
  packages=(-e ".[dev]")
else
  VENV=${VENV:-.venv-gpu}
  packages=(-e ".[dev]" "jax[cuda12]")  # BUILD.md: pip keeps the CUDA jaxlib beside the package
fi
if [ ! -x "$VENV/bin/python" ]; then "$PYTHON" -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${packages[@]}"
exec "$VENV/bin/python" -m benchmarks.accelerator "$@"
