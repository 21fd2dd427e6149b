"""Table 1 of the paper on a prepared corpus: the four configs trained to early stopping (no
epoch cap, as the authors did), several seeds each, every config's seeds as one vmapped program.

    python experiments/table1.py --data data/gsl --workdir runs/table1 [--seeds 5]

Prepare the real GSL first (`slt-jax prepare gsl`, docs/inputs.md). The same code runs on a GPU
or TPU (BUILD.md); several local devices share each batch. Rerun to resume.
"""

import argparse
from pathlib import Path

from slt_jax.config import get_config
from slt_jax.hostmem import reuse_freed_memory
from slt_jax.pipelines.designs import PAPER_CONFIGS
from slt_jax.pipelines.sweep import sweep

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data", required=True, help="corpus in the converted layout")
parser.add_argument("--workdir", required=True, help="runs go to WORKDIR/<config>/seed_<k>/")
parser.add_argument("--seeds", type=int, default=5)
parser.add_argument("--configs", default=",".join(PAPER_CONFIGS))
parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="config overrides for every config, e.g. train.max_epochs=300")
args = parser.parse_args()
reuse_freed_memory()  # as `slt-jax` does, before the first JAX computation

sweep([get_config(name, args.set) for name in args.configs.split(",")], args.data, args.workdir, args.seeds)
print((Path(args.workdir) / "table1.md").read_text())
