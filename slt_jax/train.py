"""Training: a pure train step jitted once per bucket shape, early stopping, Orbax checkpoints.

A workdir holds everything a run needs and produces:

  config.json      the resolved Config (vocabulary size and feature count filled in)
  vocab.json       the target vocabulary, fitted on the train split
  run.json         where the data came from, and its longest training target (`length_bound`)
  checkpoints/latest/<epoch>/   state + loop bookkeeping, for resuming
  checkpoints/best/<epoch>/     the parameters with the best `train.best_metric`
  metrics.jsonl    one line per epoch (losses, accuracies, speed, stopped_early)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
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
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from slt_jax import data
from slt_jax.config import PAD, Config, DataConfig, load_config, save_config
from slt_jax.layout import LayoutError, read_annotations, write_json, write_text
from slt_jax.model import Transformer

MODEL_INPUTS = ("frames", "frame_mask", "decoder_input", "target", "sample_mask")
log = logging.getLogger(__name__)


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
    epoch: int  # the epoch the parameters come from

    @property
    def model(self) -> Transformer:
        return Transformer(self.config.model)

    @property
    def data_dir(self) -> Path:
        """The corpus the run was trained on."""
        return Path(self._facts["data"])

    @property
    def length_bound(self) -> int:
        """The most tokens a translation may hold (`length_bound`), from the longest training target
        that run.json records; a run trained before it did measures its corpus, or, without the
        corpus, keeps the decoder's `data.max_tokens` positions."""
        longest = self._facts.get("longest_target")
        if longest is None:
            try:
                longest = longest_target(self.data_dir, self.config.data)
            except LayoutError as e:
                log.warning("%s: no longest_target in run.json and %s; decoding up to data.max_tokens",
                            self.workdir, e)
                return self.config.data.max_tokens
        return length_bound(longest, self.config.data.max_tokens)

    @property
    def _facts(self) -> dict:
        return json.loads((self.workdir / "run.json").read_text())


def longest_target(data_dir, config: DataConfig) -> int:
    """The token count of the longest target in a corpus's train split."""
    return max(len(data.target_sentence(s, config).split()) for s in read_annotations(data_dir) if s.split == "train")


def length_bound(longest: int, max_tokens: int) -> int:
    """The most tokens a translation may hold, <eos> included: the longest training target plus a
    tenth of it (at least one token), within the decoder's `max_tokens` positions. A translation that
    reaches it without <eos> (a model looping on one gloss) is cut there; repeats within it stay."""
    return min(longest + max(1, math.ceil(longest / 10)), max_tokens)


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


def learning_rate_schedule(tc) -> optax.Schedule:
    """The learning rate per update: linear warm-up to `tc.learning_rate`, then `tc.schedule`."""
    peak, warmup = tc.learning_rate, tc.warmup_steps
    if tc.schedule == "constant":
        after = optax.constant_schedule(peak)
    elif tc.schedule == "cosine":
        after = optax.cosine_decay_schedule(peak, max(tc.decay_steps - warmup, 1), tc.final_lr_fraction)
    elif tc.schedule == "rsqrt":
        after = lambda step: peak * jnp.sqrt(max(warmup, 1) / (jnp.maximum(step, 0) + max(warmup, 1)))
    else:
        raise ValueError(f"train.schedule={tc.schedule!r}: choose constant, cosine or rsqrt")
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
        restored = _restore(self.latest, epoch, ocp.args.Composite(
            state=ocp.args.StandardRestore(serialization.to_state_dict(template)),
            loop=ocp.args.JsonRestore()))
        return serialization.from_state_dict(template, restored["state"]), dict(restored["loop"])

    def restore_params(self, template) -> tuple[Any, int]:
        """The best parameters (the first epoch always saves some) and their epoch."""
        epoch = self.best.latest_step()
        if epoch is None:
            raise LayoutError(f"{self.best.directory}: no checkpoint to load; train first")
        return _restore(self.best, epoch, ocp.args.Composite(params=ocp.args.StandardRestore(template)))["params"], epoch

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def _restore(manager: ocp.CheckpointManager, epoch: int, args) -> Any:
    try:
        return manager.restore(epoch, args=args)
    except (ValueError, KeyError) as e:  # Orbax's shape or structure mismatch
        detail = str(e).splitlines()[0].split(". ")[0].rstrip(":")  # not Orbax's advice to pad or truncate
        raise LayoutError(f"{manager.directory / str(epoch)}: a checkpoint that does not fit the run's "
                          f"config.json (from another config?): {detail}") from None


def _open_run(workdir: Path, config: Config, data_dir: Path,
              vocab: data.Vocab | None = None) -> tuple[Config, data.Vocab]:
    """The resolved config and vocabulary of a run folder: those it holds, checked to be the same
    run, or new ones. Writes nothing, so a run that fails on its data leaves no folder behind."""
    config_path = workdir / "config.json"
    if config_path.exists():
        vocab = data.Vocab.load(workdir / "vocab.json")
        saved, wanted = load_config(config_path), resolve(config, vocab)
        ignore_epochs = lambda c: c.replace(train=dataclasses.replace(c.train, max_epochs=0))
        if ignore_epochs(saved) != ignore_epochs(wanted):
            raise LayoutError(f"{config_path}: the workdir holds a run with another config "
                              f"({saved.name}); resume it with the same settings or use a new workdir")
        return wanted, vocab
    vocab = vocab or data.fit_vocab(data_dir, config.data)
    return resolve(config, vocab), vocab


def _write_run(workdir: Path, config: Config, vocab: data.Vocab, data_dir: Path) -> None:
    """Writes a new run folder; config.json goes last, as it marks a folder that holds a run."""
    if (workdir / "config.json").exists():
        return
    workdir.mkdir(parents=True, exist_ok=True)
    vocab.save(workdir / "vocab.json")
    write_json(workdir / "run.json", {"data": str(data_dir.absolute()),
                                      "longest_target": longest_target(data_dir, config.data)})
    save_config(workdir / "config.json", config)


def _logged_epoch(line: str) -> float:
    """The epoch of a metrics.jsonl line; infinite for a line torn by a kill mid-write."""
    try:
        return json.loads(line)["epoch"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf


def _truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drops log lines of epochs after the restored checkpoint (they will be redone)."""
    if path.exists():
        lines = path.read_text().splitlines()
        kept = [l for l in lines if _logged_epoch(l) <= last_epoch]
        if len(kept) < len(lines):  # rewriting an unchanged log would make it look newer
            write_text(path, "".join(l + "\n" for l in kept))


def _log_epoch(path: Path, record: dict) -> None:
    """Appends an epoch's line to metrics.jsonl; with several processes (one workdir on shared
    storage), process 0 alone writes."""
    if jax.process_index() == 0:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


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
    from tqdm import tqdm

    data_dir, workdir = Path(data_dir), Path(workdir)
    run_dirs = [Path(d) for d in (run_dirs or [workdir])]
    config, vocab = _open_run(workdir, config, data_dir)
    tc = config.train
    seeds = [tc.seed + k for k in range(len(run_dirs))]
    runs = [(run_dir, _open_run(run_dir, config.replace(train=dataclasses.replace(tc, seed=seed)), data_dir,
                                vocab)[0]) for run_dir, seed in zip(run_dirs, seeds)]
    train_examples = data.load_examples(data_dir, "train", config.data, vocab, progress)
    val_examples = data.load_examples(data_dir, "val", config.data, vocab, progress)
    for run_dir, run_config in [(workdir, config), *runs]:
        _write_run(run_dir, run_config, vocab, data_dir)

    model, optimizer = Transformer(config.model), make_optimizer(tc)
    stack = lambda *xs: jax.tree.map(lambda *leaves: jnp.stack(leaves), *xs)
    state, dropout_roots = stack(*(_seed_state(config, optimizer, seed) for seed in seeds))
    epoch, stopping = 0, Stopping.start(len(seeds))
    checkpoints = Checkpoints(workdir / "checkpoints")
    restored = checkpoints.restore_latest(state)
    if restored is not None:
        state, loop = restored
        epoch, stopping = loop["epoch"], Stopping.from_json(loop["stopping"])
    sharding = batch_sharding(tc.batch_size)
    state, dropout_roots = replicated(sharding, (state, dropout_roots))
    best_checkpoints = [Checkpoints(d / "checkpoints") for d in run_dirs]
    for run_dir in run_dirs:
        _truncate_metrics(run_dir / "metrics.jsonl", epoch)

    train_step = jax.jit(jax.vmap(train_step_fn(model, optimizer), in_axes=(0, None, 0)), donate_argnums=0)
    eval_step = jax.jit(jax.vmap(eval_step_fn(model), in_axes=(0, None)))
    records = [{} for _ in seeds]
    bar = tqdm(total=tc.max_epochs, initial=epoch, desc=f"train {config.name} x{len(seeds)} seeds",
               unit="epoch", disable=not progress)
    while epoch < tc.max_epochs and not stopping.stopped.all():
        epoch += 1
        start = time.perf_counter()
        # Only the seeds still training are stepped (a new live count compiles the steps once
        # more); a stopped seed's state stays as it was when it stopped.
        live = np.flatnonzero(~stopping.stopped)
        live_state, live_roots = jax.tree.map(lambda x: x[live], (state, dropout_roots))
        rng = np.random.default_rng([tc.seed, epoch])
        sums = []
        for batch in data.make_batches(train_examples, config.data, tc.batch_size, rng):
            live_state, step_sums = train_step(live_state, model_inputs(batch, sharding), live_roots)
            sums.append(step_sums)
        record = summarise(sums, "train")
        if not np.all(np.isfinite(record["train_loss"])):
            step = first_non_finite_step([s["loss_sum"] for s in sums], int(live_state.step[0]))
            kept = f"checkpoints/latest keeps epoch {epoch - 1}" if epoch > 1 else "no epoch had finished to keep"
            raise FloatingPointError(f"{workdir}: non-finite training loss at step {step} (epoch {epoch}); "
                                     f"stopped, {kept}")
        val_batches = data.make_batches(val_examples, config.data, tc.batch_size)
        record |= summarise([eval_step(live_state.params, model_inputs(b, sharding)) for b in val_batches], "val")
        state = jax.tree.map(lambda full, part: full.at[live].set(part), state, live_state)
        record = {name: _scatter(values, live, len(seeds)) for name, values in record.items()}
        seconds = time.perf_counter() - start

        improved = stopping.update(epoch, record, tc)
        for k in np.flatnonzero(improved):
            best_checkpoints[k].save_best(epoch, jax.tree.map(lambda x: x[k], state.params))
        for k in live:
            records[k] = {"epoch": epoch, "step": int(state.step[k]),
                          **{name: float(values[k]) for name, values in record.items()},
                          "seconds": seconds, "samples_per_s": len(live) * len(train_examples) / seconds,
                          "stopped_early": bool(stopping.stopped[k])}
            _log_epoch(run_dirs[k] / "metrics.jsonl", records[k])
        checkpoints.save_latest(epoch, state, {"epoch": epoch, "stopping": stopping.to_json()})
        bar.update(1)
        bar.set_postfix(loss=f"{np.nanmean(record['train_loss']):.3f}",
                        val_acc=f"{np.nanmean(record['val_accuracy']):.3f}",
                        samples_s=f"{records[live[0]]['samples_per_s']:.0f}", live=len(live))
    bar.close()
    for c in [checkpoints, *best_checkpoints]:
        c.close()
    sign = lambda v: lower_is_better(tc.best_metric, v)
    return [records[k] | {"best_epoch": int(stopping.best_epoch[k]),
                          f"best_{tc.best_metric}": float(sign(stopping.best[k]))} for k in range(len(seeds))]


def train(config: Config, data_dir, workdir, progress: bool = True) -> dict[str, Any]:
    """Trains one model until early stopping or `train.max_epochs`, resuming from the latest
    checkpoint in `workdir`; see `fit`."""
    return fit(config, data_dir, workdir, progress=progress)[0]


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
    # Shapes only: an eager init compiles every op of the forward pass, seconds per architecture.
    # The device is given: without one, Orbax refuses parameters saved from several devices.
    one_device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    template = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=one_device),
                            jax.eval_shape(functools.partial(init_params, config), jax.random.key(0)))
    checkpoints = Checkpoints(workdir / "checkpoints")
    try:
        params, epoch = checkpoints.restore_params(template)
    finally:
        checkpoints.close()
    return Run(config, vocab, params, workdir, epoch)


def best_epoch(workdir) -> int | None:
    """The epoch of a run's kept parameters, read off the checkpoint folder without loading it."""
    best = Path(workdir) / "checkpoints" / "best"
    epochs = [int(p.name) for p in best.iterdir() if p.name.isdigit()] if best.is_dir() else []
    return max(epochs, default=None)


def cached_results(result_file: Path, workdir) -> dict | None:
    """A results file (eval_*.json, analysis.json) if it was computed from the run's current best
    parameters (it carries the epoch of the parameters it scored), else None."""
    if not result_file.exists():
        return None
    results = json.loads(result_file.read_text())
    return results if results.get("epoch") == best_epoch(workdir) else None
