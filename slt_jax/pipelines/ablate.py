"""Feature ablations: what each input-feature option buys, seeds vmapped per variant.

A variant is a '+'-joined list of feature options (`designs.VARIANT_OPTIONS`), e.g.
`body+hands+velocity`; `raw` is the authors' features. Each variant is the base config with those feature fields set
(the others at the authors' values) and its own name, trained and scored like a sweep
(`slt_jax.pipelines.sweep.sweep_config`). Layout under the workdir:

  <base>-<variant>/            the variant's sweep: seed_<k>/ are normal runs
  ablation.md, ablation.csv    per variant: feature count, WER, exact match and alignment scores,
                               mean ± std over seeds (rewritten after each variant)

The alignment scores come from `slt_jax.analysis.alignment`, teacher-forced (references fed,
causal mode) so that every variant is scored on the same samples and glosses; they equal the
`teacher_forced` scores of `slt-jax analyze` on a seed's run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import jax
import numpy as np

from slt_jax import data
from slt_jax.analysis import alignment as al
from slt_jax.analysis.record import extract_attention
from slt_jax.config import Config
from slt_jax.layout import write_text
from slt_jax.pipelines.designs import variant_config
from slt_jax.pipelines.sweep import seed_dirs, sweep_config
from slt_jax.pipelines.tables import csv_text, known, markdown_table, mean_std
from slt_jax.runs import load_run

# (key, column title) of every scored value; the alignment ones are teacher-forced.
METRICS = (("wer", "WER"), ("exact_match", "exact match"), ("diagonality", "diagonality"),
           ("monotonicity", "monotonicity"), ("alignment_accuracy", "alignment accuracy"))


def alignment_scores(workdir, split: str = "test", data_dir=None) -> dict[str, float | None]:
    """How well one run's cross-attention aligns glosses with frames, references fed.

    Returns:
      diagonality and monotonicity averaged over the samples with two glosses or more;
      alignment_accuracy, the share of glosses whose most attended frame lies in its annotated
      span (None when the corpus has no spans).
    """
    run = load_run(workdir)
    data_dir = data_dir or run.data_dir
    examples = data.load_examples(data_dir, split, run.config.data, run.vocab)
    values = {"diagonality": [], "monotonicity": [], "hits": [], "known": []}
    for batch in data.make_batches(examples, run.config.data, run.config.train.batch_size):
        record = extract_attention(run.params, batch, "causal", teacher_forced=True)
        attention_BxSxT = record.cross_pattern_BxSxHxT.mean(axis=2)  # heads averaged, as the paper
        args = (attention_BxSxT, record.frame_mask_BxT, record.length_B - 1)  # glosses: <eos> step excluded
        hits, spanned = jax.vmap(al.alignment_hits)(*args[:2], record.gloss_spans_BxSx2, args[2])
        scored = {"diagonality": jax.vmap(al.diagonality)(*args), "monotonicity": jax.vmap(al.monotonicity)(*args),
                  "hits": hits, "known": spanned}
        for key, v in scored.items():
            values[key].append(np.asarray(v)[batch["sample_mask"]])
    merged = {k: np.concatenate(v) for k, v in values.items()}
    mean = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else None
    spanned = merged["known"].sum()
    return {"diagonality": mean(merged["diagonality"]), "monotonicity": mean(merged["monotonicity"]),
            "alignment_accuracy": float(merged["hits"].sum() / spanned) if spanned else None}


def ablation_table(results: dict[str, dict]) -> tuple[str, str]:
    """Markdown and CSV: per variant its feature count, seeds and each metric's mean ± std.

    Args:
      results: per variant, {"n_features": int, "seeds": [per-seed dict of METRICS]}; a metric
        that no seed measured is left blank.
    """
    md = [["variant", "features", "seeds", *(f"{title} (mean ± std)" for _, title in METRICS)]]
    csv_rows = [["variant", "n_features", "seeds", *(f"{k}_{s}" for k, _ in METRICS for s in ("mean", "std"))]]
    for variant, result in results.items():
        cells, row = [], []
        for key, _ in METRICS:
            values = known(s.get(key) for s in result["seeds"])
            mean, std = mean_std(values) if values else ("", "")
            cells.append(f"{mean:.3f} ± {std:.3f}" if values else "")
            row += [mean, std]
        md.append([variant, str(result["n_features"]), str(len(result["seeds"])), *cells])
        csv_rows.append([variant, result["n_features"], len(result["seeds"]), *row])
    return markdown_table(md), csv_text(csv_rows)


def ablate(base: Config, variants: Sequence[str], data_dir, workdir, seeds: int, split: str = "test",
           progress: bool = True) -> dict[str, dict]:
    """Trains every variant's seeds as one vmapped program, scores them, writes the table.

    Args:
      base: the shared config (e.g. the gloss16 preset with overrides).
      variants: e.g. ["raw", "body", "body+hands"]; all are checked before any training.
      data_dir: a corpus in the converted layout.
      workdir: where the runs and ablation.md / ablation.csv go.
      seeds: seeds per variant.
      split: the split to score.

    Returns:
      Per variant, {"n_features", "seeds": per-seed WER, exact match and alignment scores}.
    """
    configs = {v: variant_config(base, v) for v in variants}
    results = {}
    for variant, config in configs.items():
        scores = sweep_config(config, data_dir, workdir, seeds, split, progress)
        runs = seed_dirs(workdir, config.name, seeds)
        results[variant] = {"n_features": config.data.n_features,
                            "seeds": [s | alignment_scores(r, split, data_dir) for s, r in zip(scores, runs)]}
        md, table_csv = ablation_table(results)
        write_text(Path(workdir) / "ablation.md", md)
        write_text(Path(workdir) / "ablation.csv", table_csv)
    return results

