"""Feature ablations: what each input-feature option buys, seeds vmapped per variant.

A variant is a '+'-joined list of the options in VARIANT_OPTIONS, e.g. `body+hands+velocity`;
`raw` is the authors' features. Each variant is the base config with those feature fields set
(the others at the authors' values) and its own name, trained and scored like a sweep
(`slt_jax.pipelines.sweep.sweep_config`). Layout under the workdir:

  <base>-<variant>/            the variant's sweep: seed_<k>/ are normal runs
  ablation.md, ablation.csv    per variant: feature count, WER, exact match and alignment scores,
                               mean ± std over seeds (rewritten after each variant)

The alignment scores come from `slt_jax.analysis.alignment`, teacher-forced (references fed,
causal mode) so that every variant is scored on the same samples and glosses; they equal the
`teacher_forced` scores of `slt-jax analyze` on a seed's run.

jax is imported inside the functions that train or decode, so that `slt-jax --help` stays instant.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from slt_jax.cli_args import (SCORED_SPLITS, add_data, add_epochs, add_overrides, add_quiet, add_recipe, add_seeds,
                              add_split, add_workdir, epoch_cap, examples)
from slt_jax.config import PRESETS, Config, DataConfig
from slt_jax.layout import write_text

VARIANT_OPTIONS = {
    "raw": {},
    "body": {"body_norm": "sequence"},
    "body_frame": {"body_norm": "frame"},
    "hands": {"hand_norm": True},
    "velocity": {"velocity": True},
    "presence": {"hand_presence": True},
    "z": {"use_3d": True},
}
VARIANT_HELP = {  # what each option feeds the model (docs/features.md has the formulas)
    "raw": "the authors' features: body and hand points, x and y as MediaPipe gives them",
    "body": "every point centred on the shoulders and measured in shoulder widths, averaged over the clip",
    "body_frame": "the same, with each frame's own shoulders",
    "hands": "adds each hand's points relative to its wrist, in palm sizes",
    "velocity": "adds every value's change from the previous frame",
    "presence": "adds one flag per hand: 1 where it was detected",
    "z": "adds MediaPipe's depth, z, to every point",
}
FEATURE_FIELDS = ("use_3d", "body_norm", "hand_norm", "velocity", "hand_presence")
# (key, column title) of every scored value; the alignment ones are teacher-forced.
METRICS = (("wer", "WER"), ("exact_match", "exact match"), ("diagonality", "diagonality"),
           ("monotonicity", "monotonicity"), ("alignment_accuracy", "alignment accuracy"))


def variant_config(base: Config, variant: str) -> Config:
    """`base` with the variant's feature options, the other feature fields as the authors'.

    Args:
      base: the config every variant shares (model, training, the rest of the data fields).
      variant: options of VARIANT_OPTIONS joined by '+', e.g. "body+hands".

    Returns:
      The variant's config, named "<base name>-<variant>".
    """
    options = {f: getattr(DataConfig(), f) for f in FEATURE_FIELDS}
    for name in variant.split("+"):
        if name not in VARIANT_OPTIONS:
            raise ValueError(f"unknown feature option {name!r} in variant {variant!r}; "
                             f"choose from {', '.join(VARIANT_OPTIONS)}")
        options |= VARIANT_OPTIONS[name]
    return base.replace(name=f"{base.name}-{variant}", data=dataclasses.replace(base.data, **options))


def alignment_scores(workdir, split: str = "test", data_dir=None) -> dict[str, float | None]:
    """How well one run's cross-attention aligns glosses with frames, references fed.

    Returns:
      diagonality and monotonicity averaged over the samples with two glosses or more;
      alignment_accuracy, the share of glosses whose most attended frame lies in its annotated
      span (None when the corpus has no spans).
    """
    import jax

    from slt_jax import data
    from slt_jax.analysis import alignment as al
    from slt_jax.analysis.record import extract_attention
    from slt_jax.train import load_run

    run = load_run(workdir)
    data_dir = data_dir or run.data_dir
    examples = data.load_examples(data_dir, split, run.config.data, run.vocab)
    values = {"diagonality": [], "monotonicity": [], "hits": [], "known": []}
    for batch in data.make_batches(examples, run.config.data, run.config.train.batch_size):
        record = extract_attention(run.params, batch, "causal", teacher_forced=True)
        attention_BxSxT = record.cross_pattern_BxSxHxT.mean(axis=2)  # heads averaged, as the paper
        args = (attention_BxSxT, record.frame_mask_BxT, record.length_B - 1)  # glosses: <eos> step excluded
        hits, known = jax.vmap(al.alignment_hits)(*args[:2], record.gloss_spans_BxSx2, args[2])
        scored = {"diagonality": jax.vmap(al.diagonality)(*args), "monotonicity": jax.vmap(al.monotonicity)(*args),
                  "hits": hits, "known": known}
        for key, v in scored.items():
            values[key].append(np.asarray(v)[batch["sample_mask"]])
    merged = {k: np.concatenate(v) for k, v in values.items()}
    mean = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else None
    known = merged["known"].sum()
    return {"diagonality": mean(merged["diagonality"]), "monotonicity": mean(merged["monotonicity"]),
            "alignment_accuracy": float(merged["hits"].sum() / known) if known else None}


def ablation_table(results: dict[str, dict]) -> tuple[str, str]:
    """Markdown and CSV: per variant its feature count, seeds and each metric's mean ± std.

    Args:
      results: per variant, {"n_features": int, "seeds": [per-seed dict of METRICS]}; a metric
        that is None for every seed is left blank.
    """
    from slt_jax.pipelines.sweep import mean_std

    titles = [title for _, title in METRICS]
    md = ["| variant | features | seeds | " + " | ".join(f"{t} (mean ± std)" for t in titles) + " |",
          "|---|---|---|" + "---|" * len(METRICS)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["variant", "n_features", "seeds"] + [f"{k}_{s}" for k, _ in METRICS for s in ("mean", "std")])
    for variant, result in results.items():
        cells, row = [], []
        for key, _ in METRICS:
            known = [s[key] for s in result["seeds"] if s.get(key) is not None]
            mean, std = mean_std(known) if known else (None, None)
            cells.append("" if mean is None else f"{mean:.3f} ± {std:.3f}")
            row += ["" if mean is None else mean, "" if std is None else std]
        md.append(f"| {variant} | {result['n_features']} | {len(result['seeds'])} | " + " | ".join(cells) + " |")
        writer.writerow([variant, result["n_features"], len(result["seeds"])] + row)
    return "\n".join(md) + "\n", buf.getvalue()


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
    from slt_jax.pipelines.sweep import seed_dirs, sweep_config

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


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "ablate", help="compare input-feature variants, seeds vmapped per variant; write ablation.md",
        description="Train each feature variant (the base config with those options; docs/features.md) "
        "for --seeds seeds as one vmapped program, score every seed, and write ablation.md / "
        "ablation.csv: WER, exact match and teacher-forced alignment scores, mean ± std over seeds. "
        "Options, joined by '+' within a variant: "
        + "; ".join(f"{name} ({text})" for name, text in VARIANT_HELP.items()) + ".",
        **examples("slt-jax ablate --data corpus/ --workdir ablation/ --variants raw,body,body+hands --seeds 3"))
    add_data(p)
    p.add_argument("--base", default="gloss16", choices=sorted(PRESETS), help="base preset (default: %(default)s)")
    p.add_argument("--variants", default="raw,body,body+hands,body+hands+velocity",
                   help="comma-separated variants (default: %(default)s)")
    add_seeds(p, per="variant")
    add_workdir(p, help="where the runs and the table go")
    add_split(p, "score", SCORED_SPLITS)
    add_epochs(p)
    add_recipe(p)
    add_overrides(p, help="override a field of the base config; the variant decides the feature fields")
    add_quiet(p)
    p.set_defaults(run=_ablate, resolve_configs=lambda args: [variant_config(_base(args), v) for v in args.variants.split(",")])


def _base(args) -> Config:
    from slt_jax.config import get_config

    return get_config(args.base, [*args.overrides, *epoch_cap(args.epochs)], args.recipe)


def _ablate(args) -> None:
    ablate(_base(args), args.variants.split(","), args.data, args.workdir, args.seeds, args.split, progress=not args.quiet)
    print((Path(args.workdir) / "ablation.md").read_text(encoding="utf-8"))
