"""Crash and resume, determinism and the non-finite guard, on real `slt-jax` processes.

A kill is a SIGKILL of the command's whole process group (its workers too), as an out-of-memory
killer or a lost machine would do it: nothing gets to clean up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from slt_jax import runs, train
from slt_jax.cli import main
from slt_jax.config import DEFAULT_RECIPE, get_config
from slt_jax.layout import load_pose, save_pose
from slt_jax.pipelines.sweep import seed_dirs
from slt_jax.runs import load_run
from slt_jax.train import fit

from conftest import write_corpus
from test_extract import MEDIA, needs_mediapipe

EPOCHS = 5
TIMING = ("seconds", "samples_per_s")  # wall-clock fields: the only ones allowed to differ

# `slt-jax train` writing its checkpoints after every epoch, killed right after epoch KILL_AT saved
# its best parameters and logged its metrics but before its latest checkpoint: the worst moment,
# when the two disagree.
KILL_BEFORE_LATEST = """
import os, signal, sys
from slt_jax import cli, runs

KILL_AT = {epoch}
runs.SAVE_EVERY_S = 0
save_latest = runs.Checkpoints.save_latest

def save_latest_or_die(self, epoch, state, loop):
    if epoch == KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)
    save_latest(self, epoch, state, loop)

runs.Checkpoints.save_latest = save_latest_or_die
sys.exit(cli.main(sys.argv[1:]))
"""


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "slt_jax.cli", *args]


def train_args(data: Path, workdir: Path, epochs: int = EPOCHS) -> list[str]:
    return ["train", "--data", str(data), "--workdir", str(workdir), "--config", "tiny", "--epochs", str(epochs),
            "--quiet"]


def kill_when(cmd: list[str], ready, timeout_s: float = 600) -> None:
    """Runs `cmd` in a new process group and SIGKILLs the group as soon as `ready()` holds."""
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would stall the command
        process = subprocess.Popen(cmd, start_new_session=True, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while not ready() and time.monotonic() < deadline:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"{cmd[3]} ended (code {process.returncode}) before it was killed: "
                            f"{log.read().decode()[-2000:]}")
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL


def metrics(run: Path) -> list[dict]:
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in TIMING} for line in lines]


def latest(shared: Path) -> tuple[int, dict, dict]:
    """The epoch, training state and loop bookkeeping in `checkpoints/latest`, read as stored."""
    options = ocp.CheckpointManagerOptions(read_only=True)
    with ocp.CheckpointManager((shared / "checkpoints" / "latest").absolute(), options=options) as manager:
        epoch = manager.latest_step()
        restored = manager.restore(epoch, args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                                                  loop=ocp.args.JsonRestore()))
    return epoch, restored["state"], restored["loop"]


def assert_trees_equal(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def assert_same_run(a: Path, b: Path, shared_a: Path | None = None, shared_b: Path | None = None) -> None:
    """Identical metrics, best parameters and latest training state (`shared_*`: where
    `checkpoints/latest` lives, the run itself unless it is a sweep's seed)."""
    assert metrics(a) == metrics(b)
    assert_trees_equal(load_run(a).params, load_run(b).params)
    assert_trees_equal(latest(shared_a or a), latest(shared_b or b))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume_corpus")
    write_corpus(root, n_train=24, n_eval=4)
    return root


@pytest.fixture(scope="module")
def straight(corpus, tmp_path_factory) -> Path:
    """An uninterrupted run: the reference for every other run here."""
    run = tmp_path_factory.mktemp("straight")
    assert main(train_args(corpus, run)) == 0
    assert len(metrics(run)) == EPOCHS
    return run


def test_two_fresh_runs_are_identical(corpus, straight, tmp_path):
    assert main(train_args(corpus, tmp_path)) == 0
    assert_same_run(straight, tmp_path)


def test_train_killed_at_the_worst_moment_resumes_to_the_same_run(corpus, straight, tmp_path):
    kill_at = 3
    code = KILL_BEFORE_LATEST.format(epoch=kill_at)
    args = train_args(corpus, tmp_path)
    killed = subprocess.run([sys.executable, "-c", code, *args], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    # What the kill left: epoch 3 logged and, as it improved, its best saved; latest still epoch 2.
    assert [m["epoch"] for m in metrics(tmp_path)] == [1, 2, 3]
    assert (tmp_path / "checkpoints" / "best" / str(kill_at)).is_dir()
    assert latest(tmp_path)[0] == kill_at - 1
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 4, "step": 2')  # a line torn by a kill mid-write

    assert main(args) == 0
    assert_same_run(straight, tmp_path)


def test_checkpoints_held_back_are_written_when_training_is_interrupted(corpus, straight, tmp_path, monkeypatch):
    """With the default cadence a short run writes its checkpoints once, at the end; a Ctrl-C
    (or any exception) still writes the last finished epoch, and training resumes from it."""
    writes = []
    save_latest = runs.Checkpoints.save_latest
    monkeypatch.setattr(runs.Checkpoints, "save_latest",
                        lambda self, epoch, *a: writes.append(epoch) or save_latest(self, epoch, *a))
    validate, epochs = train._validate, []

    def interrupted_in_epoch_3(*args):
        epochs.append(len(epochs) + 1)
        if epochs[-1] == 3:
            raise KeyboardInterrupt
        return validate(*args)

    monkeypatch.setattr(train, "_validate", interrupted_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        main(train_args(corpus, tmp_path))
    assert writes == [2] and latest(tmp_path)[0] == 2

    monkeypatch.setattr(train, "_validate", validate)
    assert main(train_args(corpus, tmp_path)) == 0
    assert writes == [2, EPOCHS]
    assert_same_run(straight, tmp_path)


def test_sweep_killed_mid_run_resumes_to_the_same_seeds(corpus, tmp_path):
    seeds, config = 2, get_config("tiny", [f"train.max_epochs={EPOCHS}"], DEFAULT_RECIPE)  # as the CLI
    fit(config, corpus, tmp_path / "straight" / "tiny", seed_dirs(tmp_path / "straight", "tiny", seeds), progress=False)
    sweep = tmp_path / "sweep"
    args = ["sweep", "--data", str(corpus), "--configs", "tiny", "--seeds", str(seeds), "--epochs", str(EPOCHS),
            "--workdir", str(sweep), "--split", "val", "--quiet"]
    log = seed_dirs(sweep, "tiny", seeds)[0] / "metrics.jsonl"
    kill_when(command(*args), lambda: log.exists() and len(log.read_text().splitlines()) >= 2)
    assert not (sweep / "table1.md").exists()

    assert main(args) == 0
    for straight_seed, resumed_seed in zip(seed_dirs(tmp_path / "straight", "tiny", seeds), seed_dirs(sweep, "tiny", seeds)):
        assert_same_run(straight_seed, resumed_seed, tmp_path / "straight" / "tiny", sweep / "tiny")
    assert "| tiny | 2 |" in (sweep / "table1.md").read_text()


def test_a_non_finite_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(corpus, straight, tmp_path, capsys):
    # Coordinates of 1e30 are finite (NaN and Inf would be read as missing points) but overflow
    # the network: every training batch of the next epoch gives a non-finite loss.
    bad_corpus, run = tmp_path / "corpus", tmp_path / "run"
    shutil.copytree(corpus, bad_corpus)
    for pose in (bad_corpus / "poses").glob("*.npy"):
        save_pose(bad_corpus, pose.stem, np.full_like(load_pose(bad_corpus, pose.stem), 1e30))
    shutil.copytree(straight, run)
    steps = metrics(straight)[-1]["step"]

    assert main(train_args(bad_corpus, run, EPOCHS + 2)) == 1
    assert capsys.readouterr().err.endswith(
        f"slt-jax: error: {run}: non-finite training loss at step {steps + 1} (epoch {EPOCHS + 1}); "
        f"stopped, checkpoints/latest keeps epoch {EPOCHS}\n")
    assert_same_run(straight, run)


@pytest.mark.extract_env
def test_extract_killed_mid_run_keeps_finished_files_and_completes(tmp_path):
    needs_mediapipe()
    videos, out = tmp_path / "videos", tmp_path / "keypoints"
    videos.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(MEDIA / "carphone_pristine.mp4", videos / f"{name}.mp4")
    # Killed after the first pose is written and before any manifest save records it.
    code = "import sys; from slt_jax import cli; from slt_jax.extract import driver; driver.SAVE_EVERY_S = 1e9; sys.exit(cli.main(sys.argv[1:]))"
    args = ["extract", "--videos", str(videos), "--out", str(out), "--workers", "1", "--quiet"]
    kill_when([sys.executable, "-c", code, *args], lambda: any((out / "poses").glob("*.npy")))
    assert not (out / "manifest.json").exists()
    finished = {p: p.stat().st_mtime_ns for p in (out / "poses").glob("*.npy")}
    assert all(load_pose(out, p.stem).shape == (120, 1, 543, 3) for p in finished)  # no partial pose

    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # not redone
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert sorted(files) == ["a", "b", "c"] and all(e["status"] == "ok" and e["frames"] == 120 for e in files.values())
    assert all(files[p.stem]["ms_per_frame"] is None and files[p.stem]["fps"] == pytest.approx(29.97, abs=0.01)
               for p in finished)
    poses = [load_pose(out, name) for name in ("a", "b", "c")]
    for pose in poses[1:]:  # the same video three times: the same keypoints
        np.testing.assert_array_equal(pose, poses[0])
