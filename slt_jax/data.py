"""From a corpus in the converted layout to static-shape batches.

A batch is a dict of numpy arrays (B = batch size, T = a bucket's frame count, L = max_tokens):

  frames        (B, T, F) float32  selected keypoints of the sampled frames, NaN -> 0, zero-padded
  frame_mask    (B, T)    bool     True for real frames (the authors' rule: not all features 0)
  decoder_input (B, L)    int32    <bos> y1 .. yn, PAD after
  target        (B, L)    int32    y1 .. yn <eos>, PAD after
  sample_mask   (B,)      bool     False for the rows that only fill the last batch
  index         (B,)      int32    position of the sample in the split's example list
  gloss_spans   (B, L, 2) int32    [start, end) of each target token's sign (`examples.target_spans`)
                                   in sampled-frame numbering, -1 if unknown or the word has no sign

Every batch of one bucket has the same shapes, so a run compiles once per bucket. Reading a
split into `Example`s and fitting the vocabulary live in `slt_jax.examples` (their names are
re-exported here); `load_examples` reads a split from the pose files or through the corpus's TFDS
build (`slt_jax.tfds_builder`), as the config's `source` says.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections import Counter
from typing import Iterator, Sequence

import numpy as np

from slt_jax import tfds_builder
from slt_jax.config import BOS, EOS, PAD, UNK, DataConfig
# Re-exported too: `data.Vocab`, `data.fit_vocab`, `data.select_features` stay the public names.
from slt_jax.examples import Example, Vocab, fit_vocab, read_examples, select_features, target_sentence  # noqa: F401

log = logging.getLogger(__name__)


def load_examples(root: str | os.PathLike, split: str, config: DataConfig, vocab: Vocab,
                  progress: bool = False) -> list[Example]:
    """Reads every sample of `split`, in annotation order, from the pose files or, with
    `config.source == "tfds"`, through the corpus's TFDS build (made on first use).

    Samples that batching will change (see `batching_changes`) are kept and logged as warnings.
    """
    if config.source == "tfds":
        examples = tfds_builder.read_split(root, split, config, vocab)
    else:
        examples = read_examples(root, split, config, vocab, progress)
    for message in batching_changes(examples, config):
        log.warning("%s, split %s: %s", root, split, message)
    return examples


def batching_changes(examples: Sequence[Example], config: DataConfig) -> list[str]:
    """What batching does to these examples beyond sampling frames (docs/reliability.md).

    Args:
      examples: one split's examples.
      config: the data config they will be batched with.

    Returns:
      One message per kind of change that some example undergoes, with a count and the first ids:
      no detected keypoint in any frame (every frame is masked: attention stays finite and the
      decoder learns from the target alone), frames beyond `max_frames` or target tokens beyond
      `max_tokens - 1` (cut off), tokens missing from the vocabulary (<unk>).
    """

    def report(changed, what: str, handling: str) -> list[str]:
        ids = [ex.id for ex in examples if changed(ex)]
        named = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
        return [f"{len(ids)} of {len(examples)} {what} ({named}); {handling}"] if ids else []

    return (
        report(lambda ex: not ex.frames.any(), "samples have no detected keypoint in any frame",
               "every frame is masked")
        + report(lambda ex: -(-len(ex.frames) // config.sample_rate) > config.max_frames,
                 f"samples have more than data.max_frames={config.max_frames} sampled frames",
                 "the frames after those are dropped")
        + report(lambda ex: len(ex.tokens) >= config.max_tokens,
                 f"targets have more than data.max_tokens - 1 = {config.max_tokens - 1} tokens",
                 "the tokens after those are dropped")
        + report(lambda ex: np.any(ex.tokens == UNK), "targets have tokens not in the training vocabulary",
                 "those become <unk>")
    )


def sample_frames(n_frames: int, rate: int, rng: np.random.Generator | None) -> np.ndarray:
    """One frame index per chunk of `rate` frames: random in the chunk, or its first frame."""
    starts = np.arange(0, n_frames, rate)
    if rng is None:
        return starts
    sizes = np.minimum(rate, n_frames - starts)
    return starts + (rng.random(len(starts)) * sizes).astype(np.int64)


EVAL_SAMPLING_SEED = 0  # data.eval_sampling="random": each sample's frames come from (this, its id)


def eval_frame_rng(example_id: str, config: DataConfig) -> np.random.Generator | None:
    """The generator that picks an evaluation sample's frames: None (the first of each chunk) or,
    with `eval_sampling="random"`, one seeded by the sample's id alone, so that every caller
    (validation, evaluate, analyze, ablate), batch size and subset of a split sees the same frames."""
    if config.eval_sampling == "first":
        return None
    return np.random.default_rng([EVAL_SAMPLING_SEED, zlib.crc32(example_id.encode("utf-8"))])


def frame_order(example_id: str, n_frames: int) -> np.ndarray:
    """`data.shuffle_frames`: sample `example_id`'s fixed permutation of its n sampled frames,
    the same in training and evaluation."""
    return np.random.default_rng([EVAL_SAMPLING_SEED, zlib.crc32(example_id.encode("utf-8")), n_frames]).permutation(n_frames)


def map_spans(spans: np.ndarray, frame_indices: np.ndarray) -> np.ndarray:
    """Original-frame spans [s, e) -> spans over the sampled frames whose index lies in [s, e);
    unknown spans (-1) stay -1."""
    return np.where(spans < 0, -1, np.searchsorted(frame_indices, spans, side="left")).astype(np.int32)


def bucket_length(n_frames: int, config: DataConfig) -> int:
    n_sampled = min(-(-n_frames // config.sample_rate), config.max_frames)
    return next(b for b in config.buckets if b >= n_sampled)


def _encode_batch(examples: Sequence[Example], indices: Sequence[int], length: int, batch_size: int,
                  config: DataConfig, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
    n_features, max_tokens = examples[0].frames.shape[1], config.max_tokens
    batch = {
        "frames": np.zeros((batch_size, length, n_features), np.float32),
        "frame_mask": np.zeros((batch_size, length), bool),
        "decoder_input": np.full((batch_size, max_tokens), PAD, np.int32),
        "target": np.full((batch_size, max_tokens), PAD, np.int32),
        "sample_mask": np.zeros((batch_size,), bool),
        "index": np.zeros((batch_size,), np.int32),
        "gloss_spans": np.full((batch_size, max_tokens, 2), -1, np.int32),
    }
    for row, i in enumerate(indices):
        ex = examples[i]
        frame_rng = rng if rng is not None else eval_frame_rng(ex.id, config)
        picked = sample_frames(len(ex.frames), config.sample_rate, frame_rng)[:length]
        frames = ex.frames[picked[frame_order(ex.id, len(picked))] if config.shuffle_frames else picked]
        batch["frames"][row, : len(frames)] = frames
        batch["frame_mask"][row, : len(frames)] = np.any(frames != 0, axis=-1)
        tokens = ex.tokens[: max_tokens - 1]
        batch["decoder_input"][row, : len(tokens) + 1] = np.concatenate([[BOS], tokens])
        batch["target"][row, : len(tokens) + 1] = np.concatenate([tokens, [EOS]])
        batch["sample_mask"][row] = True
        batch["index"][row] = i
        if ex.gloss_spans is not None:
            spans = map_spans(ex.gloss_spans, picked)[:max_tokens]
            batch["gloss_spans"][row, : len(spans)] = spans
    return batch


def make_batches(examples: Sequence[Example], config: DataConfig, batch_size: int,
                 rng: np.random.Generator | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Yields static-shape batches grouped by length bucket.

    With `rng` (training) the samples are shuffled within buckets, the batches are shuffled, and
    one random frame per chunk is kept; without it (evaluation), order and frames are
    deterministic, the frames chosen by `config.eval_sampling` (see `eval_frame_rng`).
    """
    by_bucket: dict[int, list[int]] = {}
    for i, ex in enumerate(examples):
        by_bucket.setdefault(bucket_length(len(ex.frames), config), []).append(i)
    plan = []
    for length in sorted(by_bucket):
        members = np.asarray(by_bucket[length])
        if rng is not None:
            members = rng.permutation(members)
        plan += [(length, members[s : s + batch_size]) for s in range(0, len(members), batch_size)]
    if rng is not None:
        plan = [plan[i] for i in rng.permutation(len(plan))]
    for length, indices in plan:
        yield _encode_batch(examples, indices, length, batch_size, config, rng)


def n_batches(examples: Sequence[Example], config: DataConfig, batch_size: int) -> int:
    counts = Counter(bucket_length(len(ex.frames), config) for ex in examples)
    return sum(-(-c // batch_size) for c in counts.values())
