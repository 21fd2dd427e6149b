"""Training, checkpoints and the CLI, end to end on the toy corpus the tests write."""

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_jax.cli import main
from slt_jax.config import Config, get_config, recipe_name
from slt_jax.layout import LayoutError
from slt_jax.runs import Checkpoints, best_epoch, cached_results, load_run
from slt_jax.train import Stopping, _seed_state, fit, learning_rate_schedule, make_optimizer, train


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


def test_schedules_warm_up_then_follow_their_shape():
    def rates(*overrides):
        schedule = learning_rate_schedule(get_config("gloss16", list(overrides)).train)
        return np.array([float(schedule(s)) for s in (0, 50, 100, 200, 400, 10_000)])

    np.testing.assert_allclose(rates(), 1e-3)  # the authors' constant rate
    warm = ("train.learning_rate=2e-3", "train.warmup_steps=100")
    np.testing.assert_allclose(rates(*warm, "train.schedule=rsqrt"),
                               [0, 1e-3, 2e-3, 2e-3 * np.sqrt(100 / 200), 1e-3, 2e-3 * np.sqrt(100 / 10_000)],
                               rtol=1e-6)
    cosine = rates(*warm, "train.schedule=cosine", "train.decay_steps=400", "train.final_lr_fraction=0.1")
    np.testing.assert_allclose(cosine[[0, 2, 4, 5]], [0, 2e-3, 2e-4, 2e-4], rtol=1e-6)
    assert 2e-4 < cosine[3] < 2e-3


def test_recipes_are_named_train_fields():
    authors, fast = get_config("gloss16"), get_config("gloss16", recipe="fast")
    assert recipe_name(authors.train) == "authors" and recipe_name(fast.train) == "fast"
    assert fast.model == authors.model and fast.train.learning_rate == 3 * authors.train.learning_rate
    assert recipe_name(get_config("gloss16", ["train.patience=7"], recipe="fast").train) == "custom"
    converge = get_config("gloss16", recipe="converge").train
    assert recipe_name(converge) == "converge" and converge.early_stop_metric == converge.best_metric == "val_loss"
    assert get_config("gloss16", recipe="authors") == authors
    with pytest.raises(ValueError, match="unknown recipe"):
        get_config("gloss16", recipe="slow")


def test_stopping_stops_each_seed_when_its_patience_runs_out():
    tc = get_config("gloss16", ["train.patience=2"]).train
    stopping = Stopping.start(2)
    # Seed 0 never beats its first epoch; seed 1 improves every epoch.
    for epoch, accuracy in enumerate([(0.5, 0.5), (0.4, 0.6), (0.4, 0.7), (0.4, 0.8)], 1):
        stopping.update(epoch, {"val_accuracy": np.array(accuracy), "val_loss": np.array([1.0, 1.0])}, tc)
        assert list(stopping.stopped) == [epoch >= 3, False]
    restored = Stopping.from_json(stopping.to_json())
    assert all(np.array_equal(getattr(restored, k), getattr(stopping, k)) for k in ("waited", "stopped", "best"))
    old = stopping.to_json() | {"decays": [0, 0]}  # a checkpoint from when plateau decays existed
    assert list(Stopping.from_json(old).stopped) == [True, False]


def test_a_config_from_before_the_plateau_options_were_removed_loads():
    d = get_config("gloss16").to_dict()
    d["train"] |= {"plateau_decays": 0, "plateau_factor": 0.1}
    assert Config.from_dict(d) == get_config("gloss16")


def test_a_stopped_seed_is_no_longer_updated(corpus_dir, tmp_path):
    runs = [tmp_path / "seed_0", tmp_path / "seed_1"]
    results = fit(get_config("tiny", ["train.patience=2", "train.max_epochs=15"]), corpus_dir, tmp_path, runs,
                  progress=False)
    epochs = [r["epoch"] for r in results]
    first = int(np.argmin(epochs))
    assert epochs[first] < epochs[1 - first] and all(r["stopped_early"] for r in results)
    assert [len((run / "metrics.jsonl").read_text().splitlines()) for run in runs] == epochs
    # The first seed to stop kept the parameters of its last epoch (its best), and the final
    # state still holds them bit for bit after the other seed's extra epochs.
    stopped = load_run(runs[first])
    assert stopped.epoch == epochs[first]
    template = jax.tree.map(lambda *xs: jnp.stack(xs), *[
        _seed_state(stopped.config, make_optimizer(stopped.config.train), s)[0] for s in (0, 1)])
    checkpoints = Checkpoints(tmp_path / "checkpoints")
    state, loop = checkpoints.restore_latest(template)
    checkpoints.close()
    assert loop["epoch"] == max(epochs) and list(np.asarray(state.step)) == [r["step"] for r in results]
    assert results[0]["step"] * epochs[1] == results[1]["step"] * epochs[0]  # no step after stopping
    assert leaves_equal(jax.tree.map(lambda x: x[first], state.params), stopped.params)
