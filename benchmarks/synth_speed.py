"""How long `slt-jax synth` takes, and the corpus it makes beside GSL's published statistics.

    python benchmarks/synth_speed.py --preset gsl --workers 2

Writes the corpus to a temporary folder (removed afterwards unless --keep DIR) and prints
markdown tables for docs/corpus.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time

from slt_jax.synth import stats
from slt_jax.synth.corpus import write_corpus
from slt_jax.synth.presets import PRESETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="gsl", choices=list(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", metavar="DIR", help="write the corpus here and keep it")
    args = parser.parse_args()

    root = args.keep or tempfile.mkdtemp(prefix=f"synth_{args.preset}_")
    load = os.getloadavg()[0]
    try:
        start = time.perf_counter()
        write_corpus(root, PRESETS[args.preset], args.seed, args.workers, progress=False)
        seconds = time.perf_counter() - start
        # CPU time is what other jobs on a shared machine do not inflate much.
        cpu = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
                  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        size = sum(f.stat().st_size for f in os.scandir(os.path.join(root, "poses")))
        measured = stats.corpus_statistics(root)
        print(f"preset {args.preset}, seed {args.seed}, {args.workers} workers, {os.cpu_count()} CPUs: "
              f"{seconds:.1f} s for {measured['samples']} samples "
              f"({measured['samples'] / seconds:.0f} samples/s; {cpu:.0f} CPU seconds), "
              f"{size / 2**30:.2f} GiB of poses; load average before {load:.1f}\n")
        print(stats.markdown_table({f"synth {args.preset}": measured, "GSL": stats.GSL}))
        print()
        shares = {f"synth {args.preset}": stats.glosses_per_sentence(root), "GSL": stats.gsl_glosses_per_sentence()}
        print(stats.markdown_table(shares, cell=lambda v: f"{v:.1%}"))
    finally:
        if not args.keep:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
