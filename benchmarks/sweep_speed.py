"""A seed sweep end to end: `slt-jax sweep --seeds N` (the N seeds as one vmapped program)
against N sequential `slt-jax train` + `slt-jax evaluate` runs of the same config, each command
in its own process as a user would type it, on the same corpus and epoch cap.

    python benchmarks/sweep_speed.py --corpus out/corpus_small [--seeds 8] [--epochs 20]

Both sides do the same work (N models, the same epochs, a greedy test evaluation each) and pay
their own compilation; the dropout masks are `reproduce`'s (model.dropout_rng=hash). Prints a
markdown row for docs/benchmarks.md and writes the figures as JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slt_jax.layout import write_json

CLI = [sys.executable, "-m", "slt_jax.cli"]


def timed(commands: list[list[str]]) -> float:
    start = time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="corpus in the converted layout (e.g. out/corpus_small)")
    parser.add_argument("--config", default="gloss16")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/sweep_results.json"))
    args = parser.parse_args()

    common = ["--data", args.corpus, "--epochs", str(args.epochs), "--set", "model.dropout_rng=hash", "--quiet"]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sweep_speed_") as tmp:
        vmapped = timed([CLI + ["sweep", "--configs", args.config, "--seeds", str(args.seeds),
                                "--workdir", f"{tmp}/sweep", *common]])
        sequential = timed([command for k in range(args.seeds) for command in (
            CLI + ["train", "--config", args.config, "--workdir", f"{tmp}/seed_{k}", "--seed", str(k), *common],
            CLI + ["evaluate", "--workdir", f"{tmp}/seed_{k}", "--quiet"])])
    results = {"config": args.config, "seeds": args.seeds, "epochs": args.epochs, "corpus": args.corpus,
               "vmapped_s": vmapped, "sequential_s": sequential, "speedup": sequential / vmapped,
               "load_average_before": load, "load_average_after": os.getloadavg()[0],
               "cores": os.cpu_count(), "machine": f"{platform.machine()}, Python {platform.python_version()}"}
    write_json(args.out, results)
    print(f"| {args.config}, {args.seeds} seeds x {args.epochs} epochs, train + evaluate | "
          f"{sequential:.0f} s | {vmapped:.0f} s | {sequential / vmapped:.2f}x |")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
