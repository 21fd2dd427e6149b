"""Run folders: their config, vocabulary and metrics log, Orbax checkpoints, loading a run, cached results.

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
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization
from jax.experimental import multihost_utils

from slt_jax import data
from slt_jax.config import Config, DataConfig, load_config, save_config
from slt_jax.layout import LayoutError, read_annotations, write_json, write_text
from slt_jax.model import Transformer

log = logging.getLogger(__name__)
State = TypeVar("State")


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
    """Fresh parameters of a resolved config's model."""
    model = Transformer(config.model)
    frames = jnp.zeros((1, config.data.buckets[0], config.model.n_features))
    tokens = jnp.zeros((1, config.data.max_tokens), jnp.int32)
    return model.init(rng, frames, frames[..., 0] == 0, tokens)["params"]


class Checkpoints:
    """The latest training state (to resume) and the best parameters, each an Orbax manager."""

    def __init__(self, directory: Path):
        def manager(name):
            options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                                   enable_async_checkpointing=False)
            return ocp.CheckpointManager(directory.absolute() / name, options=options)

        self.latest, self.best = manager("latest"), manager("best")

    def save_latest(self, epoch: int, state, loop: dict) -> None:
        self.latest.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(serialization.to_state_dict(state)),
            loop=ocp.args.JsonSave(loop)))

    def save_best(self, epoch: int, params) -> None:
        self.best.save(epoch, args=ocp.args.Composite(params=ocp.args.StandardSave(params)))

    def restore_latest(self, template: State) -> tuple[State, dict] | None:
        """The latest training state, shaped as `template`, and its loop bookkeeping."""
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


SAVE_EVERY_S = 60.0  # training writes its checkpoints at most this often (and when it ends)


class TrainingCheckpoints:
    """The shared `latest` state and each seed's `best` parameters, held in memory and written
    together at most every SAVE_EVERY_S seconds, when training ends and when an exception stops
    it. One epoch's Orbax writes took longer than its validation on the main job's corpus (a
    fifth of an epoch); a hard kill now loses at most SAVE_EVERY_S of training, and `best` on
    disk never runs ahead of `latest`."""

    def __init__(self, latest: Checkpoints, bests: list[Checkpoints]):
        self.latest, self.bests = latest, bests
        self.every_s, self.written_at = SAVE_EVERY_S, time.monotonic()
        self.pending_latest, self.pending_bests = None, {}

    def keep_best(self, k: int, epoch: int, params) -> None:
        self.pending_bests[k] = (epoch, params)

    def keep_latest(self, epoch: int, state, loop: dict) -> None:
        """Holds the epoch's state; writes everything held once SAVE_EVERY_S have passed."""
        self.pending_latest = (epoch, state, loop)
        due = np.array(time.monotonic() - self.written_at >= self.every_s)
        if jax.process_count() > 1:  # the writes are collective: every process takes process 0's decision
            due = multihost_utils.broadcast_one_to_all(due)
        if due:
            self.write()

    def write(self) -> None:
        for k, (epoch, params) in self.pending_bests.items():
            self.bests[k].save_best(epoch, params)
        if self.pending_latest is not None:
            self.latest.save_latest(*self.pending_latest)
        self.pending_latest, self.pending_bests, self.written_at = None, {}, time.monotonic()

    def close(self) -> None:
        """Writes what is held and closes every manager."""
        self.write()
        for c in [self.latest, *self.bests]:
            c.close()


def _restore(manager: ocp.CheckpointManager, epoch: int, args) -> Any:
    try:
        return manager.restore(epoch, args=args)
    except (ValueError, KeyError) as e:  # Orbax's shape or structure mismatch
        detail = str(e).splitlines()[0].split(". ")[0].rstrip(":")  # not Orbax's advice to pad or truncate
        raise LayoutError(f"{manager.directory / str(epoch)}: a checkpoint that does not fit the run's "
                          f"config.json (from another config?): {detail}") from None


def open_run(workdir: Path, config: Config, data_dir: Path,
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


def write_run(workdir: Path, config: Config, vocab: data.Vocab, data_dir: Path) -> None:
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


def truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drops log lines of epochs after the restored checkpoint (they will be redone)."""
    if path.exists():
        lines = path.read_text().splitlines()
        kept = [l for l in lines if _logged_epoch(l) <= last_epoch]
        if len(kept) < len(lines):  # rewriting an unchanged log would make it look newer
            write_text(path, "".join(l + "\n" for l in kept))


def log_epoch(path: Path, record: dict) -> None:
    """Appends an epoch's line to metrics.jsonl; with several processes (one workdir on shared
    storage), process 0 alone writes."""
    if jax.process_index() == 0:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


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
