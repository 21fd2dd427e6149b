"""Seeds trained as one vmapped program behave like separate runs."""

import csv
import json

import jax
import numpy as np
import pytest

from slt_jax.cli import main
from slt_jax.config import DEFAULT_RECIPE, get_config
from slt_jax.pipelines.sweep import seed_dirs, table1
from slt_jax.runs import load_run
from slt_jax.train import train


def test_vmapped_seeds_match_separate_runs_and_make_table1(corpus_dir, tmp_path):
    assert main(["sweep", "--data", str(corpus_dir), "--configs", "tiny", "--seeds", "2", "--epochs", "3",
                 "--workdir", str(tmp_path / "sweep"), "--quiet"]) == 0
    single = train(get_config("tiny", ["train.max_epochs=3"], DEFAULT_RECIPE), corpus_dir, tmp_path / "single", progress=False)

    seed0, seed1 = (load_run(d) for d in seed_dirs(tmp_path / "sweep", "tiny", 2))
    assert (seed0.config.train.seed, seed1.config.train.seed) == (0, 1)
    alone = load_run(tmp_path / "single")
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(seed0.params), jax.tree.leaves(alone.params)):
        # Key biases cannot change attention (softmax ignores a per-row constant): their gradient
        # is rounding noise, which Adam scales up to full-size steps, so they differ run to run.
        if "'key']['bias']" not in jax.tree_util.keystr(path):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not np.allclose(jax.tree.leaves(seed0.params)[0], jax.tree.leaves(seed1.params)[0])
    log0 = (seed_dirs(tmp_path / "sweep", "tiny", 2)[0] / "metrics.jsonl").read_text().splitlines()
    assert len(log0) == 3
    assert np.isclose(json.loads(log0[-1])["train_loss"], single["train_loss"], rtol=1e-4)

    with open(tmp_path / "sweep" / "table1.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["config"] == "tiny" and row["seeds"] == "2" and 0.0 <= float(row["wer_mean"]) <= 2.0


def test_table1_reports_mean_and_sample_std_beside_the_paper():
    md, table_csv = table1({"gloss16": [{"wer": 0.1, "exact_match": 0.8, "n": 90}, {"wer": 0.3, "exact_match": 0.6, "n": 90}]})
    # Wilson's interval of 0.7 of 90 test samples
    assert "| gloss16 | 2 | 0.200 ± 0.141 | 0.700 ± 0.141 | [0.599, 0.785] | 0.09 |" in md
    row = table_csv.splitlines()[1].split(",")
    assert row[:3] == ["gloss16", "2", "0.2"] and [float(v) for v in row[-2:]] == pytest.approx([0.5987, 0.7849], abs=1e-4)
    assert "| 0.700 ± 0.000 | – | 0.09 |" in table1({"gloss16": [{"wer": 0.1, "exact_match": 0.7}]})[0]
