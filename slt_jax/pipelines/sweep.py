"""Seed sweeps: each config's seeds trained as one vmapped program, then Table 1.

Layout under the sweep's workdir:

  <config>/                 shared state of the vmapped training (config, vocab, checkpoints/latest)
  <config>/seed_<k>/        seed k as a normal run: `load_run` and `slt-jax evaluate` read it
  table1.md, table1.csv     WER and exact match per config, mean ± std over seeds (exact match also
                            with its 95% interval over the test samples), beside the paper
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from slt_jax.analysis.intervals import binomial_interval
from slt_jax.config import Config
from slt_jax.evaluate import evaluate
from slt_jax.layout import write_text
from slt_jax.train import cached_results, fit

# Table 1 of the paper: word error rate on GSL's signer-independent test split.
PAPER_WER = {"gloss16": 0.09, "gloss32": 0.06, "gloss64": 0.08, "text16": 0.10}


def seed_dirs(workdir, config_name: str, seeds: int) -> list[Path]:
    return [Path(workdir) / config_name / f"seed_{k}" for k in range(seeds)]


def sweep_config(config: Config, data_dir, workdir, seeds: int, split: str = "test",
                 progress: bool = True) -> list[dict]:
    """Trains `seeds` seeds of one config together, then scores each seed's best parameters.

    Returns:
      Per seed, the scores of `slt_jax.evaluate.evaluate` on `split`.
    """
    runs = seed_dirs(workdir, config.name, seeds)
    fit(config, data_dir, Path(workdir) / config.name, runs, progress)
    return [_cached_scores(run, split) or evaluate(run, split, progress=progress) for run in runs]


def _cached_scores(run: Path, split: str) -> dict | None:
    """A run's scores on `split` if they come from its best parameters decoded within the length
    bound (scores from before the bound lack `length_bound` and are taken again)."""
    scores = cached_results(run / f"eval_{split}.json", run)
    return scores if scores and "length_bound" in scores else None


def mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def table1(results: dict[str, list[dict]]) -> tuple[str, str]:
    """Markdown and CSV of WER and exact match per config, mean ± std over seeds, and the exact
    match's 95% interval over the n test samples (Wilson's, of the seeds' mean as a share of n:
    the test set's own error, which seeds scored on the same samples do not average away)."""
    md = ["| config | seeds | WER (mean ± std) | exact match (mean ± std) | exact match, 95% over test samples | "
          "paper WER |", "|---|---|---|---|---|---|"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["config", "seeds", "wer_mean", "wer_std", "exact_match_mean", "exact_match_std", "paper_wer",
                     "exact_match_lo95", "exact_match_hi95"])
    for name, scores in results.items():
        wer, em = mean_std([s["wer"] for s in scores]), mean_std([s["exact_match"] for s in scores])
        interval = binomial_interval(em[0], scores[0]["n"]) if "n" in scores[0] else None
        paper = PAPER_WER.get(name)
        md.append(f"| {name} | {len(scores)} | {wer[0]:.3f} ± {wer[1]:.3f} | {em[0]:.3f} ± {em[1]:.3f} | "
                  f"{'–' if interval is None else f'[{interval[0]:.3f}, {interval[1]:.3f}]'} | "
                  f"{'' if paper is None else f'{paper:.2f}'} |")
        writer.writerow([name, len(scores), *wer, *em, "" if paper is None else paper, *(interval or ("", ""))])
    return "\n".join(md) + "\n", buf.getvalue()


def sweep(configs: list[Config], data_dir, workdir, seeds: int, split: str = "test",
          progress: bool = True) -> dict[str, list[dict]]:
    """Sweeps every config and writes table1.md and table1.csv into `workdir`."""
    results = {c.name: sweep_config(c, data_dir, workdir, seeds, split, progress) for c in configs}
    md, table_csv = table1(results)
    write_text(Path(workdir) / "table1.md", md)
    write_text(Path(workdir) / "table1.csv", table_csv)
    return results
