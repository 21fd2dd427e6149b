"""Training: a pure train step jitted once per bucket shape, early stopping, Orbax checkpoints.

A workdir holds everything a run needs and produces:

  config.json      the resolved Config (vocabulary size and feature count filled in)
  vocab.json       the target vocabulary, fitted on the train split
  run.json         where the data came from
  checkpoints/latest/<epoch>/   state + loop bookkeeping, for resuming
  checkpoints/best/<epoch>/     the parameters with the best `train.best_metric`
  metrics.jsonl    one line per epoch
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import serialization, struct

from slt_jax import data
from slt_jax.config import PAD, Config, load_config, save_config
from slt_jax.layout import LayoutError, write_json, write_text
from slt_jax.model import Transformer

MODEL_INPUTS = ("frames", "frame_mask", "decoder_input", "target", "sample_mask")


class TrainState(struct.PyTreeNode):
    step: jax.Array
    params: Any
    opt_state: Any


class Run(NamedTuple):
    """A trained run as `load_run` returns it."""

    config: Config
    vocab: data.Vocab
    params: Any
    workdir: Path

    @property
    def model(self) -> Transformer:
        return Transformer(self.config.model)


def resolve(config: Config, vocab: data.Vocab) -> Config:
    """Fills in what the data decides: vocabulary size, feature count, positional table length."""
    model = dataclasses.replace(
        config.model,
        vocab_size=len(vocab),
        n_features=config.data.n_features,
        max_len=max(config.model.max_len, config.data.max_frames, config.data.max_tokens),
    )
    return config.replace(model=model)


def init_params(config: Config, rng: jax.Array):
    model = Transformer(config.model)
    frames = jnp.zeros((1, config.data.buckets[0], config.model.n_features))
    tokens = jnp.zeros((1, config.data.max_tokens), jnp.int32)
    return model.init(rng, frames, frames[..., 0] == 0, tokens)["params"]


def token_losses(logits_BxLxV, target_BxL, sample_mask_B):
    """Summed cross-entropy, token count and correct argmax count over non-PAD targets."""
    weights = (target_BxL != PAD) & sample_mask_B[:, None]
    losses = optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, target_BxL)
    correct = jnp.argmax(logits_BxLxV, axis=-1) == target_BxL
    return {
        "loss_sum": jnp.sum(losses * weights),
        "tokens": jnp.sum(weights),
        "correct": jnp.sum(correct & weights),
    }


def make_train_step(model: Transformer, optimizer: optax.GradientTransformation) -> Callable:
    """Returns the jitted step (state, batch, dropout_root) -> (state, sums); `state` is donated."""

    def loss_fn(params, batch, rng):
        logits = model.apply({"params": params}, batch["frames"], batch["frame_mask"],
                             batch["decoder_input"], deterministic=False, rngs={"dropout": rng})
        sums = token_losses(logits, batch["target"], batch["sample_mask"])
        return sums["loss_sum"] / jnp.maximum(sums["tokens"], 1), sums

    def train_step(state: TrainState, batch, dropout_root):
        rng = jax.random.fold_in(dropout_root, state.step)
        grads, sums = jax.grad(loss_fn, has_aux=True)(state.params, batch, rng)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(state.step + 1, params, opt_state), sums

    return jax.jit(train_step, donate_argnums=0)


def make_eval_step(model: Transformer) -> Callable:
    def eval_step(params, batch):
        logits = model.apply({"params": params}, batch["frames"], batch["frame_mask"], batch["decoder_input"])
        return token_losses(logits, batch["target"], batch["sample_mask"])

    return jax.jit(eval_step)


def model_inputs(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: batch[k] for k in MODEL_INPUTS}


def summarise(sums: list[dict[str, jax.Array]], prefix: str) -> dict[str, float]:
    """Mean loss and token accuracy from per-batch sums (one host sync for the whole list)."""
    total = jax.device_get(jax.tree.map(lambda *xs: jnp.sum(jnp.stack(xs)), *sums))
    tokens = max(int(total["tokens"]), 1)
    return {f"{prefix}_loss": float(total["loss_sum"]) / tokens,
            f"{prefix}_accuracy": float(total["correct"]) / tokens}


def evaluate_loss(eval_step, params, examples, config: Config) -> dict[str, float]:
    batches = data.make_batches(examples, config.data, config.train.batch_size)
    return summarise([eval_step(params, model_inputs(b)) for b in batches], "val")


class Checkpoints:
    """The latest training state (to resume) and the best parameters, each an Orbax manager."""

    def __init__(self, directory: Path):
        def manager(name):
            options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                                   enable_async_checkpointing=False)
            return ocp.CheckpointManager(directory.absolute() / name, options=options)

        self.latest, self.best = manager("latest"), manager("best")

    def save_latest(self, epoch: int, state: TrainState, loop: dict) -> None:
        self.latest.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(serialization.to_state_dict(state)),
            loop=ocp.args.JsonSave(loop)))

    def save_best(self, epoch: int, params) -> None:
        self.best.save(epoch, args=ocp.args.Composite(params=ocp.args.StandardSave(params)))

    def restore_latest(self, template: TrainState) -> tuple[TrainState, dict] | None:
        epoch = self.latest.latest_step()
        if epoch is None:
            return None
        restored = self.latest.restore(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(serialization.to_state_dict(template)),
            loop=ocp.args.JsonRestore()))
        return serialization.from_state_dict(template, restored["state"]), dict(restored["loop"])

    def restore_params(self, template) -> Any:
        """The best parameters (the first epoch always saves some)."""
        epoch = self.best.latest_step()
        if epoch is None:
            raise LayoutError(f"{self.best.directory}: no checkpoint to load; train first")
        args = ocp.args.Composite(params=ocp.args.StandardRestore(template))
        return self.best.restore(epoch, args=args)["params"]

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def _prepare_workdir(workdir: Path, config: Config, data_dir: Path) -> tuple[Config, data.Vocab]:
    """Creates the workdir, or checks that an existing one holds the same run and reuses it."""
    config_path, vocab_path = workdir / "config.json", workdir / "vocab.json"
    if config_path.exists():
        vocab = data.Vocab.load(vocab_path)
        saved, wanted = load_config(config_path), resolve(config, vocab)
        ignore_epochs = lambda c: c.replace(train=dataclasses.replace(c.train, max_epochs=0))
        if ignore_epochs(saved) != ignore_epochs(wanted):
            raise LayoutError(f"{config_path}: the workdir holds a run with another config "
                              f"({saved.name}); resume it with the same settings or use a new workdir")
        return wanted, vocab
    vocab = data.fit_vocab(data_dir, config.data)
    config = resolve(config, vocab)
    workdir.mkdir(parents=True, exist_ok=True)
    vocab.save(vocab_path)
    write_json(workdir / "run.json", {"data": str(data_dir.absolute())})
    save_config(config_path, config)
    return config, vocab


def _truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drops log lines of epochs after the restored checkpoint (they will be redone)."""
    if path.exists():
        lines = [l for l in path.read_text().splitlines() if json.loads(l)["epoch"] <= last_epoch]
        write_text(path, "".join(l + "\n" for l in lines))


def train(config: Config, data_dir, workdir, progress: bool = True) -> dict[str, Any]:
    """Trains until early stopping or `train.max_epochs`, resuming from the latest checkpoint.

    Returns:
      The last epoch's metrics plus `best_epoch`, `best_<best_metric>` and `stopped_early`.
    """
    from tqdm import tqdm

    data_dir, workdir = Path(data_dir), Path(workdir)
    config, vocab = _prepare_workdir(workdir, config, data_dir)
    tc = config.train
    train_examples = data.load_examples(data_dir, "train", config.data, vocab, progress)
    val_examples = data.load_examples(data_dir, "val", config.data, vocab, progress)

    model = Transformer(config.model)
    optimizer = optax.adam(tc.learning_rate)
    init_rng, dropout_root = jax.random.split(jax.random.key(tc.seed))
    params = init_params(config, init_rng)
    state = TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))
    loop = {"epoch": 0, "best_early": -math.inf, "best_metric": math.inf, "best_epoch": 0,
            "waited": 0, "stopped_early": False}

    checkpoints = Checkpoints(workdir / "checkpoints")
    restored = checkpoints.restore_latest(state)
    if restored is not None:
        state, loop = restored
    metrics_path = workdir / "metrics.jsonl"
    _truncate_metrics(metrics_path, loop["epoch"])

    train_step, eval_step = make_train_step(model, optimizer), make_eval_step(model)
    sign = lambda name: -1.0 if name.endswith("accuracy") else 1.0  # lower is better after sign
    record = {}
    bar = tqdm(total=tc.max_epochs, initial=loop["epoch"], desc=f"train {config.name}", unit="epoch",
               disable=not progress)
    while loop["epoch"] < tc.max_epochs and not loop["stopped_early"]:
        epoch = loop["epoch"] + 1
        start = time.perf_counter()
        rng = np.random.default_rng([tc.seed, epoch])
        sums = []
        for batch in data.make_batches(train_examples, config.data, tc.batch_size, rng):
            state, step_sums = train_step(state, model_inputs(batch), dropout_root)
            sums.append(step_sums)
        record = {"epoch": epoch, "step": int(state.step), **summarise(sums, "train")}
        if not math.isfinite(record["train_loss"]):
            raise FloatingPointError(f"{workdir}: non-finite training loss in epoch {epoch} "
                                     f"(step {int(state.step)}); the last good checkpoint is kept")
        record |= evaluate_loss(eval_step, state.params, val_examples, config)
        record["seconds"] = time.perf_counter() - start
        record["samples_per_s"] = len(train_examples) / record["seconds"]

        if sign(tc.best_metric) * record[tc.best_metric] < loop["best_metric"]:
            loop |= {"best_metric": sign(tc.best_metric) * record[tc.best_metric], "best_epoch": epoch}
            checkpoints.save_best(epoch, state.params)
        if -sign(tc.early_stop_metric) * record[tc.early_stop_metric] > loop["best_early"]:
            loop |= {"best_early": -sign(tc.early_stop_metric) * record[tc.early_stop_metric], "waited": 0}
        else:
            loop["waited"] += 1
        loop |= {"epoch": epoch, "stopped_early": loop["waited"] >= tc.patience}
        with open(metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        checkpoints.save_latest(epoch, state, loop)
        bar.update(1)
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_acc=f"{record['val_accuracy']:.3f}",
                        samples_s=f"{record['samples_per_s']:.0f}")
    bar.close()
    checkpoints.close()
    return record | {"best_epoch": loop["best_epoch"], "stopped_early": loop["stopped_early"],
                     f"best_{tc.best_metric}": sign(tc.best_metric) * loop["best_metric"]}


def load_run(workdir) -> Run:
    """Loads a trained run: its resolved config, vocabulary and best parameters.

    `run.model.apply({"params": run.params}, ...)` or `extract_attention(run.params, batch)`
    then need nothing else.
    """
    workdir = Path(workdir)
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise LayoutError(f"{config_path}: not a training workdir (config.json missing)")
    config = load_config(config_path)
    vocab = data.Vocab.load(workdir / "vocab.json")
    template = init_params(config, jax.random.key(0))
    checkpoints = Checkpoints(workdir / "checkpoints")
    try:
        params = checkpoints.restore_params(template)
    finally:
        checkpoints.close()
    return Run(config, vocab, params, workdir)
