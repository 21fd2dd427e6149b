"""Feature ablations: variants as configs, trained per variant with vmapped seeds, one table."""

import csv
import json

import pytest

from conftest import write_corpus
from slt_jax.cli import main
from slt_jax.config import PRESETS, get_config
from slt_jax.pipelines.ablate import ablation_table
from slt_jax.pipelines.designs import variant_config
from slt_jax.pipelines.sweep import seed_dirs


def test_variants_set_their_feature_options_and_reset_the_others():
    base = get_config("gloss16", ["data.velocity=true", "model.d_model=32"])
    raw, mixed = variant_config(base, "raw"), variant_config(base, "body_frame+hands+z")
    assert raw.name == "gloss16-raw" and raw.data == PRESETS["gloss16"].data and raw.model.d_model == 32
    assert mixed.name == "gloss16-body_frame+hands+z"
    assert (mixed.data.body_norm, mixed.data.hand_norm, mixed.data.use_3d, mixed.data.velocity) == ("frame", True, True, False)
    assert mixed.data.n_features == (75 + 40) * 3
    with pytest.raises(ValueError, match="unknown feature option 'elbows'"):
        variant_config(base, "body+elbows")


def test_the_table_gives_mean_and_sample_std_and_leaves_unknown_scores_blank():
    seeds = [{"wer": 0.1, "exact_match": 0.8, "diagonality": 0.5, "monotonicity": 1.0, "alignment_accuracy": None},
             {"wer": 0.3, "exact_match": 0.6, "diagonality": 0.7, "monotonicity": 0.8, "alignment_accuracy": None}]
    md, table_csv = ablation_table({"body": {"n_features": 66, "seeds": seeds}})
    assert "| body | 66 | 2 | 0.200 ± 0.141 | 0.700 ± 0.141 | 0.600 ± 0.141 | 0.900 ± 0.141 |  |" in md
    row = next(csv.DictReader(table_csv.splitlines()))
    assert float(row["diagonality_mean"]) == pytest.approx(0.6) and row["alignment_accuracy_mean"] == ""


def test_ablate_trains_each_variant_and_writes_the_table(tmp_path):
    write_corpus(tmp_path / "corpus", n_train=16, n_eval=6)
    work = tmp_path / "ablation"
    assert main(["ablate", "--data", str(tmp_path / "corpus"), "--base", "tiny", "--variants",
                 "raw,body+hands+velocity+presence", "--seeds", "2", "--epochs", "2", "--workdir", str(work),
                 "--quiet"]) == 0
    with open(work / "ablation.csv", newline="") as f:
        rows = {r["variant"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["raw", "body+hands+velocity+presence"]
    assert rows["raw"]["n_features"] == "150" and rows["body+hands+velocity+presence"]["n_features"] == "462"
    for variant, row in rows.items():
        runs = seed_dirs(work, f"tiny-{variant}", 2)
        config = json.loads((runs[1] / "config.json").read_text())
        assert config["model"]["n_features"] == int(row["n_features"]) and config["train"]["seed"] == 1
        wers = [json.loads((r / "eval_test.json").read_text())["wer"] for r in runs]
        assert float(row["wer_mean"]) == pytest.approx(sum(wers) / 2)
        assert -1 <= float(row["diagonality_mean"]) <= 1 and 0 <= float(row["monotonicity_mean"]) <= 1
        assert 0 <= float(row["alignment_accuracy_mean"]) <= 1  # the toy corpus has gloss spans
    saved = json.loads((seed_dirs(work, "tiny-raw", 1)[0] / "config.json").read_text())["data"]
    assert {k: saved[k] for k in ("body_norm", "hand_norm", "velocity", "hand_presence")} == \
        {"body_norm": "none", "hand_norm": False, "velocity": False, "hand_presence": False}
    assert "| raw | 150 | 2 |" in (work / "ablation.md").read_text()
