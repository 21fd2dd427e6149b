"""The analysis stage of `slt-jax reproduce`: `analyze` on the test split of every seed of every
config, one after the other in one process, as reproduce runs it (a config's seeds share its
compiled programs). Times each run (wall and CPU seconds) and the whole stage; with --viewer
each run also writes its viewer page first, as reproduce does. As in reproduce, a run's figures
are drawn in a second thread while the next run computes, so a run's time leaves them out and
the stage's holds them.

    python benchmarks/analysis_speed.py --runs out/runs [--configs gloss16,gloss32,gloss64,text16]
        [--seeds 2] [--viewer] [--keep DIR] [--against DIR] [--out benchmarks/analysis_results.json]

`--runs` is a sweep folder (`slt-jax sweep` or reproduce's runs/: <config>/seed_<k>). `--keep`
leaves the analyses in DIR/<config>/seed_<k>; `--against` compares each analysis.json with the
one of a previous `--keep` (e.g. made by the code before a change, with PYTHONPATH pointing at
it): every number must agree to 1e-4 relative (float noise), every other value exactly.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from slt_jax.layout import write_json


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def differences(a, b, path: str = "") -> tuple[list[str], float]:
    """Keys whose values differ beyond float noise, and the largest absolute difference of the numbers."""
    if isinstance(a, dict) and isinstance(b, dict):
        pairs = [(a.get(k), b.get(k), f"{path}/{k}") for k in sorted(set(a) | set(b)) if k != "run"]
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = [(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))]
    elif _number(a) and _number(b):
        if math.isnan(a) or math.isnan(b):
            return ([] if math.isnan(a) and math.isnan(b) else [path]), 0.0
        return ([] if math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) else [path]), abs(a - b)
    else:
        return ([] if a == b else [path]), 0.0
    bad, largest = [], 0.0
    for x, y, p in pairs:
        more, difference = differences(x, y, p)
        bad, largest = bad + more, max(largest, difference)
    return bad, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, type=Path, help="sweep folder: <config>/seed_<k>")
    parser.add_argument("--configs", default="gloss16,gloss32,gloss64,text16")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--viewer", action="store_true", help="also write each run's viewer page, as reproduce does")
    parser.add_argument("--keep", type=Path, help="write the analyses here (default: a temporary folder)")
    parser.add_argument("--against", type=Path, help="a previous --keep folder to compare analysis.json with")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/analysis_results.json"))
    args = parser.parse_args()

    start = time.perf_counter()
    from slt_jax.analysis.report import analyze  # imports jax, flax, matplotlib: timed apart

    if args.viewer:
        from slt_jax.analysis.viewer import write_viewer
    import_s = time.perf_counter() - start
    # As reproduce: each run's figures drawn in a second thread while the next run computes
    # (where analyze offers it; the code before the speed-up drew in turn).
    deferred = "draw_in" in inspect.signature(analyze).parameters
    load = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory(prefix="analysis_speed_") as tmp:
        out = args.keep or Path(tmp)
        stage = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(1) as drawing:
            for config in args.configs.split(","):
                for k in range(args.seeds):
                    run, target = args.runs / config / f"seed_{k}", out / config / f"seed_{k}"
                    wall, cpu = time.perf_counter(), time.process_time()
                    if args.viewer:
                        write_viewer(run, "test", target)
                    analyze(run, "test", target, progress=False, **({"draw_in": drawing} if deferred else {}))
                    runs.append({"config": config, "seed": k, "wall_s": time.perf_counter() - wall,
                                 "cpu_s": time.process_time() - cpu, "load_average": os.getloadavg()[0]})
                    print(f"{config} seed {k}: {runs[-1]['wall_s']:.1f} s wall, {runs[-1]['cpu_s']:.1f} s CPU"
                          + (" (its figures drawn meanwhile)" if deferred else "")
                          + f", load {runs[-1]['load_average']:.1f}", flush=True)
        stage_wall, stage_cpu = time.perf_counter() - stage[0], time.process_time() - stage[1]
        for row in runs if args.against else ():
            name = Path(row["config"]) / f"seed_{row['seed']}" / "analysis.json"
            read = lambda folder: json.loads((folder / name).read_text())
            row["mismatches"], row["largest_difference"] = differences(read(args.against), read(out))
            print(f"{row['config']} seed {row['seed']}: {len(row['mismatches'])} mismatches "
                  f"{row['mismatches'][:5]} (largest difference {row['largest_difference']:.1e})")
    results = {"runs_dir": str(args.runs), "configs": args.configs, "seeds": args.seeds, "viewer": args.viewer,
               "figures_drawn_meanwhile": deferred,
               "import_s": import_s, "stage_wall_s": stage_wall, "stage_cpu_s": stage_cpu, "runs": runs,
               "load_average_before": load, "load_average_after": os.getloadavg()[0], "cores": os.cpu_count(),
               "machine": f"{platform.machine()}, Python {platform.python_version()}"}
    write_json(args.out, results)
    print(f"stage: {stage_wall:.1f} s wall, {stage_cpu:.1f} s CPU for {len(runs)} runs"
          + (" with viewer pages" if args.viewer else "") + f" (import {import_s:.1f} s); load average "
          f"{load:.1f} before, {results['load_average_after']:.1f} after, {os.cpu_count()} cores")

if __name__ == "__main__":
    main()
