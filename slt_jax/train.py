"""Training: the pure steps jitted once per bucket shape, the optimiser, sharding, early stopping, `fit`."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm import tqdm

from slt_jax import data
from slt_jax.config import PAD, Config
from slt_jax.model import Transformer
from slt_jax.runs import (Checkpoints, TrainingCheckpoints, init_params, log_epoch, open_run, truncate_metrics,
                          write_run)

MODEL_INPUTS = ("frames", "frame_mask", "decoder_input", "target", "sample_mask")


class TrainState(struct.PyTreeNode):
    step: jax.Array
    params: Any
    opt_state: Any


def learning_rate_schedule(tc) -> optax.Schedule:
    """The learning rate per update: linear warm-up to `tc.learning_rate`, then `tc.schedule`."""
    peak, warmup = tc.learning_rate, tc.warmup_steps
    if tc.schedule == "constant":
        after = optax.constant_schedule(peak)
    elif tc.schedule == "cosine":
        after = optax.cosine_decay_schedule(peak, max(tc.decay_steps - warmup, 1), tc.final_lr_fraction)
    else:  # "rsqrt" (config.SCHEDULES)
        after = lambda step: peak * jnp.sqrt(max(warmup, 1) / (jnp.maximum(step, 0) + max(warmup, 1)))
    if not warmup:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), after], [warmup])


def make_optimizer(tc) -> optax.GradientTransformation:
    """Adam on the configured schedule, after global-norm clipping when `tc.clip_norm` is set."""
    adam = optax.adam(learning_rate_schedule(tc))
    return optax.chain(optax.clip_by_global_norm(tc.clip_norm), adam) if tc.clip_norm else adam


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


def train_step_fn(model: Transformer, optimizer: optax.GradientTransformation) -> Callable:
    """The pure step (state, batch, dropout_root) -> (state, sums); jit or vmap it."""

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

    return train_step


def eval_step_fn(model: Transformer) -> Callable:
    """The pure step (params, batch) -> sums of loss, tokens and correct tokens."""

    def eval_step(params, batch):
        logits = model.apply({"params": params}, batch["frames"], batch["frame_mask"], batch["decoder_input"])
        return token_losses(logits, batch["target"], batch["sample_mask"])

    return eval_step


def make_train_step(model: Transformer, optimizer: optax.GradientTransformation) -> Callable:
    """The train step, jitted; its `state` argument is donated."""
    return jax.jit(train_step_fn(model, optimizer), donate_argnums=0)


def batch_sharding(batch_size: int) -> NamedSharding | None:
    """Splits the batch axis over every device (None on one device: nothing to place).

    Parameters and optimiser state are replicated (`replicated(sharding)`); jit then runs the
    step data-parallel and XLA adds the gradient all-reduce.
    """
    devices = jax.devices()
    if len(devices) == 1:
        return None
    if batch_size % len(devices):
        raise ValueError(f"batch size {batch_size} does not split over {len(devices)} devices; "
                         f"set train.batch_size to a multiple of {len(devices)}")
    return NamedSharding(Mesh(np.array(devices), ("batch",)), PartitionSpec("batch"))


def replicated(sharding: NamedSharding | None, tree):
    """`tree` copied onto every device of the sharding's mesh (each process holds the same tree)."""
    if sharding is None:
        return tree
    everywhere = NamedSharding(sharding.mesh, PartitionSpec())
    if jax.process_count() == 1:
        return jax.device_put(tree, everywhere)
    # device_put takes only this process's devices; across processes, each gives its own copies.
    return jax.tree.map(lambda x: jax.make_array_from_single_device_arrays(
        x.shape, everywhere, [jax.device_put(x, d) for d in everywhere.addressable_devices]), tree)


def model_inputs(batch: dict[str, np.ndarray], sharding: NamedSharding | None = None) -> dict:
    """The arrays the steps take; with a sharding, placed as one global array per key.

    Every process builds the same global batch, so on several hosts each passes its own rows.
    """
    inputs = {k: batch[k] for k in MODEL_INPUTS}
    if sharding is None:
        return inputs
    rows = len(inputs["frames"]) // jax.process_count()
    start = jax.process_index() * rows
    return {k: jax.make_array_from_process_local_data(sharding, v[start : start + rows], v.shape)
            for k, v in inputs.items()}


def summarise(sums: list[dict[str, jax.Array]], prefix: str) -> dict[str, float]:
    """Mean loss and token accuracy from per-batch sums (one host sync for the whole list);
    sums with a leading seed axis give per-seed arrays."""
    total = jax.device_get(jax.tree.map(lambda *xs: jnp.sum(jnp.stack(xs), axis=0), *sums))
    tokens = np.maximum(total["tokens"], 1)
    return {f"{prefix}_loss": total["loss_sum"] / tokens, f"{prefix}_accuracy": total["correct"] / tokens}


def lower_is_better(metric: str, value):
    """Accuracies are maximised, losses minimised: flip accuracies so lower is always better."""
    return -value if metric.endswith("accuracy") else value


@dataclasses.dataclass
class Stopping:
    """Early stopping and best-checkpoint bookkeeping, element-wise over seeds (one for a run).

    `best` tracks `train.best_metric` (which parameters to keep) and `early` tracks
    `train.early_stop_metric` (when to stop), both as lower-is-better values. A seed whose patience
    runs out stops, keeps its best parameters and is no longer updated.
    """

    best: np.ndarray
    best_epoch: np.ndarray
    early: np.ndarray
    waited: np.ndarray
    stopped: np.ndarray

    @classmethod
    def start(cls, n: int) -> "Stopping":
        return cls(np.full(n, np.inf), np.zeros(n, int), np.full(n, np.inf), np.zeros(n, int), np.zeros(n, bool))

    def update(self, epoch: int, record: dict, tc) -> np.ndarray:
        """Takes one epoch's validation metrics (scalars or per-seed arrays); returns which
        seeds improved their best metric (their parameters should be kept)."""
        live = ~self.stopped
        best = np.asarray(lower_is_better(tc.best_metric, record[tc.best_metric]), float)
        early = np.asarray(lower_is_better(tc.early_stop_metric, record[tc.early_stop_metric]), float)
        improved = live & (best < self.best)
        self.best = np.where(improved, best, self.best)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)
        better = live & (early < self.early)
        self.early = np.where(better, early, self.early)
        self.waited = np.where(better, 0, self.waited + live)
        self.stopped = self.stopped | (self.waited >= tc.patience)
        return improved

    def to_json(self) -> dict:
        return {k: v.tolist() for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict) -> "Stopping":
        # A checkpoint written while plateau decays existed also holds `decays`: ignored.
        fresh = cls.start(len(d["stopped"]))
        return dataclasses.replace(fresh, **{k: np.asarray(d[k], v.dtype) for k, v in vars(fresh).items()})


def first_non_finite_step(losses, last_step: int) -> int:
    """The step whose loss was the first non-finite one, from an epoch's per-step losses (each a
    scalar or per-seed array) and the step count at its end."""
    finite = np.isfinite(np.stack(jax.device_get(losses)).reshape(len(losses), -1)).all(axis=1)
    return last_step - len(losses) + 1 + int(np.argmin(finite))


def _scatter(values: np.ndarray, live: np.ndarray, n: int) -> np.ndarray:
    """Per-live-seed values placed in an array over all n seeds (NaN for the stopped ones)."""
    full = np.full(n, np.nan)
    full[live] = values
    return full


def _seed_state(config: Config, optimizer, seed: int) -> tuple[TrainState, jax.Array]:
    init_rng, dropout_root = jax.random.split(jax.random.key(seed))
    params = init_params(config, init_rng)
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params)), dropout_root


def _prepare(config: Config, data_dir: Path, workdir: Path, run_dirs: list[Path], seeds: list[int],
             progress: bool) -> tuple[Config, list, list]:
    """The resolved config and the train and val examples; the shared and per-seed run folders are
    written once the data has loaded."""
    config, vocab = open_run(workdir, config, data_dir)
    runs = [(run_dir, open_run(run_dir, config.replace(train=dataclasses.replace(config.train, seed=seed)), data_dir,
                               vocab)[0]) for run_dir, seed in zip(run_dirs, seeds)]
    train_examples = data.load_examples(data_dir, "train", config.data, vocab, progress)
    val_examples = data.load_examples(data_dir, "val", config.data, vocab, progress)
    for run_dir, run_config in [(workdir, config), *runs]:
        write_run(run_dir, run_config, vocab, data_dir)
    return config, train_examples, val_examples


def _start(config: Config, optimizer, seeds: list[int],
           checkpoints: Checkpoints) -> tuple[TrainState, jax.Array, int, Stopping]:
    """The seeds' states and dropout roots stacked, the last finished epoch and the stopping
    bookkeeping: restored from `checkpoints/latest` when it holds an epoch, else fresh."""
    stack = lambda *xs: jax.tree.map(lambda *leaves: jnp.stack(leaves), *xs)
    state, dropout_roots = stack(*(_seed_state(config, optimizer, seed) for seed in seeds))
    restored = checkpoints.restore_latest(state)
    if restored is None:
        return state, dropout_roots, 0, Stopping.start(len(seeds))
    state, loop = restored
    return state, dropout_roots, loop["epoch"], Stopping.from_json(loop["stopping"])


def _train_epoch(train_step: Callable, state: TrainState, dropout_roots: jax.Array, examples: list,
                 config: Config, epoch: int, sharding: NamedSharding | None,
                 workdir: Path) -> tuple[TrainState, dict]:
    """One epoch's steps, batches in the order `train.seed` and the epoch give; returns the state
    after them and the mean training loss and accuracy. A non-finite loss stops training."""
    rng = np.random.default_rng([config.train.seed, epoch])
    sums = []
    for batch in data.make_batches(examples, config.data, config.train.batch_size, rng):
        state, step_sums = train_step(state, model_inputs(batch, sharding), dropout_roots)
        sums.append(step_sums)
    record = summarise(sums, "train")
    if not np.all(np.isfinite(record["train_loss"])):
        step = first_non_finite_step([s["loss_sum"] for s in sums], int(state.step[0]))
        kept = f"checkpoints/latest keeps epoch {epoch - 1}" if epoch > 1 else "no epoch had finished to keep"
        raise FloatingPointError(f"{workdir}: non-finite training loss at step {step} (epoch {epoch}); "
                                 f"stopped, {kept}")
    return state, record


def _validate(eval_step: Callable, params, examples: list, config: Config,
              sharding: NamedSharding | None) -> dict:
    """One epoch's validation: mean loss and token accuracy over the val examples."""
    batches = data.make_batches(examples, config.data, config.train.batch_size)
    return summarise([eval_step(params, model_inputs(b, sharding)) for b in batches], "val")


def _seed_record(k: int, epoch: int, state: TrainState, record: dict, stopping: Stopping,
                 seconds: float, samples: int) -> dict:
    """Seed k's metrics.jsonl line for the epoch that took `seconds` to step `samples` examples."""
    return {"epoch": epoch, "step": int(state.step[k]), **{name: float(values[k]) for name, values in record.items()},
            "seconds": seconds, "samples_per_s": samples / seconds, "stopped_early": bool(stopping.stopped[k])}


def fit(config: Config, data_dir, workdir, run_dirs=None, progress: bool = True) -> list[dict[str, Any]]:
    """Trains one config for several seeds at once, as one vmapped, jit-compiled program.

    Seed k uses `train.seed + k` for its initialisation and dropout keys; all seeds see the same
    batches (data order and frame sampling from `train.seed` and the epoch). Each seed stops
    early on its own and keeps its own best parameters. With one run folder this is plain
    training of one model.

    Args:
      config: the run's configuration.
      data_dir: a corpus in the converted layout.
      workdir: where the shared state goes (config, vocabulary, `checkpoints/latest`).
      run_dirs: one folder per seed, each becoming a normal run (`load_run` reads it): config
        with its seed, vocabulary, `checkpoints/best`, `metrics.jsonl`. Default: [workdir].

    Returns:
      Per seed: the last epoch's metrics plus `best_epoch`, `best_<best_metric>`, `stopped_early`.
    """
    data_dir, workdir = Path(data_dir), Path(workdir)
    run_dirs = [Path(d) for d in (run_dirs or [workdir])]
    seeds = [config.train.seed + k for k in range(len(run_dirs))]
    config, train_examples, val_examples = _prepare(config, data_dir, workdir, run_dirs, seeds, progress)
    tc = config.train
    model, optimizer = Transformer(config.model), make_optimizer(tc)
    checkpoints = Checkpoints(workdir / "checkpoints")
    state, dropout_roots, epoch, stopping = _start(config, optimizer, seeds, checkpoints)
    sharding = batch_sharding(tc.batch_size)
    state, dropout_roots = replicated(sharding, (state, dropout_roots))
    saves = TrainingCheckpoints(checkpoints, [Checkpoints(d / "checkpoints") for d in run_dirs])
    for run_dir in run_dirs:
        truncate_metrics(run_dir / "metrics.jsonl", epoch)

    train_step = jax.jit(jax.vmap(train_step_fn(model, optimizer), in_axes=(0, None, 0)), donate_argnums=0)
    eval_step = jax.jit(jax.vmap(eval_step_fn(model), in_axes=(0, None)))
    records = [{} for _ in seeds]
    bar = tqdm(total=tc.max_epochs, initial=epoch, desc=f"train {config.name} x{len(seeds)} seeds",
               unit="epoch", disable=not progress)
    try:
        while epoch < tc.max_epochs and not stopping.stopped.all():
            epoch += 1
            start = time.perf_counter()
            # Only the seeds still training are stepped (a new live count compiles the steps once
            # more); a stopped seed's state stays as it was when it stopped.
            live = np.flatnonzero(~stopping.stopped)
            live_state, live_roots = jax.tree.map(lambda x: x[live], (state, dropout_roots))
            live_state, record = _train_epoch(train_step, live_state, live_roots, train_examples, config, epoch,
                                              sharding, workdir)
            record |= _validate(eval_step, live_state.params, val_examples, config, sharding)
            state = jax.tree.map(lambda full, part: full.at[live].set(part), state, live_state)
            record = {name: _scatter(values, live, len(seeds)) for name, values in record.items()}
            seconds = time.perf_counter() - start

            improved = stopping.update(epoch, record, tc)
            for k in np.flatnonzero(improved):
                saves.keep_best(k, epoch, jax.tree.map(lambda x: x[k], state.params))
            for k in live:
                records[k] = _seed_record(k, epoch, state, record, stopping, seconds, len(live) * len(train_examples))
                log_epoch(run_dirs[k] / "metrics.jsonl", records[k])
            saves.keep_latest(epoch, state, {"epoch": epoch, "stopping": stopping.to_json()})
            bar.update(1)
            bar.set_postfix(loss=f"{np.nanmean(record['train_loss']):.3f}",
                            val_acc=f"{np.nanmean(record['val_accuracy']):.3f}",
                            samples_s=f"{records[live[0]]['samples_per_s']:.0f}", live=len(live))
    finally:  # what finished is written, also when an exception (or Ctrl-C) stops training
        saves.close()
    bar.close()
    sign = lambda v: lower_is_better(tc.best_metric, v)
    return [records[k] | {"best_epoch": int(stopping.best_epoch[k]),
                          f"best_{tc.best_metric}": float(sign(stopping.best[k]))} for k in range(len(seeds))]


def train(config: Config, data_dir, workdir, progress: bool = True) -> dict[str, Any]:
    """Trains one model until early stopping or `train.max_epochs`, resuming from the latest
    checkpoint in `workdir`; see `fit`."""
    return fit(config, data_dir, workdir, progress=progress)[0]
