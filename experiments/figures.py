"""The paper's figures and the alignment and faithfulness scores of each config's median seed
(by test WER) of a sweep, e.g. the one experiments/table1.py trained.

    python experiments/figures.py --workdir runs/table1 --out figures [--seeds 5]

Writes OUT/<config>/ (the figures and analysis.json of `slt-jax analyze`, docs/interpretability.md).
"""

import argparse
import json
from pathlib import Path

from slt_jax.analysis.report import analyze
from slt_jax.pipelines.designs import PAPER_CONFIGS
from slt_jax.pipelines.reproduce import median_seed
from slt_jax.pipelines.sweep import seed_dirs

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--workdir", required=True, help="a sweep's workdir")
parser.add_argument("--out", required=True, type=Path)
parser.add_argument("--seeds", type=int, default=5)
parser.add_argument("--configs", default=",".join(PAPER_CONFIGS))
args = parser.parse_args()

for name in args.configs.split(","):
    runs = seed_dirs(args.workdir, name, args.seeds)
    run = runs[median_seed([json.loads((r / "eval_test.json").read_text()) for r in runs])]
    results = analyze(run, "test", args.out / name)
    scores = {key: results[key] for key in ("wer", "exact_match", "diagonality", "alignment_accuracy", "deletion_gap")}
    print(f"{name} ({run.name}) -> {args.out / name}: {json.dumps(scores)}")
