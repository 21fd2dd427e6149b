"""Training, checkpoints and the CLI, end to end on the toy corpus the tests write."""

import csv
import json

import jax
import numpy as np
import pytest

from slt_jax.cli import main
from slt_jax.config import get_config
from slt_jax.layout import LayoutError
from slt_jax.train import best_epoch, cached_results, load_run, train


def leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.fixture(scope="module")
def trained(corpus_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    assert main(["train", "--data", str(corpus_dir), "--config", "tiny", "--workdir", str(workdir),
                 "--quiet"]) == 0
    return workdir


def test_training_lowers_the_loss_and_logs_every_epoch(trained):
    lines = [json.loads(l) for l in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["train_loss"] < 0.7 * lines[0]["train_loss"]
    assert max(l["val_accuracy"] for l in lines) > 0.4  # chance is about 1/7 over 6 glosses + <eos>


def test_evaluate_writes_scores_and_translations(trained):
    assert main(["evaluate", "--workdir", str(trained), "--split", "test", "--quiet"]) == 0
    scores = json.loads((trained / "eval_test.json").read_text())
    assert scores["n"] == 8 and 0.0 <= scores["wer"] < 1.0 and {"exact_match", "bleu4", "chrf"} <= set(scores)
    with open(trained / "translations_test.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and set(rows[0]) == {"id", "reference", "hypothesis", "correct"}
    assert sum(int(r["correct"]) for r in rows) == round(scores["exact_match"] * 8)
    assert main(["evaluate", "--workdir", str(trained), "--decode", "beam", "--beam", "3", "--quiet"]) == 0
    assert json.loads((trained / "eval_test_beam.json").read_text())["beam"] == 3
    assert (trained / "translations_test_beam.csv").is_file()
    assert json.loads((trained / "eval_test.json").read_text()) == scores  # the greedy scores stay


def test_orbax_round_trip_restores_the_best_parameters(trained):
    run = load_run(trained)
    again = load_run(trained)
    assert leaves_equal(run.params, again.params)
    lines = [json.loads(l) for l in (trained / "metrics.jsonl").read_text().splitlines()]
    best = min(lines, key=lambda l: l["val_loss"])
    assert sorted(p.name for p in (trained / "checkpoints" / "best").iterdir() if p.name.isdigit()) == [
        str(best["epoch"])]
    assert run.epoch == best_epoch(trained) == best["epoch"]


def test_results_are_reused_only_for_the_parameters_they_scored(trained, tmp_path):
    assert main(["evaluate", "--workdir", str(trained), "--split", "val", "--quiet"]) == 0
    scores = trained / "eval_val.json"
    assert json.loads(scores.read_text())["epoch"] == best_epoch(trained)
    assert cached_results(scores, trained) == json.loads(scores.read_text())
    older = tmp_path / "eval_val.json"  # as if the run had trained on and kept a later epoch since
    older.write_text(json.dumps(json.loads(scores.read_text()) | {"epoch": best_epoch(trained) - 1}))
    assert cached_results(older, trained) is None and cached_results(tmp_path / "missing.json", trained) is None


def test_resume_continues_to_the_same_result(corpus_dir, tmp_path):
    config = get_config("tiny", ["train.max_epochs=4", "train.patience=100"])
    straight = train(config, corpus_dir, tmp_path / "straight", progress=False)
    train(get_config("tiny", ["train.max_epochs=2", "train.patience=100"]), corpus_dir, tmp_path / "resumed",
          progress=False)
    resumed = train(config, corpus_dir, tmp_path / "resumed", progress=False)
    assert resumed["epoch"] == 4 and resumed["train_loss"] == straight["train_loss"]
    assert leaves_equal(load_run(tmp_path / "straight").params, load_run(tmp_path / "resumed").params)
    assert len((tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()) == 4


def test_a_workdir_of_another_config_is_refused(corpus_dir, tmp_path):
    train(get_config("tiny", ["train.max_epochs=1"]), corpus_dir, tmp_path, progress=False)
    with pytest.raises(LayoutError, match="config.json: the workdir holds a run with another config"):
        train(get_config("tiny", ["model.d_model=8"]), corpus_dir, tmp_path, progress=False)


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "train" in out and "evaluate" in out
