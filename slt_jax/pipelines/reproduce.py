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

import dataclasses
import html
import json
import os
import platform
import re
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from slt_jax.analysis import intervals as iv
from slt_jax.cli_args import MAIN_JOB_CONFIGS, epoch_cap
from slt_jax.config import DEFAULT_RECIPE, VARIANTS, Config, get_config, recipe_name
from slt_jax.features import PARTS
from slt_jax.layout import write_json, write_text
from slt_jax.pipelines.study import load_study, study_tables
from slt_jax.pipelines.sweep import mean_std, seed_dirs, sweep_config, table1
from slt_jax.train import cached_results, lower_is_better

CONFIGS = ("gloss16", "gloss32", "gloss64", "text16")  # the paper's
MAIN_JOB = tuple(MAIN_JOB_CONFIGS.split(","))
SYNTHETIC_PRESETS = ("tiny", "small", "novel", "gsl")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One conclusion of the paper, the quantity that tests it, and when it counts as holding.

    The quantity is a signed sum of analysis.json keys, each read from a config's analyses
    (dotted keys walk into nested ones), seed by seed.
    """

    text: str
    quantity: str
    terms: tuple[tuple[int, str, str], ...]  # (sign, config, key)
    holds: Callable[[float], bool]  # true on one side of a threshold
    rule: str


def _value(analysis: dict, key: str) -> float:
    for part in key.split("."):
        analysis = analysis.get(part) if isinstance(analysis, dict) else None
    return np.nan if analysis is None else float(analysis)


def _per_seed(claim: Claim, analyses: dict[str, list[dict]]) -> list[float]:
    """The quantity per seed (seed k of every config it reads; the fewest seeds set the count)."""
    columns = [[sign * _value(a, key) for a in analyses.get(config, [])] for sign, config, key in claim.terms]
    return [float(sum(seed)) for seed in zip(*columns)]


def _pooled_bootstrap(claim: Claim, analyses: dict[str, list[dict]]) -> iv.Interval | None:
    """The seed mean's 95% interval over the test samples: one resample of the split's samples
    serves every seed and config (they are scored on the same samples), then the quantity is
    computed per seed and averaged as `_per_seed`'s values are. None without per-sample data, or
    where no seed has 2 samples in a term's population."""
    terms = []
    for sign, config, key in claim.terms:
        samples = [a.get("per_sample", {}).get(key) for a in analyses.get(config, [])]
        if not samples or None in samples or max(iv.population(s["count"]) for s in samples) < 2:
            return None
        terms.append((sign, np.array([s["sum"] for s in samples]), np.array([s["count"] for s in samples])))
    if len({sums.shape[1] for _, sums, _ in terms}) > 1:  # configs scored on different splits
        return None
    seeds, weights_RxN = min(len(sums) for _, sums, _ in terms), iv.resample_weights(terms[0][1].shape[1])
    per_seed_KxR = sum(sign * iv.resampled_means(sums[:seeds], counts[:seeds], weights_RxN) for sign, sums, counts in terms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without a seed's population: NaN
        return iv.percentile_interval(np.nanmean(per_seed_KxR, axis=0))


CLAIMS = (
    Claim("The model attends to clusters of consecutive frames rather than to single frames.",
          "gloss16: share of a step's cross-attention in its best window of 10% of the frames",
          ((1, "gloss16", "window_mass"),), lambda v: v >= 0.3,
          ">= 0.3 (a uniform row puts 0.1 there; a single-frame spike puts its peak there, and "
          "n_peaks in analysis.json tells the two apart)"),
    Claim("Cross-attention aligns diagonally with the predicted glosses.",
          "gloss16: Spearman correlation of gloss index and attention centroid (correct samples, >= 2 glosses)",
          ((1, "gloss16", "diagonality"),), lambda v: v >= 0.5, ">= 0.5"),
    Claim("Over a sentence the model shifts from the frames to the previous glosses.",
          "gloss16: self-minus-cross at later steps minus at the first step (paper's signed mean)",
          ((1, "gloss16", "self_minus_cross_later"), (-1, "gloss16", "self_minus_cross_first")),
          lambda v: v > 0, "> 0"),
    Claim("For longer sentences the model relies more on glosses and the alignment fades.",
          "gloss16: diagonality of sentences of 1-5 glosses minus that of 6-10 glosses",
          ((1, "gloss16", "by_length.short.diagonality"), (-1, "gloss16", "by_length.long.diagonality")),
          lambda v: v > 0, "> 0"),
    Claim("Encoder self-attention shows sign segmentation at d=16 but not at larger sizes.",
          "encoder attention kept inside the attending frame's sign, gloss16 minus gloss64",
          ((1, "gloss16", "encoder_within_sign"), (-1, "gloss64", "encoder_within_sign")),
          lambda v: v > 0, "> 0"),
    Claim("A text model still attends to clusters, but they do not align diagonally with the words.",
          "diagonality of gloss16 minus that of text16 (text16's window mass in the report)",
          ((1, "gloss16", "diagonality"), (-1, "text16", "diagonality")),
          lambda v: v > 0.2, "> 0.2"),
)


def check_claims(analyses: dict[str, list[dict]]) -> list[dict]:
    """Each claim's value over seeds (mean, std, 95% t-interval), its 95% bootstrap interval over
    the test samples, and its verdict: "holds" or "fails" when the whole interval lies on one
    side of the rule's threshold, "inconclusive" when it crosses it, "not measured" when a config
    or a key is missing (e.g. no gloss spans). The seeds' interval decides; with one seed, the
    test samples' ("basis" says which)."""
    checks = []
    for claim in CLAIMS:
        values = [v for v in _per_seed(claim, analyses) if np.isfinite(v)]
        check = {"claim": claim.text, "quantity": claim.quantity, "rule": claim.rule, "seeds": len(values),
                 "mean": None, "std": None, "seed_interval": None, "bootstrap_interval": None,
                 "verdict": "not measured", "basis": None}
        if values:
            check["mean"], check["std"] = mean_std(values)
            check["seed_interval"], check["bootstrap_interval"] = iv.seed_interval(values), _pooled_bootstrap(claim, analyses)
            check["basis"] = "seeds" if check["seed_interval"] else "test samples" if check["bootstrap_interval"] else None
            check["verdict"] = iv.verdict(check["seed_interval"] or check["bootstrap_interval"], claim.holds)
        checks.append(check)
    return checks


def run_config(name: str, recipe: str | None, seed: int, epochs: int | None = None, overrides=()) -> Config:
    """A config as the main job trains it (its recipe, first seed, epoch cap as `--epochs` means
    it), with `overrides` on top (the study's cells)."""
    return get_config(name, [f"train.seed={seed}", *overrides, *epoch_cap(epochs)], recipe)


def main_job_configs(names, recipe: str | None = DEFAULT_RECIPE, seed: int = 0, epochs: int | None = None) -> list[Config]:
    """The configs `reproduce` trains, in order."""
    return [run_config(name, recipe, seed, epochs) for name in names]


def ensure_corpus(corpus: str, out: Path, seed: int, progress: bool) -> Path:
    """A synthetic preset is made under out/corpus (resumed if a run was interrupted)."""
    if corpus not in SYNTHETIC_PRESETS:
        return Path(corpus)
    from slt_jax.synth.corpus import write_corpus
    from slt_jax.synth.presets import PRESETS

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


def _timing_lines(summary: dict) -> list[str]:
    total = summary["timings_all_runs"]
    return [f"{step}: {seconds:.0f} s" + (f" (all runs into this folder: {total[step]:.0f} s)"
                                          if round(total[step]) != round(seconds) else "")
            for step, seconds in summary["timings"].items()]


def _analyze_all(configs, runs_dir: Path, out: Path, seeds: int, progress: bool) -> dict[str, list[dict]]:
    from concurrent.futures import Future, ThreadPoolExecutor

    from slt_jax.analysis.report import analyze
    from slt_jax.analysis.viewer import ensure_viewer

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


def reproduce(out, corpus: str = "small", seeds: int = 2, configs=MAIN_JOB, epochs: int | None = None,
              seed: int = 0, recipe: str = DEFAULT_RECIPE, progress: bool = True) -> dict:
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
        md, table_csv = table1(scores)
        write_text(out / "table1.md", md)
        write_text(out / "table1.csv", table_csv)
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


# --- rendering ---------------------------------------------------------------------------------

ALIGNMENT_KEYS = ("exact_match", "diagonality", "monotonicity", "window_mass", "n_peaks", "alignment_accuracy",
                  "boundary_f1", "deletion_gap", "encoder_within_sign")


def alignment_table(analyses: dict[str, list[dict]]) -> list[list[str]]:
    """Rows: config, then each alignment/faithfulness key as mean [95% t-interval] over seeds."""
    rows = [["config", *ALIGNMENT_KEYS]]
    for name, per_seed in analyses.items():
        cells = [name]
        for key in ALIGNMENT_KEYS:
            values = [a[key] for a in per_seed if a.get(key) is not None and np.isfinite(a[key])]
            cells.append(iv.format_interval(np.mean(values), iv.seed_interval(values), 3) if values else "–")
        rows.append(cells)
    return rows


LENS_COLUMNS = (("own_sign", "own sign"), ("other_sign", "other sign (same length)"),
                ("alignment_accuracy", "alignment accuracy"), ("agreement_with_attention", "agreement with attention"))
CHANCE_ROWS = (("chance: uniform over the real frames", "own_sign_uniform_over_frames", "alignment_accuracy_uniform"),
               ("chance: uniform over the signing frames", "own_sign_uniform_over_signing_frames", None))
ATTRIBUTION_NOTE = ("Teacher-forced, per reference gloss with a known sign (analysis.compare): each lens ranks the "
                    "frames (attention: cross-attention, heads averaged; random: the baseline). Own sign: the "
                    "lens's share inside the gloss's own sign; other sign: inside another sign of the sentence, "
                    "scaled to the own sign's length (a lens blind to the signs scores the two alike); alignment "
                    "accuracy: the top frame inside the own sign; agreement: Spearman's correlation with attention; "
                    "then the share per body part. Interventions, in log p(gloss) lost: deleting the gloss's own "
                    "sign against another sign as long; knocking out the head with the most own-sign attention "
                    "against each other head; and how often the decoded gloss follows a donor sample's encoder "
                    "states patched into its sign's frames. Means over seeds.")


def _seed_mean(per_seed: list[dict], key: str) -> str:
    """The mean over seeds of a dotted key, "–" where no seed has it."""
    values = [v for v in (_value(a, key) for a in per_seed) if np.isfinite(v)]
    return f"{np.mean(values):.3f}" if values else "–"


def _knockout(attribution: dict) -> dict:
    """The log p drop when the best head (most own-sign attention) is knocked out, and the other heads' mean."""
    knockout = attribution["head_knockout"]
    drops_H = np.array([np.nan if d is None else d for d in knockout["log_prob_drop"]], float)
    best = knockout["best_head"]
    if best is None or len(drops_H) < 2:
        return {}
    return {"best": drops_H[best], "others": np.nanmean(np.delete(drops_H, best))}


def _attributions(analyses: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Per config, its seeds' `attribution` dicts (configs analysed without any left out)."""
    found = {name: [a["attribution"] for a in per_seed if a.get("attribution")] for name, per_seed in analyses.items()}
    return {name: per_seed for name, per_seed in found.items() if per_seed}


def attribution_table(analyses: dict[str, list[dict]]) -> list[list[str]]:
    """Rows: per config and lens, its scores on the signs and its body-part shares, then the chance
    levels of a uniform lens; mean over seeds of each analysis.json's `attribution`."""
    rows = [["config", "lens", *(title for _, title in LENS_COLUMNS), *PARTS]]
    for name, per_seed in _attributions(analyses).items():
        for lens in per_seed[0]["lenses"]:
            keys = [*(key for key, _ in LENS_COLUMNS), *(f"parts.{part}" for part in PARTS)]
            rows.append([name, lens, *(_seed_mean(per_seed, f"lenses.{lens}.{key}") for key in keys)])
        for title, own, accuracy in CHANCE_ROWS:
            cells = [_seed_mean(per_seed, f"chance.{own}"), "–", _seed_mean(per_seed, f"chance.{accuracy}") if accuracy else "–"]
            rows.append([name, title, *cells, *["–"] * (len(LENS_COLUMNS) - 3 + len(PARTS))])
    return rows


def intervention_table(analyses: dict[str, list[dict]]) -> list[list[str]]:
    """Rows: per config, the interventions' effects (sign deletion, head knockout, activation
    patching), mean over seeds."""
    rows = [["config", "own sign deleted: drop", "other sign deleted: drop", "best head knocked out: drop",
             "other heads: drop", "patched: follows donor", "patched: keeps own"]]
    for name, per_seed in _attributions(analyses).items():
        knockouts = [_knockout(a) for a in per_seed]
        rows.append([name, _seed_mean(per_seed, "sign_deletion.own_drop"), _seed_mean(per_seed, "sign_deletion.control_drop"),
                     _seed_mean(knockouts, "best"), _seed_mean(knockouts, "others"),
                     _seed_mean(per_seed, "activation_patching.follows_donor"),
                     _seed_mean(per_seed, "activation_patching.keeps_own")])
    return rows


ATTRIBUTION_TITLE = "Attention and attribution"
ATTRIBUTION_MISSING = "Not measured: these analyses have no `attribution` (run `slt-jax analyze` again on the runs)."


def _markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines) + "\n"


def _claim_rows(claims: list[dict]) -> list[list[str]]:
    return [["#", "conclusion (paper §6)", "measured quantity", "mean [95% over seeds]", "95% over test samples",
             "rule", "verdict"]] + [
        [str(i), c["claim"], c["quantity"], iv.format_interval(c["mean"], c.get("seed_interval"), 3),
         _brackets(c.get("bootstrap_interval")), c["rule"], verdict_text(c)]
        for i, c in enumerate(claims, start=1)]


CHECKS_NOTE = ("A conclusion holds or fails only when the whole 95% interval over seeds (Student's t) lies on one "
               "side of its rule's threshold, and is inconclusive when the interval crosses it; with one seed the "
               "bootstrap interval over the test samples decides. That interval (all seeds resampled together: "
               "they share the test samples) shows how much another test set could move the mean.")


def _brackets(interval) -> str:
    return "–" if interval is None else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def verdict_text(check: dict) -> str:
    """The verdict, and on what it rests when that is not the seeds."""
    basis = {"test samples": " (1 seed: test samples)", None: " (no interval)"}.get(check.get("basis"), "")
    return check["verdict"] + (basis if check["mean"] is not None else "")


def _training_lines(training: dict[str, list[dict]]) -> list[str]:
    return [f"{name}: " + "; ".join(f"seed {k} {s['epochs']} epochs (kept {s['best_epoch']}"
                                    f"{', capped' if s['capped'] else ''})" for k, s in enumerate(per_seed))
            for name, per_seed in training.items()]


def describe_recipe(tc) -> str:
    """One line on how the models were optimised: the recipe's name and its fields."""
    schedule = {"constant": "constant", "cosine": f"cosine decay to {tc.final_lr_fraction:g}x over {tc.decay_steps} "
                "updates", "rsqrt": "inverse-square-root decay"}[tc.schedule]
    warmup = f" after {tc.warmup_steps} warm-up updates" if tc.warmup_steps else ""
    clip = f", gradients clipped to norm {tc.clip_norm:g}" if tc.clip_norm else ""
    return (f"recipe `{recipe_name(tc)}`: Adam at {tc.learning_rate:g}{warmup}, {schedule}{clip}; early stopping "
            f"after {tc.patience} epochs without a better {tc.early_stop_metric}")


def _setup_line(summary: dict) -> str:
    return (f"Corpus `{summary['corpus']}`; {summary['seeds']} seeds per config, trained as one vmapped program "
            f"per config; {summary['recipe']}; epochs cap: {summary['epochs'] or 'none (early stopping)'}.")


def still_training_note(summary: dict) -> str | None:
    """The banner of a report written while configs still train, or None."""
    pending = summary.get("still_training")
    if not pending:
        return None
    return (f"Still training: {', '.join(pending)}. This report is rewritten after every config; until then the "
            f"checks that read those configs say \"not measured\".")


def variants_note(names) -> str | None:
    """What each config beyond the paper's presets (`<preset>-<variant>`) changes, or None."""
    changed = [f"`{name}` is {name.partition('-')[0]} with `{' '.join(VARIANTS[name.partition('-')[2]])}`"
               for name in names if name.partition("-")[2] in VARIANTS]
    return ("; ".join(changed) + ": the project's own finding (docs/findings.md), shown beside the paper's configs "
            "and read by none of its checks.") if changed else None


def _attribution_markdown(analyses: dict[str, list[dict]]) -> list[str]:
    lenses = attribution_table(analyses)
    if len(lenses) == 1:
        return [ATTRIBUTION_MISSING + "\n"]
    return [ATTRIBUTION_NOTE + "\n", _markdown_table(lenses), _markdown_table(intervention_table(analyses))]


def render_markdown(summary: dict) -> str:
    warning = [f"> **Under-trained.** {summary['undertrained']}\n"] if summary["undertrained"] else []
    banner = [f"> **{note}**\n"] if (note := still_training_note(summary)) else []
    variants = [note + "\n"] if (note := variants_note(summary["scores"])) else []
    parts = ["# slt-jax reproduction of SignAttention\n", _setup_line(summary) + "\n", *banner, *warning,
             "## Table 1\n", summary["table1"], *variants,
             "## The paper's conclusions as checks\n", CHECKS_NOTE + "\n", _markdown_table(_claim_rows(summary["claims"])),
             "## Alignment and faithfulness (mean [95% interval] over seeds)\n", _markdown_table(alignment_table(summary["analyses"])),
             f"## {ATTRIBUTION_TITLE}\n", *_attribution_markdown(summary["analyses"]),
             f"## {STUDY_TITLE}\n", *_study_markdown(summary.get("study")),
             "## Training\n", "".join(f"- {line}\n" for line in _training_lines(summary["training"])),
             "## Timings\n", "".join(f"- {line}\n" for line in _timing_lines(summary))]
    return "\n".join(parts)


STUDY_TITLE = "When do the conclusions hold? Controls and one factor at a time"
STUDY_MISSING = ("Not run yet: `slt-jax study --out OUT/study` trains and analyses the study's cells (positive and "
                 "negative controls, one factor changed at a time, 3 seeds each; hours on 2 cores), then run "
                 "`slt-jax reproduce` again to add them here. docs/findings.md gives the measured results.")


def _study_markdown(study: dict | None) -> list[str]:
    if study is None:
        return [STUDY_MISSING + "\n"]
    parts = ["From `slt-jax study` (OUT/study; docs/findings.md reads it):\n"]
    for title, table in study_tables(study):
        parts += [f"### {title}\n", table]
    return parts + ["![study](study/study.png)\n"]


def _study_html(study: dict | None) -> str:
    if study is None:
        return f"<p>{_code_spans(STUDY_MISSING)}</p>"
    tables = "".join(f"<h3>{html.escape(title)}</h3>{_html_table(_table1_rows(table))}" for title, table in study_tables(study))
    return (f"<p>From <code>slt-jax study</code> (OUT/study; docs/findings.md reads it):</p>{tables}"
            f'<figure><img src="study/study.png" alt="study"></figure>')


def _html_table(rows: list[list[str]], verdict_col: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = []
    for r in rows[1:]:
        cells = []
        for i, c in enumerate(r):
            cls = f' class="{c.split(" (")[0].replace(" ", "-")}"' if i == verdict_col else ""
            cells.append(f"<td{cls}>{html.escape(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _table1_rows(table1_md: str) -> list[list[str]]:
    lines = [l for l in table1_md.splitlines() if l.startswith("|") and not l.startswith("|---")]
    return [[c.strip() for c in l.strip("|").split("|")] for l in lines]


STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.7em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.holds { background: #dff3df; } td.fails { background: #f8dddd; } td.inconclusive { background: #fff4d6; }
td.not-measured { background: #eee; }
figure { display: inline-block; margin: .5em; vertical-align: top; max-width: 560px; }
figure img { max-width: 100%; border: 1px solid #ddd; } figcaption { font-size: 13px; color: #555; }
code { background: #f5f5f5; padding: 0 .2em; }
p.warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: .5em .8em; }
"""


def _attribution_html(analyses: dict[str, list[dict]]) -> str:
    lenses = attribution_table(analyses)
    if len(lenses) == 1:
        return f"<p>{_code_spans(ATTRIBUTION_MISSING)}</p>"
    return f"<p>{html.escape(ATTRIBUTION_NOTE)}</p>{_html_table(lenses)}{_html_table(intervention_table(analyses))}"


def _code_spans(text: str) -> str:
    """Escaped HTML with markdown `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def render_html(summary: dict, out: Path) -> str:
    """A self-contained page; figures are linked relative to `out`."""
    figures = []
    for name, k in summary["median_seed"].items():
        folder = out / "analysis" / name / f"seed_{k}"
        analysis = summary["analyses"][name][k]
        imgs = "".join(
            f'<figure><img src="{html.escape(str((folder / f).relative_to(out)))}" alt="{html.escape(f)}">'
            f"<figcaption>{html.escape(f)}</figcaption></figure>" for f in analysis.get("figures", []))
        viewers = " · ".join(f'<a href="analysis/{html.escape(name)}/seed_{j}/viewer.html">seed {j}</a>'
                             for j in range(len(summary["analyses"][name]))
                             if (out / "analysis" / name / f"seed_{j}" / "viewer.html").is_file())
        viewers = f"<p>Interactive attention viewer (poses, tokens, attention): {viewers}</p>" if viewers else ""
        figures.append(f"<h3>{html.escape(name)} (median seed: {k})</h3>{viewers}{imgs}")
    timings = "".join(f"<li>{html.escape(line)}</li>" for line in _timing_lines(summary))
    training = "".join(f"<li>{html.escape(line)}</li>" for line in _training_lines(summary["training"]))
    note = _code_spans(summary["undertrained"] or "")
    warning = f'<p class="warning"><b>Under-trained.</b> {note}</p>' if note else ""
    banner = f'<p class="warning"><b>{html.escape(note)}</b></p>' if (note := still_training_note(summary)) else ""
    variants = f"<p>{_code_spans(note)}</p>" if (note := variants_note(summary["scores"])) else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>slt-jax: SignAttention reproduction</title>
<style>{STYLE}</style></head><body>
<h1>SignAttention, reproduced with slt-jax</h1>
<p>{_code_spans(_setup_line(summary))}</p>
{banner}
{warning}
<h2>Table 1: word error rate</h2>
{_html_table(_table1_rows(summary['table1']))}
{variants}
<h2>The paper's conclusions, measured</h2>
<p>{html.escape(CHECKS_NOTE)}</p>
{_html_table(_claim_rows(summary['claims']), verdict_col=6)}
<h2>Alignment and faithfulness (mean [95% interval] over seeds)</h2>
{_html_table(alignment_table(summary['analyses']))}
<h2>{ATTRIBUTION_TITLE}</h2>
{_attribution_html(summary['analyses'])}
<h2>{STUDY_TITLE}</h2>
{_study_html(summary.get('study'))}
<h2>Figures</h2>
{''.join(figures)}
<h2>Settings and timings</h2>
<ul>{training}{timings}<li>machine: {html.escape(summary['machine'])}</li></ul>
</body></html>
"""
