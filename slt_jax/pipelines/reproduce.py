"""`slt-jax reproduce`: the paper end to end on one corpus, as one report.

Steps, each reused when a previous run finished it:
  1. the corpus: a synthetic preset made with `slt-jax synth`, or a folder in the converted layout;
  2. per config, in order: its seeds trained as one vmapped program and evaluated, then analysed
     (`slt-jax analyze`) on the test split;
  3. the six conclusions of the paper (§6) as measured checks: mean, 95% intervals over seeds and
     over test samples, and a verdict (holds, fails or inconclusive) read off the interval;
  4. `index.html` and `report.md`, with the median seed's figures per config, written after every
     config (a banner names the configs still training), so the first results come in minutes.

Besides the paper's four configs the main job trains gloss16 on normalised features
(`gloss16-normalised`, config.VARIANTS), the project's own finding; no check reads it.
"""

from __future__ import annotations

import json
import platform
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from slt_jax.analysis.report import analyze
from slt_jax.analysis.viewer import ensure_viewer
from slt_jax.config import DEFAULT_RECIPE, Config, recipe_name, run_config
from slt_jax.layout import write_json, write_text
from slt_jax.pipelines.claims import check_claims
from slt_jax.pipelines.designs import MAIN_JOB_CONFIGS, MAIN_JOB_SEEDS
from slt_jax.pipelines.page import render_html, render_markdown
from slt_jax.pipelines.study import load_study
from slt_jax.pipelines.sweep import ensure_corpus, seed_dirs, sweep_config, training_status, write_table1
from slt_jax.runs import cached_results


def main_job_configs(names, recipe: str | None = DEFAULT_RECIPE, seed: int = 0, epochs: int | None = None) -> list[Config]:
    """The configs `reproduce` trains, in order."""
    return [run_config(name, recipe, seed, epochs) for name in names]


def undertrained_note(status: dict[str, list[dict]], cap: int | None) -> str | None:
    """A warning when the epoch cap ended some runs, or None."""
    runs = [s for per_seed in status.values() for s in per_seed]
    capped = [s for s in runs if s["capped"]]
    if not capped:
        return None
    late = sum(s["best_epoch"] > 0.8 * s["epochs"] for s in capped)
    return (f"{len(capped)} of {len(runs)} runs stopped at the {cap}-epoch cap before early stopping, "
            f"{late} of them with their best validation score in the last fifth of their epochs: these models "
            f"are under-trained, and Table 1, the checks and the figures describe under-trained models. "
            f"`slt-jax reproduce --epochs 0` trains to early stopping (docs/reproduce.md).")


def _previous_timings(previous_summary: Path) -> dict[str, float]:
    """Seconds per step of the earlier reproduce runs into this folder: a rerun reuses finished
    steps, so its own timings alone would hide what the work cost."""
    return json.loads(previous_summary.read_text()).get("timings_all_runs", {}) if previous_summary.exists() else {}


def _analyze_all(configs, runs_dir: Path, out: Path, seeds: int, progress: bool) -> dict[str, list[dict]]:
    def analysis(config_name: str, k: int, run: Path, drawing) -> dict | Future:
        target = out / "analysis" / config_name / f"seed_{k}"
        ensure_viewer(run, target)  # viewer.html (docs/viewer.md): a second or two, redone only for new parameters
        return cached_results(target / "analysis.json", run) or analyze(run, "test", target, progress=progress,
                                                                          draw_in=drawing)

    # Each run's figures are drawn in a second thread while the next run computes (docs/benchmarks.md).
    with ThreadPoolExecutor(1) as drawing:
        pending = {config.name: [analysis(config.name, k, run, drawing)
                                 for k, run in enumerate(seed_dirs(runs_dir, config.name, seeds))] for config in configs}
    return {name: [a.result() if isinstance(a, Future) else a for a in per_seed] for name, per_seed in pending.items()}


def median_seed(scores: list[dict]) -> int:
    order = np.argsort([s["wer"] for s in scores], kind="stable")
    return int(order[(len(order) - 1) // 2])


def describe_recipe(tc) -> str:
    """One line on how the models were optimised: the recipe's name and its fields."""
    schedule = {"constant": "constant", "cosine": f"cosine decay to {tc.final_lr_fraction:g}x over {tc.decay_steps} "
                "updates", "rsqrt": "inverse-square-root decay"}[tc.schedule]
    warmup = f" after {tc.warmup_steps} warm-up updates" if tc.warmup_steps else ""
    clip = f", gradients clipped to norm {tc.clip_norm:g}" if tc.clip_norm else ""
    return (f"recipe `{recipe_name(tc)}`: Adam at {tc.learning_rate:g}{warmup}, {schedule}{clip}; early stopping "
            f"after {tc.patience} epochs without a better {tc.early_stop_metric}")


def reproduce(out, corpus: str = "small", seeds: int = MAIN_JOB_SEEDS, configs=MAIN_JOB_CONFIGS,
              epochs: int | None = None, seed: int = 0, recipe: str = DEFAULT_RECIPE, progress: bool = True) -> dict:
    """Runs the whole reproduction into `out`, rewriting the report after every config, and
    returns what the final report shows.

    Args:
      out: output folder (index.html, report.md, table1.*, runs/, analysis/, corpus_<preset>/).
      corpus: a synthetic preset (tiny, small, gsl) or a corpus folder.
      seeds: seeds per config, trained together with vmap.
      configs: config names (config.get_config), in the order they train.
      epochs: cap on training epochs; 0 or None: early stopping alone.
      seed: seed of the corpus and of the first training seed.
      recipe: the training recipe (config.RECIPES).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings, before = {}, _previous_timings(out / "summary.json")

    def timed(name, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        return result

    corpus_dir = timed("corpus", ensure_corpus, corpus, out, seed, progress)
    config_list = main_job_configs(configs, recipe, seed, epochs)
    scores, analyses = {}, {}
    for done, config in enumerate(config_list, start=1):
        scores[config.name] = timed("train + evaluate", sweep_config, config, corpus_dir, out / "runs", seeds, "test",
                                    progress)
        analyses |= timed("analyze", _analyze_all, [config], out / "runs", out, seeds, progress)
        md = write_table1(out, scores)
        training = training_status(config_list[:done], out / "runs", seeds, epochs)
        summary = {
            "corpus": str(corpus_dir), "seeds": seeds, "configs": list(configs), "epochs": epochs or None,
            "still_training": [c.name for c in config_list[done:]],
            "recipe": describe_recipe(config_list[0].train), "table1": md,
            "scores": scores, "claims": check_claims(analyses),
            "median_seed": {name: median_seed(s) for name, s in scores.items()},
            "analyses": analyses, "training": training, "undertrained": undertrained_note(training, epochs),
            "study": load_study(out / "study"),
            "timings": dict(timings), "timings_all_runs": {k: before.get(k, 0.0) + v for k, v in timings.items()},
            "machine": f"{platform.machine()}, {platform.python_version()}",
        }
        write_json(out / "summary.json", summary)
        write_text(out / "report.md", render_markdown(summary))
        write_text(out / "index.html", render_html(summary, out))
    return summary

