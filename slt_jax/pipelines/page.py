"""The main job's report: `report.md` and `index.html` (one self-contained page, its CSS inline)
rendered from `reproduce`'s summary (summary.json), and the tables that only the report shows."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

from slt_jax.analysis import intervals as iv
from slt_jax.config import VARIANTS
from slt_jax.features import PARTS
from slt_jax.pipelines.claims import value_at, verdict_text
from slt_jax.pipelines.study import study_tables
from slt_jax.pipelines.tables import brackets, html_table, markdown_rows, markdown_table, mean_interval, mean_text

ALIGNMENT_KEYS = ("exact_match", "diagonality", "monotonicity", "window_mass", "n_peaks", "alignment_accuracy",
                  "boundary_f1", "deletion_gap", "encoder_within_sign")


def alignment_table(analyses: dict[str, list[dict]]) -> list[list[str]]:
    """Rows: config, then each alignment/faithfulness key as mean [95% t-interval] over seeds."""
    rows = [["config", *ALIGNMENT_KEYS]]
    for name, per_seed in analyses.items():
        rows.append([name, *(mean_interval([a.get(key) for a in per_seed], 3) for key in ALIGNMENT_KEYS)])
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
    return mean_text(value_at(a, key) for a in per_seed)


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


def _claim_rows(claims: list[dict]) -> list[list[str]]:
    return [["#", "conclusion (paper §6)", "measured quantity", "mean [95% over seeds]", "95% over test samples",
             "rule", "verdict"]] + [
        [str(i), c["claim"], c["quantity"], iv.format_interval(c["mean"], c.get("seed_interval"), 3),
         brackets(c.get("bootstrap_interval")), c["rule"], verdict_text(c)]
        for i, c in enumerate(claims, start=1)]


CHECKS_NOTE = ("A conclusion holds or fails only when the whole 95% interval over seeds (Student's t) lies on one "
               "side of its rule's threshold, and is inconclusive when the interval crosses it; with one seed the "
               "bootstrap interval over the test samples decides. That interval (all seeds resampled together: "
               "they share the test samples) shows how much another test set could move the mean.")


def _training_lines(training: dict[str, list[dict]]) -> list[str]:
    return [f"{name}: " + "; ".join(f"seed {k} {s['epochs']} epochs (kept {s['best_epoch']}"
                                    f"{', capped' if s['capped'] else ''})" for k, s in enumerate(per_seed))
            for name, per_seed in training.items()]


def _timing_lines(summary: dict) -> list[str]:
    total = summary["timings_all_runs"]
    return [f"{step}: {seconds:.0f} s" + (f" (all runs into this folder: {total[step]:.0f} s)"
                                          if round(total[step]) != round(seconds) else "")
            for step, seconds in summary["timings"].items()]


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
    return [ATTRIBUTION_NOTE + "\n", markdown_table(lenses), markdown_table(intervention_table(analyses))]


def render_markdown(summary: dict) -> str:
    warning = [f"> **Under-trained.** {summary['undertrained']}\n"] if summary["undertrained"] else []
    banner = [f"> **{note}**\n"] if (note := still_training_note(summary)) else []
    variants = [note + "\n"] if (note := variants_note(summary["scores"])) else []
    parts = ["# slt-jax reproduction of SignAttention\n", _setup_line(summary) + "\n", *banner, *warning,
             "## Table 1\n", summary["table1"], *variants,
             "## The paper's conclusions as checks\n", CHECKS_NOTE + "\n", markdown_table(_claim_rows(summary["claims"])),
             "## Alignment and faithfulness (mean [95% interval] over seeds)\n", markdown_table(alignment_table(summary["analyses"])),
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
    tables = "".join(f"<h3>{html.escape(title)}</h3>{html_table(markdown_rows(table))}" for title, table in study_tables(study))
    return (f"<p>From <code>slt-jax study</code> (OUT/study; docs/findings.md reads it):</p>{tables}"
            f'<figure><img src="study/study.png" alt="study"></figure>')


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
    return f"<p>{html.escape(ATTRIBUTION_NOTE)}</p>{html_table(lenses)}{html_table(intervention_table(analyses))}"


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
{html_table(markdown_rows(summary['table1']))}
{variants}
<h2>The paper's conclusions, measured</h2>
<p>{html.escape(CHECKS_NOTE)}</p>
{html_table(_claim_rows(summary['claims']), verdict_col=6)}
<h2>Alignment and faithfulness (mean [95% interval] over seeds)</h2>
{html_table(alignment_table(summary['analyses']))}
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
