"""Seed sweeps: each config's seeds trained as one vmapped program, then Table 1; the steps every
pipeline shares (the corpus, the runs' training status).

Layout under the sweep's workdir:

  <config>/                 shared state of the vmapped training (config, vocab, checkpoints/latest)
  <config>/seed_<k>/        seed k as a normal run: `load_run` and `slt-jax evaluate` read it
  table1.md, table1.csv     WER and exact match per config, mean ± std over seeds (exact match also
                            with its 95% interval over the test samples), beside the paper
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from slt_jax.analysis.intervals import binomial_interval
from slt_jax.config import Config
from slt_jax.evaluate import evaluate
from slt_jax.layout import write_text
from slt_jax.pipelines.tables import brackets, csv_text, markdown_table, mean_std
from slt_jax.runs import cached_results
from slt_jax.synth.corpus import write_corpus
from slt_jax.synth.presets import PRESETS
from slt_jax.train import fit, lower_is_better

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


def table1(results: dict[str, list[dict]]) -> tuple[str, str]:
    """Markdown and CSV of WER and exact match per config, mean ± std over seeds, and the exact
    match's 95% interval over the n test samples (Wilson's, of the seeds' mean as a share of n:
    the test set's own error, which seeds scored on the same samples do not average away)."""
    md = [["config", "seeds", "WER (mean ± std)", "exact match (mean ± std)", "exact match, 95% over test samples",
           "paper WER"]]
    csv_rows = [["config", "seeds", "wer_mean", "wer_std", "exact_match_mean", "exact_match_std", "paper_wer",
                 "exact_match_lo95", "exact_match_hi95"]]
    for name, scores in results.items():
        wer, em = mean_std([s["wer"] for s in scores]), mean_std([s["exact_match"] for s in scores])
        interval = binomial_interval(em[0], scores[0]["n"]) if "n" in scores[0] else None
        paper = PAPER_WER.get(name)
        md.append([name, str(len(scores)), f"{wer[0]:.3f} ± {wer[1]:.3f}", f"{em[0]:.3f} ± {em[1]:.3f}",
                   brackets(interval), "" if paper is None else f"{paper:.2f}"])
        csv_rows.append([name, len(scores), *wer, *em, "" if paper is None else paper, *(interval or ("", ""))])
    return markdown_table(md), csv_text(csv_rows)


def write_table1(folder, results: dict[str, list[dict]]) -> str:
    """Writes table1.md and table1.csv into `folder`; returns the markdown."""
    md, table_csv = table1(results)
    write_text(Path(folder) / "table1.md", md)
    write_text(Path(folder) / "table1.csv", table_csv)
    return md


def sweep(configs: list[Config], data_dir, workdir, seeds: int, split: str = "test",
          progress: bool = True) -> dict[str, list[dict]]:
    """Sweeps every config and writes table1.md and table1.csv into `workdir`."""
    results = {c.name: sweep_config(c, data_dir, workdir, seeds, split, progress) for c in configs}
    write_table1(workdir, results)
    return results


def ensure_corpus(corpus: str, out: Path, seed: int, progress: bool) -> Path:
    """A corpus folder, or a synthetic preset (slt_jax.synth.presets) made under out/corpus_<preset>
    (resumed if a run was interrupted)."""
    if corpus not in PRESETS:
        return Path(corpus)
    path = out / f"corpus_{corpus}"
    if not (path / "annotations.csv").exists():
        write_corpus(path, PRESETS[corpus], seed, workers=os.cpu_count() or 1, progress=progress)
    return path


def training_status(configs, runs_dir: Path, seeds: int, cap: int | None) -> dict[str, list[dict]]:
    """Per config and seed: epochs trained (to its early stop; the vmapped loop runs on until
    every seed has stopped), the epoch of the kept parameters (best `train.best_metric`) and
    whether the epoch cap, not early stopping, ended its training."""
    status = {}
    for config in configs:
        metric = config.train.best_metric
        status[config.name] = []
        for run in seed_dirs(runs_dir, config.name, seeds):
            lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
            stop = next((line["epoch"] for line in lines if line.get("stopped_early")), None)
            lines = lines[:stop]
            best = min(lines, key=lambda line: lower_is_better(metric, line[metric]))
            status[config.name].append({"epochs": len(lines), "best_epoch": best["epoch"],
                                        "capped": stop is None and bool(cap) and len(lines) >= cap})
    return status
