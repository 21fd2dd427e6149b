"""The reproduction: claims as checks, the report, and the page in a real browser."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from slt_jax.cli import main
from slt_jax.config import get_config
from slt_jax.pipelines import reproduce
from slt_jax.pipelines.claims import check_claims
from slt_jax.pipelines.page import attribution_table, intervention_table, render_html, render_markdown
from slt_jax.pipelines.reproduce import median_seed, undertrained_note
from slt_jax.pipelines.study import condition_checks
from slt_jax.pipelines.sweep import training_status

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def analysis(diagonality, window_mass=0.5, first=-0.2, later=0.1, short=0.8, long=0.3, within=0.4):
    return {"diagonality": diagonality, "window_mass": window_mass, "self_minus_cross_first": first,
            "self_minus_cross_later": later, "by_length": {"short": {"diagonality": short},
                                                           "long": {"diagonality": long}},
            "encoder_within_sign": within}


def test_claims_read_their_verdict_off_the_interval_over_seeds():
    analyses = {"gloss16": [analysis(d) for d in (0.53, 0.58, 0.63)], "gloss64": [analysis(0.8, within=0.5)] * 3,
                "text16": [analysis(d) for d in (0.03, 0.08, 0.13)]}
    checks = check_claims(analyses)
    assert [c["verdict"] for c in checks] == ["holds", "inconclusive", "holds", "holds", "fails", "holds"]
    diagonal = checks[1]  # 0.58 ± 0.05 over 3 seeds: t(2) = 4.303 puts its interval across 0.5
    assert diagonal["mean"] == pytest.approx(0.58) and diagonal["std"] == pytest.approx(0.05)
    assert diagonal["seed_interval"] == pytest.approx((0.58 - 0.1242, 0.58 + 0.1242), abs=1e-4)
    assert diagonal["basis"] == "seeds" and diagonal["bootstrap_interval"] is None  # no per-sample data
    assert checks[2]["mean"] == pytest.approx(0.3)  # later - first
    assert checks[5]["mean"] == pytest.approx(0.5) and checks[5]["rule"] == "> 0.2"
    without_text = check_claims({"gloss16": [analysis(None)]})
    assert without_text[1]["verdict"] == "not measured" and without_text[5]["verdict"] == "not measured"


def with_samples(a: dict, **values) -> dict:
    """`a` with per-sample values (one per test sample, NaN: outside the population) for keys."""
    return a | {"per_sample": {key: {"sum": np.nan_to_num(v).tolist(), "count": np.isfinite(v).astype(float).tolist()}
                               for key, v in values.items()}}


def test_one_seed_is_judged_by_the_bootstrap_over_test_samples():
    rng = np.random.default_rng(0)
    clear, unclear = rng.normal(0.8, 0.3, 90), rng.normal(0.52, 0.3, 90)
    for values, expected in ((clear, "holds"), (unclear, "inconclusive")):
        checks = check_claims({"gloss16": [with_samples(analysis(values.mean()), diagonality=values)]})
        assert checks[1]["verdict"] == expected and checks[1]["basis"] == "test samples"
        assert checks[1]["seed_interval"] is None and checks[1]["bootstrap_interval"][0] < values.mean()
    assert check_claims({"gloss16": [analysis(0.8)]})[1]["verdict"] == "inconclusive"  # no interval at all
    one_correct = with_samples(analysis(0.17), window_mass=np.r_[0.17, np.full(89, np.nan)])
    assert check_claims({"gloss16": [one_correct]})[0]["verdict"] == "inconclusive"  # a population of one


def test_differences_between_configs_resample_the_same_test_samples():
    # Encoder scores that vary a lot between samples but always 0.05 higher at d=16: only a
    # bootstrap that pairs the samples of both configs sees the difference clearly.
    rng = np.random.default_rng(1)
    shared = rng.uniform(0, 1, 90)
    small, large = shared + 0.05 + rng.normal(0, 0.01, 90), shared
    seeds = lambda values, within: [with_samples(analysis(0.9, within=within), encoder_within_sign=values)] * 2
    checks = check_claims({"gloss16": seeds(small, small.mean()), "gloss64": seeds(large, large.mean())})
    lo, hi = checks[4]["bootstrap_interval"]
    assert 0.04 < lo < 0.05 < hi < 0.06


def test_median_seed_is_the_middle_wer():
    assert median_seed([{"wer": 0.3}, {"wer": 0.1}, {"wer": 0.2}]) == 2
    assert median_seed([{"wer": 0.3}, {"wer": 0.1}]) == 1


def main_job(out) -> list[str]:
    return ["reproduce", "--out", str(out), "--corpus", "tiny", "--configs", "tiny,tiny-normalised", "--seeds", "2",
            "--epochs", "3", "--quiet"]


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    """The main job on two tiny configs, and its index.html as each config began training."""
    out, pages = tmp_path_factory.mktemp("reproduce"), {}

    def recording(config, *args, **kwargs):
        page = out / "index.html"
        pages[config.name] = page.read_text() if page.exists() else None
        return sweep_config(config, *args, **kwargs)

    sweep_config = reproduce.sweep_config
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reproduce, "sweep_config", recording)
        assert main(main_job(out)) == 0
    return out, pages


@pytest.fixture(scope="module")
def report(started):
    return started[0]


def test_the_report_is_written_after_every_config(started):
    out, pages = started
    assert pages["tiny"] is None
    first = pages["tiny-normalised"]  # the page as the second config started training
    assert "<td>tiny</td><td>2</td>" in first and "<td>tiny-normalised</td>" not in first
    assert "Still training: tiny-normalised." in first and "analysis/tiny/seed_0/viewer.html" in first
    final = (out / "index.html").read_text()
    assert "Still training" not in final and "<td>tiny-normalised</td><td>2</td>" in final
    assert "`tiny-normalised` is tiny with `data.body_norm=sequence data.hand_norm=true`" in (out / "report.md").read_text()
    runs = json.loads((out / "runs" / "tiny-normalised" / "seed_0" / "config.json").read_text())
    assert runs["data"]["body_norm"] == "sequence" and runs["data"]["hand_norm"] is True


def attribution(own: float, best_drop: float) -> dict:
    """analysis.json's `attribution` (analysis.compare.summarise) with made-up values."""
    parts = {"body": 0.1, "face": 0.0, "left_hand": 0.4, "right_hand": 0.5}
    lens = lambda v: {"own_sign": v, "other_sign": v / 2, "alignment_accuracy": v, "agreement_with_attention": 0.5,
                      "parts": parts}
    return {"lenses": {"attention": lens(own) | {"agreement_with_attention": None}, "rollout": lens(0.3),
                       "random": lens(0.1) | {"parts": None}},
            "chance": {"own_sign_uniform_over_frames": 0.1, "own_sign_uniform_over_signing_frames": 0.2,
                       "alignment_accuracy_uniform": 0.1},
            "sign_deletion": {"own_drop": own * 4, "control_drop": 0.5, "n": 10, "n_control": 10},
            "head_knockout": {"log_prob_drop": [best_drop, 0.1, 0.3, None], "best_head": 0},
            "activation_patching": {"n": 5, "follows_donor": 0.6, "keeps_own": 0.2, "log_odds_shift": 1.0}}


def test_attention_and_attribution_are_shown_per_lens_beside_chance_and_interventions():
    analyses = {"gloss16": [{"attribution": attribution(0.4, 1.0)}, {"attribution": attribution(0.6, 3.0)}],
                "gloss64": [{"diagonality": 0.1}]}  # analysed before attribution: left out
    lenses = attribution_table(analyses)
    assert lenses[0] == ["config", "lens", "own sign", "other sign (same length)", "alignment accuracy",
                         "agreement with attention", "body", "face", "left_hand", "right_hand"]
    assert lenses[1:4] == [["gloss16", "attention", "0.500", "0.250", "0.500", "–", "0.100", "0.000", "0.400", "0.500"],
                           ["gloss16", "rollout", "0.300", "0.150", "0.300", "0.500", "0.100", "0.000", "0.400", "0.500"],
                           ["gloss16", "random", "0.100", "0.050", "0.100", "0.500", "–", "–", "–", "–"]]
    assert lenses[4][1:5] == ["chance: uniform over the real frames", "0.100", "–", "0.100"]
    assert lenses[5][1:5] == ["chance: uniform over the signing frames", "0.200", "–", "–"] and len(lenses) == 6
    # Seeds' best heads lose 1 and 3 nats, the other heads 0.1 and 0.3 (a head without a value skipped).
    assert intervention_table(analyses)[1] == ["gloss16", "2.000", "0.500", "2.000", "0.200", "0.600", "0.200"]
    summary = {"corpus": "c", "seeds": 2, "recipe": "r", "epochs": None, "undertrained": None, "table1": "",
               "scores": {}, "claims": [], "analyses": analyses, "training": {}, "study": None,
               "timings": {}, "timings_all_runs": {}}
    markdown = render_markdown(summary)
    assert "## Attention and attribution\n" in markdown and "| gloss16 | attention | 0.500 | 0.250 |" in markdown
    assert "| gloss16 | 2.000 | 0.500 | 2.000 | 0.200 | 0.600 | 0.200 |" in markdown
    assert "Not measured" in render_markdown(summary | {"analyses": {"gloss64": [{}]}})


def test_reproduce_writes_table_report_and_figures(report):
    summary = json.loads((report / "summary.json").read_text())
    assert len(summary["scores"]["tiny"]) == 2 and len(summary["analyses"]["tiny"]) == 2
    assert "| tiny | 2 |" in (report / "table1.md").read_text()
    page = (report / "index.html").read_text()
    for section in ("Table 1", "conclusions, measured", "Alignment and faithfulness", "Figures", "timings"):
        assert section in page
    k = summary["median_seed"]["tiny"]
    figures = summary["analyses"]["tiny"][k]["figures"]
    assert figures and all((report / "analysis" / "tiny" / f"seed_{k}" / f).is_file() for f in figures)
    assert all(f'src="analysis/tiny/seed_{k}/{f}"' in page for f in figures)
    assert "## The paper's conclusions as checks" in (report / "report.md").read_text()
    assert "inconclusive when the interval crosses it" in page and '<td class="' in page
    assert ("recipe `converge`: Adam at 0.003 after 150 warm-up updates, constant, gradients clipped to norm 1; "
            "early stopping after 30 epochs without a better val_loss") in (report / "report.md").read_text()
    assert "recipe <code>converge</code>" in page


def test_analysis_json_holds_each_means_samples_and_interval(report):
    summary = json.loads((report / "summary.json").read_text())
    for a in summary["analyses"]["tiny"]:
        samples = a["per_sample"]["exact_match"]
        assert len(samples["sum"]) == a["n"] and sum(samples["sum"]) / sum(samples["count"]) == pytest.approx(a["exact_match"])
        lo, hi = a["intervals"]["exact_match"]
        assert lo <= a["exact_match"] <= hi
        encoder = a["per_sample"]["encoder_within_sign"]
        assert sum(encoder["sum"]) / sum(encoder["count"]) == pytest.approx(a["encoder_within_sign"], abs=1e-6)
    assert all(c["verdict"] in ("holds", "fails", "inconclusive", "not measured") for c in summary["claims"])


def test_the_report_says_when_the_epoch_cap_ended_training(report):
    summary = json.loads((report / "summary.json").read_text())
    for status in summary["training"]["tiny"]:
        assert status["epochs"] == 3 and status["capped"] and 1 <= status["best_epoch"] <= 3
    assert summary["undertrained"].startswith("4 of 4 runs stopped at the 3-epoch cap")
    assert "Under-trained" in (report / "index.html").read_text() and "Under-trained" in (report / "report.md").read_text()


def test_a_seed_that_stopped_early_counts_its_own_epochs(tmp_path):
    # Seed 0 stopped at epoch 4 (its log ends there), seed 1 ran into the 6-epoch cap.
    for k, stopped_at in ((0, 4), (1, None)):
        run = tmp_path / "tiny" / f"seed_{k}"
        run.mkdir(parents=True)
        lines = [{"epoch": e, "val_loss": abs(e - 3) + k, "stopped_early": e == stopped_at}
                 for e in range(1, (stopped_at or 6) + 1)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    status = training_status([get_config("tiny")], tmp_path, 2, cap=6)["tiny"]
    assert status == [{"epochs": 4, "best_epoch": 3, "capped": False}, {"epochs": 6, "best_epoch": 3, "capped": True}]


def test_no_warning_when_early_stopping_ended_every_run():
    stopped = {"gloss16": [{"epochs": 41, "best_epoch": 11, "capped": False}]}
    assert undertrained_note(stopped, 50) is None and undertrained_note(stopped, None) is None
    capped = {"gloss16": [{"epochs": 50, "best_epoch": 49, "capped": True}, {"epochs": 41, "best_epoch": 11, "capped": False}]}
    assert undertrained_note(capped, 50).startswith("1 of 2 runs stopped at the 50-epoch cap before early stopping, 1 of them")


def test_a_second_run_reuses_finished_steps(report):
    before = (report / "analysis" / "tiny" / "seed_0" / "analysis.json").stat().st_mtime
    assert main(main_job(report)) == 0
    assert (report / "analysis" / "tiny" / "seed_0" / "analysis.json").stat().st_mtime == before
    summary = json.loads((report / "summary.json").read_text())
    assert summary["timings"]["analyze"] < 30
    assert summary["timings_all_runs"]["analyze"] > summary["timings"]["analyze"]  # the first run's work counts


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_page_renders_with_its_figures_in_chromium(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "page.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,5000",
                    f"--screenshot={shot}", (report / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB"), float)
    assert pixels.shape[:2] == (5000, 1280)
    # Tables at the top (two configs' take about 2,800 pixels), images lower down: a loaded
    # heatmap colours the bottom of the page, and nothing above the tables' end.
    colourful = np.ptp(pixels, axis=2) > 60
    assert colourful[3000:].mean() > 0.02 and colourful[:2500].mean() < 0.01


def test_the_report_shows_the_study_once_it_has_run(report):
    summary = json.loads((report / "summary.json").read_text())
    assert summary["study"] is None and "Not run yet: `slt-jax study --out OUT/study`" in render_markdown(summary)
    rows = [{"exact_match": 0.7, "forced_diagonality": -0.2, "analysis": analysis(0.9)},
            {"exact_match": 0.8, "forced_diagonality": -0.4, "analysis": analysis(0.7)}]
    summary["study"] = {"seeds": 2, "recipe": "fast", "cells": {"small-gloss16": {"factor": "none: the paper's setting"}},
                        "results": {"small-gloss16": rows}, "checks": condition_checks({"small-gloss16": rows})}
    markdown, page = render_markdown(summary), render_html(summary, report)
    assert "| paper's setting (small) | 0.50 [0.50, 0.50] holds | 0.80 [-0.47, 2.07] inconclusive |" in markdown
    assert "| small-gloss16 | none: the paper's setting | 2 | 0.75 [0.11, 1.39] |" in markdown
    assert "<td>0.80 [-0.47, 2.07] inconclusive</td>" in page and 'src="study/study.png"' in page
