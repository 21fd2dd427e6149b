"""What attribution costs: each method and each intervention on one batch of a trained run's test
split (the first 50 samples, as `slt_jax.data` batches them), compiled once, then timed over
`--repeats` calls (median wall seconds; the first call's time, compilation included, beside it).

    python benchmarks/attribution_speed.py --run RUN [--samples 50] [--repeats 3]
        [--out benchmarks/attribution_results.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax

from slt_jax import data, features
from slt_jax.analysis import attribution as at
from slt_jax.layout import write_json
from slt_jax.runs import load_run


def timed(fn, repeats: int) -> dict:
    """First call (compiles) and the median of `repeats` more, wall seconds."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        jax.block_until_ready(jax.tree.leaves(fn()))
        times.append(time.perf_counter() - start)
    return {"first_s": round(times[0], 3), "median_s": round(statistics.median(times[1:]), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a trained run (slt-jax train / sweep seed folder)")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/attribution_results.json")
    args = parser.parse_args()
    run = load_run(args.run)
    examples = data.load_examples(run.data_dir, "test", run.config.data, run.vocab)[: args.samples]
    batch = next(iter(data.make_batches(examples, run.config.data, args.samples)))
    parts = features.feature_parts(run.config.data)
    jobs = {m: lambda m=m: at.attribute(run.params, batch, m, parts_F=parts) for m in at.METHODS}
    jobs |= {"sign_deletion": lambda: at.sign_deletion(run.params, batch),
             "head_knockout": lambda: at.head_knockout(run.params, batch),
             "activation_patching": lambda: at.activation_patching(run.params, batch)}
    results = {}
    for name, job in jobs.items():
        results[name] = timed(job, args.repeats)
        print(name, results[name], flush=True)
    write_json(args.out, {"run": str(args.run), "config": run.config.name, "samples": len(examples),
                          "frames": int(batch["frames"].shape[1]), "target_length": int(batch["target"].shape[1]),
                          "ig_steps": at.IG_STEPS, "cpus": os.cpu_count(), "machine": platform.machine(),
                          "load_average_1min": os.getloadavg()[0], "results": results})


if __name__ == "__main__":
    main()
