"""`slt-jax study`: when does cross-attention align with the signs? Controls, one factor at a time.

Each cell is the paper's setting (gloss16, raw coordinates, the `small` corpus whose 36 sentences
every signer repeats, the `fast` recipe) with one factor changed, trained for several seeds
as one vmapped program (`slt_jax.pipelines.sweep`), then analysed: `slt-jax analyze` on every seed (the
paper's figures and scores), and `analysis.heads.head_scores` (every head on its own, with a
null for picking the best one; the same with the frames' content removed; and where each
gloss's attention falls). The `novel` corpus, where no held-out sentence occurs in training,
is the positive control: a model that translates it has to find each sign. Its frames shuffled
in time (`data.shuffle_frames`) are the negative control: no order is left for attention to
follow.

Layout under the study's folder (every step is reused when a previous run finished it):

  corpus_<preset>/                    the synthetic corpora
  <cell>/<config>/seed_<k>/           each cell's runs
  analysis/<cell>/seed_<k>/           analysis.json, heads.json and the figures
  study.json, study.md, study.png     per cell mean [95% interval] over seeds; the six checks per
                                      condition with their intervals and verdicts
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from slt_jax.analysis import intervals as iv
from slt_jax.analysis.heads import REGIONS, head_scores
from slt_jax.analysis.report import analyze
from slt_jax.config import STUDY_RECIPE
from slt_jax.layout import atomic_path, write_json, write_text
from slt_jax.pipelines.claims import check_claims, verdict_text
from slt_jax.pipelines.designs import CELLS, DEFAULT_SEEDS, Cell, cell_config
from slt_jax.pipelines.sweep import ensure_corpus, seed_dirs, sweep_config, training_status
from slt_jax.pipelines.tables import markdown_table, mean_interval
from slt_jax.runs import cached_results

# The six checks (claims.CLAIMS) per condition: which cell plays each config they compare.
CONDITIONS = {
    "paper's setting (small)": {"gloss16": "small-gloss16", "gloss64": "small-gloss64", "text16": "small-text16"},
    "small, 1 epoch": {"gloss16": "small-gloss16-1epoch"},
    "small, 50 epochs": {"gloss16": "small-gloss16-50epochs"},
    "small, normalised features": {"gloss16": "small-gloss16-normalised"},
    "novel, model and recipe unchanged": {"gloss16": "novel-gloss16"},
    "novel, patience 100 (110 epochs)": {"gloss16": "novel-gloss16-patience100"},
    "positive control (novel, patience 100, normalised)": {"gloss16": "novel-gloss16-normalised-patience100",
                                                           "gloss64": "novel-gloss64-normalised-patience100",
                                                           "text16": "novel-text16-normalised-patience100"},
    "negative control (positive, frames shuffled)": {"gloss16": "novel-gloss16-normalised-patience100-shuffled"},
}

# (key, title) of the per-cell tables: what the translations and the attention's direction are,
# then how attention relates to the signs.
ORDER_COLUMNS = (
    ("exact_match", "exact match"),
    ("best_epoch", "best epoch"),
    ("diagonality", "diagonality (correct)"),
    ("forced_diagonality", "diagonality (forced)"),
    ("position_only", "diagonality, content removed"),
    ("position_agreement", "heads' agreement without content"),
    ("best_head", "best head"),
    ("best_null95", "best-head null 95%"),
    ("worst_head", "worst head"),
    ("first_centroid", "1st gloss centroid"),
    ("last_centroid", "last gloss centroid"),
)
SIGN_COLUMNS = (
    ("alignment_accuracy", "alignment acc. (forced)"),
    ("boundary_f1", "boundary F1 (forced)"),
    ("window_mass", "window mass"),
    ("deletion_gap", "deletion gap"),
    ("own_sign", "attention in own sign"),
    ("own_sign_position_only", "same, content removed"),
    ("own_sign_frames", "frames in own sign (chance)"),
)


def run_cell(cell: Cell, out: Path, seeds: int, recipe: str | None, seed: int, progress: bool) -> list[dict]:
    """Trains, evaluates and analyses one cell; returns per seed its values of the table columns
    and more (its whole analysis.json under "analysis")."""
    corpus = ensure_corpus(cell.corpus, out, seed, progress)
    config = cell_config(cell, recipe, seed)
    scores = sweep_config(config, corpus, out / cell.name, seeds, "test", progress)
    status = training_status([config], out / cell.name, seeds, cell.epochs)[config.name]
    rows = []
    for k, run in enumerate(seed_dirs(out / cell.name, config.name, seeds)):
        target = out / "analysis" / cell.name / f"seed_{k}"
        analysis = cached_results(target / "analysis.json", run) or analyze(run, "test", target, progress=progress)
        heads = cached_results(target / "heads.json", run)
        if heads is None:
            heads = head_scores(run, "test")
            write_json(target / "heads.json", heads)
        rows.append(_row(scores[k], status[k], analysis, heads))
    return rows


def _row(scores: dict, status: dict, analysis: dict, heads: dict) -> dict:
    forced = analysis["teacher_forced"]
    regions = heads["regions"] or {}
    row = {"exact_match": scores["exact_match"], "wer": scores["wer"], "best_epoch": status["best_epoch"],
           "epochs": status["epochs"], "forced_diagonality": heads["heads"]["averaged"],
           "best_head": heads["heads"]["best"], "best_null95": heads["heads"]["best_null95"],
           "best_p": heads["heads"]["best_p"], "worst_head": heads["heads"]["worst"],
           "worst_null05": heads["heads"]["worst_null05"], "per_head": heads["heads"]["per_head"],
           "first_centroid": heads["first_centroid"], "last_centroid": heads["last_centroid"],
           "position_only": heads["position_only"]["averaged"], "position_agreement": heads["position_only"]["agreement"],
           "own_sign_position_only": heads["position_only"]["own_sign"],
           "own_sign": (regions.get("all") or {}).get("own_sign"),
           "own_sign_frames": (regions.get("all") or {}).get("own_sign_frames"), "regions": regions,
           "alignment_accuracy": forced.get("alignment_accuracy"), "boundary_f1": forced.get("boundary_f1")}
    for key in ("diagonality", "window_mass", "deletion_gap"):
        row[key] = analysis.get(key)
    row["analysis"] = analysis
    return row


def cell_table(results: dict[str, list[dict]], columns, factors: dict[str, str] | None = None) -> str:
    """Markdown: per cell (and what it changes, given `factors`) its seeds and each column's
    mean [95% interval] over seeds."""
    table = [["cell", *(["changed"] if factors else []), "seeds", *(title for _, title in columns)]]
    for name, rows in results.items():
        cells = [mean_interval([r.get(key) for r in rows], 0 if key == "best_epoch" else 2) for key, _ in columns]
        table.append([name, *([factors.get(name, "")] if factors else []), str(len(rows)), *cells])
    return markdown_table(table)


def regions_table(results: dict[str, list[dict]]) -> str:
    """Markdown: per cell, the share of the first and the last gloss's attention (teacher-forced,
    heads averaged) on each region of the video, mean over seeds, beside the share of frames."""
    table = [["cell", "gloss", *REGIONS]]
    for name, rows in results.items():
        measured = [r["regions"] for r in rows if r.get("regions")]
        for which in ("first", "last", "frames"):
            values = [m[which] for m in measured if m.get(which)]
            if values:
                cells = [f"{np.mean([v[region] for v in values]):.2f}" for region in REGIONS]
                table.append([name, which if which != "frames" else "(share of frames)", *cells])
    return markdown_table(table)


def condition_checks(results: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The paper's six checks (claims.check_claims) in each condition whose cells have run."""
    checks = {}
    for condition, roles in CONDITIONS.items():
        analyses = {role: [r["analysis"] for r in results[cell]] for role, cell in roles.items() if cell in results}
        if analyses:
            checks[condition] = check_claims(analyses)
    return checks


def checks_table(checks: dict[str, list[dict]]) -> str:
    """Markdown: one row per condition, one column per conclusion: mean [95% interval] and verdict."""
    table = [["condition", *(str(i) for i in range(1, 7))]]
    for condition, claims in checks.items():
        table.append([condition, *(_check_cell(c) for c in claims)])
    return markdown_table(table)


def _check_cell(check: dict) -> str:
    """The interval the verdict rests on (the seeds', else the test samples'), then the verdict."""
    if check["mean"] is None:
        return "–"
    interval = check.get("seed_interval") or check.get("bootstrap_interval")
    return f"{iv.format_interval(check['mean'], interval)} {verdict_text(check)}"


def plot(results: dict[str, list[dict]], path: Path) -> None:
    """study.png: per cell, each seed's exact match, forced diagonality (with the best head and
    its null) and alignment accuracy."""
    panels = (("exact_match", "test exact match"), ("forced_diagonality", "diagonality (heads averaged, forced)"),
              ("best_head", "best single head's diagonality"), ("alignment_accuracy", "alignment accuracy (forced)"))
    names = list(results)
    fig = Figure(figsize=(4.2 * len(panels), 0.45 * len(names) + 1.6), layout="tight")
    axes = fig.subplots(1, len(panels), sharey=True)
    for ax, (key, title) in zip(axes, panels):
        for i, name in enumerate(names):
            values = [r[key] for r in results[name] if r.get(key) is not None]
            ax.plot(values, [i] * len(values), "o", color="tab:blue", alpha=0.7)
            if values:
                ax.plot([np.mean(values)] * 2, [i - 0.3, i + 0.3], color="black")
            if key == "best_head":
                nulls = [r["best_null95"] for r in results[name]]
                ax.plot([np.mean(nulls)] * 2, [i - 0.3, i + 0.3], color="tab:red", linestyle=":")
        ax.set_title(title, fontsize=10)
        ax.set_xlim((-1.05, 1.05) if "diagonality" in title else (-0.02, 1.02))
        ax.axvline(0, color="#ccc", linewidth=0.8)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    fig.suptitle("slt-jax study: dots are seeds, bars their mean; red dotted: the best head's null (95%)", fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def study(out, cells: Sequence[Cell] = CELLS, seeds: int = DEFAULT_SEEDS, recipe: str | None = STUDY_RECIPE,
          seed: int = 0, progress: bool = True) -> dict:
    """Runs the cells in order into `out`, rewriting study.json / study.md / study.png after each.

    Args:
      out: the study's folder.
      cells: the cells, e.g. CELLS (a cell's corpus may also be a corpus folder).
      seeds: seeds per cell.
      recipe: the training recipe (a cell's overrides apply on top); None: the presets' own.
      seed: the corpora's seed and each cell's first training seed.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results, summary = {}, None
    for cell in cells:
        results[cell.name] = run_cell(cell, out, seeds, recipe, seed, progress)
        summary = _summary(cells, results, seeds, recipe)
        write_json(out / "study.json", summary)
        write_text(out / "study.md", render_markdown(summary))
        plot(results, out / "study.png")
    return summary


def _summary(cells: Sequence[Cell], results: dict[str, list[dict]], seeds: int, recipe: str | None) -> dict:
    """study.json: the cells run so far, their per-seed rows (without the whole analyses) and the checks."""
    return {"seeds": seeds, "recipe": recipe,
            "cells": {c.name: dataclasses.asdict(c) for c in cells if c.name in results},
            "results": {c: [{k: v for k, v in r.items() if k != "analysis"} for r in rows] for c, rows in results.items()},
            "checks": condition_checks(results)}


def study_tables(summary: dict) -> list[tuple[str, str]]:
    """(title, markdown table) of a study's summary: the checks per condition, the cells' two
    tables and where the first and last gloss look."""
    factors = {name: cell["factor"] for name, cell in summary["cells"].items()}
    results = summary["results"]
    return [("The paper's six conclusions per condition (reproduce's checks, numbered as in its report)",
             checks_table(summary["checks"])),
            ("Per cell: translations and the direction of attention (mean [95% interval] over seeds)",
             cell_table(results, ORDER_COLUMNS, factors)),
            ("Per cell: attention and the signs", cell_table(results, SIGN_COLUMNS)),
            ("Where the first and the last gloss look (share of attention per region)", regions_table(results))]


def render_markdown(summary: dict) -> str:
    parts = ["# When does attention align with the signs?\n",
             f"{summary['seeds']} seeds per cell, recipe `{summary['recipe'] or 'the presets’ own'}` (a cell's changes "
             "on top); docs/findings.md reads these numbers.\n"]
    for title, table in study_tables(summary):
        parts += [f"## {title}\n", table]
    return "\n".join(parts + ["![study](study.png)\n"])


def load_study(folder) -> dict | None:
    """A finished or partial study's summary, or None."""
    path = Path(folder) / "study.json"
    return json.loads(path.read_text()) if path.is_file() else None
