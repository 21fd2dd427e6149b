"""The paper's text model: text16 trained on a prepared corpus, scored with greedy decoding and
with the authors' beam search (beam 32, BLEU-1..4, chrF, WER), then analysed (Figures 7a-7d).

    python experiments/text_model.py --data data/gsl --workdir runs/text16 [--set train.seed=1]
"""

import argparse

from slt_jax.analysis.report import analyze
from slt_jax.config import get_config
from slt_jax.evaluate import evaluate
from slt_jax.hostmem import reuse_freed_memory
from slt_jax.train import train

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data", required=True, help="corpus in the converted layout")
parser.add_argument("--workdir", required=True, help="the run's folder (rerun to resume)")
parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="config overrides")
args = parser.parse_args()
reuse_freed_memory()  # as `slt-jax` does, before the first JAX computation

train(get_config("text16", args.set), args.data, args.workdir)
for method in ("greedy", "beam"):
    s = evaluate(args.workdir, "test", method=method)
    print(f"{method}: BLEU-1..4 {s['bleu1']:.2f} {s['bleu2']:.2f} {s['bleu3']:.2f} {s['bleu4']:.2f}, "
          f"chrF {s['chrf']:.2f}, WER {s['wer']:.3f}")
analyze(args.workdir, "test")
