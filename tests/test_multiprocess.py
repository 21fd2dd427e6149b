"""Training as two processes (JAX's distributed runtime, gloo collectives on CPU) gives what one
process with the same two devices gives.

Each run is `slt-jax train` in its own subprocess: the device count (XLA_FLAGS) and the
distributed runtime must be set before jax starts, and this test process has already started it.
The two processes share one workdir, as hosts share storage on a cluster.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from slt_jax.runs import load_run

EPOCHS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(corpus_dir, workdir, devices_per_process: int, *distributed: str) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_per_process}")
    command = [sys.executable, "-m", "slt_jax.cli", "train", "--data", str(corpus_dir), "--config", "tiny",
               "--epochs", str(EPOCHS), "--workdir", str(workdir), "--quiet", *distributed]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out[out.index("{\n"):])  # after gloo's own lines ("[Gloo] Rank 0 is connected ...")


def test_two_processes_train_as_one_process_with_two_devices(corpus_dir, tmp_path):
    coordinator = f"127.0.0.1:{_free_port()}"
    pair = [_train(corpus_dir, tmp_path / "two", 1, "--coordinator", coordinator, "--num-processes", "2",
                   "--process-id", str(k)) for k in range(2)]
    single = _train(corpus_dir, tmp_path / "one", 2)
    results = [_finish(p) for p in pair]
    one = _finish(single)

    assert results[0] == results[1] | {k: results[0][k] for k in ("seconds", "samples_per_s")}
    # Bit-equal: each device runs the same program on the same rows, and an all-reduce of two
    # operands rounds once whichever way it adds them.
    lines = {name: [json.loads(l) for l in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
             for name in ("two", "one")}
    assert [l["epoch"] for l in lines["two"]] == list(range(1, EPOCHS + 1))  # one writer: no duplicates
    metrics = ("step", "train_loss", "train_accuracy", "val_loss", "val_accuracy")
    assert [{m: l[m] for m in metrics} for l in lines["two"]] == [{m: l[m] for m in metrics} for l in lines["one"]]
    assert lines["two"][-1]["train_loss"] < lines["two"][0]["train_loss"]  # it trained

    # The checkpoint the two processes wrote together loads in one process, equal to the other run's.
    two, single_run = load_run(tmp_path / "two"), load_run(tmp_path / "one")
    assert two.epoch == single_run.epoch == one["best_epoch"]
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(two.params), jax.tree.leaves(single_run.params)))
