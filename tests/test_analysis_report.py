"""`slt-jax analyze` end to end on a briefly trained tiny run, and the figures' pose helper."""

import json

import numpy as np
import pytest

from slt_jax.analysis.figures import pose_points
from slt_jax.cli import main
from slt_jax.config import DataConfig
from slt_jax.data import select_features
from slt_jax.layout import LANDMARK_GROUPS, N_LANDMARKS

FIGURES = {"fig2a_cross_attention_sample.png", "fig2b_self_minus_cross_sample.png", "fig3a_cross_attention_1-5.png",
           "fig3b_cross_attention_6-10.png", "fig4_self_minus_cross_by_length.png", "fig5_encoder_self_attention.png",
           "fig6_attention_examples.png", "clean_cross_attention_heads_sample.png", "clean_self_share_by_length.png",
           "alignment.png", "deletion.png", "attribution.png"}


@pytest.fixture(scope="module")
def analysis(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis")
    assert main(["analyze", "--workdir", str(run_dir), "--out", str(out), "--fractions", "0.2,0.5", "--quiet"]) == 0
    return out, json.loads((out / "analysis.json").read_text())


def test_analyze_writes_every_figure(analysis):
    out, results = analysis
    assert set(results["figures"]) == FIGURES
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analysis_json_holds_the_documented_scalars(analysis, run_dir):
    _, results = analysis
    assert results["n"] == 8 and results["n_correct"] == round(results["exact_match"] * 8)
    assert main(["evaluate", "--workdir", str(run_dir), "--quiet"]) == 0  # greedy_decode's translations
    evaluated = json.loads((run_dir / "eval_test.json").read_text())
    assert results["exact_match"] == evaluated["exact_match"] and results["wer"] == pytest.approx(evaluated["wer"])
    assert sum(results["groups"].values()) == results["n_correct"]
    forced = results["teacher_forced"]  # every sample has spans and references, so all are defined
    for key in ("alignment_accuracy", "boundary_f1", "window_mass", "diagonal_mass"):
        assert 0.0 <= forced[key] <= 1.0
    assert -1.0 <= forced["diagonality"] <= 1.0 and 0.0 <= forced["monotonicity"] <= 1.0
    deletion = results["deletion"]
    assert deletion["fractions"] == [0.2, 0.5] and len(deletion["wer_top"]) == 2
    np.testing.assert_allclose(deletion["gap"], np.subtract(deletion["log_prob_drop_top"], deletion["log_prob_drop_random"]))
    assert results["deletion_gap"] == pytest.approx(np.mean(deletion["gap"]))
    assert set(results["uniform_cross_attention"]) == {"log_prob_drop", "wer"}
    for key in ("boundary_f1_even", "boundary_f1_random"):
        assert 0.0 <= forced[key] <= 1.0


def test_analysis_json_sets_every_lens_beside_its_chance(analysis):
    _, results = analysis
    scores = results["attribution"]
    chance = scores["chance"]
    assert 0 < chance["own_sign_uniform_over_frames"] < chance["own_sign_uniform_over_signing_frames"] < 1
    for lens, s in scores["lenses"].items():
        assert 0.0 <= s["own_sign"] <= 1.0 and 0.0 <= s["alignment_accuracy"] <= 1.0, lens
        assert len(s["deletion"]["log_prob_drop_top_deleted"]) == len(s["deletion"]["fractions"])
        assert (s["parts"] is None) == (lens in ("attention", "rollout", "random")), lens
    # Random scores find the own sign about as often as a uniform row puts mass there.
    assert scores["lenses"]["random"]["own_sign"] == pytest.approx(chance["own_sign_uniform_over_frames"], abs=0.05)
    assert scores["sign_deletion"]["n"] == scores["n_known"] > 0
    heads = scores["head_knockout"]
    assert len(heads["log_prob_drop"]) == len(heads["own_sign"]) == 4  # the tiny preset's heads
    assert scores["activation_patching"]["n"] > 0


def test_the_sample_option_chooses_figure_2(run_dir, tmp_path):
    assert main(["analyze", "--workdir", str(run_dir), "--out", str(tmp_path), "--sample", "s060",
                 "--fractions", "0.5", "--quiet"]) == 0
    assert json.loads((tmp_path / "analysis.json").read_text())["sample"]["id"] == "s060"


def test_pose_points_undo_feature_selection():
    rng = np.random.default_rng(0)
    pose = rng.uniform(0.1, 0.9, (1, 1, N_LANDMARKS, 3)).astype(np.float32)
    pose[0, 0, slice(*LANDMARK_GROUPS["left_hand"])] = np.nan  # an undetected hand becomes zeros
    config = DataConfig()
    xy = pose_points(select_features(pose, config)[0], config.groups)
    body, right = slice(*LANDMARK_GROUPS["body"]), slice(*LANDMARK_GROUPS["right_hand"])
    np.testing.assert_allclose(xy[body], pose[0, 0, body, :2])
    np.testing.assert_allclose(xy[right], pose[0, 0, right, :2])
    assert np.isnan(xy[slice(*LANDMARK_GROUPS["left_hand"])]).all() and np.isnan(xy[slice(*LANDMARK_GROUPS["face"])]).all()
    # With hand shapes and velocities after the positions, the positions are still read.
    extra = DataConfig(hand_norm=True, velocity=True)
    np.testing.assert_allclose(pose_points(select_features(pose, extra)[0], extra.groups)[body], pose[0, 0, body, :2])


def test_figures_drawn_in_an_executor_come_with_the_future(run_dir, analysis, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from slt_jax.analysis.report import analyze

    with ThreadPoolExecutor(1) as drawing:
        future = analyze(run_dir, out=tmp_path, fractions=(0.2, 0.5), progress=False, draw_in=drawing)
    results = future.result()
    assert set(results["figures"]) == FIGURES and all((tmp_path / name).is_file() for name in FIGURES)
    written = json.loads((tmp_path / "analysis.json").read_text())
    assert written == json.loads(json.dumps(results)) and list(written) == list(analysis[1])  # same keys, same order
    assert {k: v for k, v in written.items() if k != "run"} == {k: v for k, v in analysis[1].items() if k != "run"}
