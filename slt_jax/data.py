"""From a corpus in the converted layout to static-shape batches.

A batch is a dict of numpy arrays (B = batch size, T = a bucket's frame count, L = max_tokens):

  frames        (B, T, F) float32  selected keypoints of the sampled frames, NaN -> 0, zero-padded
  frame_mask    (B, T)    bool     True for real frames (the authors' rule: not all features 0)
  decoder_input (B, L)    int32    <bos> y1 .. yn, PAD after
  target        (B, L)    int32    y1 .. yn <eos>, PAD after
  sample_mask   (B,)      bool     False for the rows that only fill the last batch
  index         (B,)      int32    position of the sample in the split's example list
  gloss_spans   (B, L, 2) int32    [start, end) of each gloss in sampled-frame numbering, -1 if unknown

Every batch of one bucket has the same shapes, so a run compiles once per bucket.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np

from slt_jax import features
from slt_jax.config import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, DataConfig
from slt_jax.layout import LayoutError, Sample, load_pose, read_annotations, write_json

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Vocab:
    """Whitespace tokens; ids 0-3 are <pad>, <unk>, <bos>, <eos>."""

    tokens: tuple[str, ...]

    def __post_init__(self):
        if self.tokens[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary starts with {SPECIAL_TOKENS}")
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def fit(cls, sentences: Sequence[str]) -> "Vocab":
        """Most frequent first, ties alphabetical, so the ids do not depend on row order."""
        counts = Counter(t for s in sentences for t in s.split())
        ranked = sorted(counts, key=lambda t: (-counts[t], t))
        return cls(SPECIAL_TOKENS + tuple(ranked))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, sentence: str) -> list[int]:
        return [self._ids.get(t, UNK) for t in sentence.split()]

    def decode(self, ids: Sequence[int]) -> str:
        """Tokens up to the first <eos>, without <pad>/<bos>."""
        words = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                words.append(self.tokens[i])
        return " ".join(words)

    def save(self, path: str | os.PathLike) -> None:
        write_json(path, list(self.tokens))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        with open(path, encoding="utf-8") as f:
            return cls(tuple(json.load(f)))


@dataclasses.dataclass(frozen=True)
class Example:
    """One sample at the original frame rate, ready to be sampled and batched."""

    id: str
    frames: np.ndarray  # (frames, F) float32
    tokens: np.ndarray  # (n,) int32, no <bos>/<eos>
    reference: str
    gloss_spans: np.ndarray | None  # (glosses, 2) int32, original frame numbering


def select_features(pose: np.ndarray, config: DataConfig) -> np.ndarray:
    """(frames, people, 543, dims) -> (frames, F): first person, chosen groups and axes, NaN -> 0,
    with the config's feature options (`slt_jax.features`; none by default, as the authors)."""
    axes = 3 if config.use_3d else 2
    if pose.shape[-1] < axes:
        raise ValueError(f"pose has {pose.shape[-1]} coordinates, config needs {axes}")
    return features.frame_features(pose[:, 0, :, :axes], config)


def target_sentence(sample: Sample, config: DataConfig) -> str:
    return sample.gloss if config.target == "gloss" else sample.text


def fit_vocab(root: str | os.PathLike, config: DataConfig) -> Vocab:
    """The target vocabulary of the train split."""
    samples = [s for s in read_annotations(root) if s.split == "train"]
    if not samples:
        raise LayoutError(f"{os.path.join(root, 'annotations.csv')}: no train samples to fit a vocabulary on")
    return Vocab.fit([target_sentence(s, config) for s in samples])


def load_examples(root: str | os.PathLike, split: str, config: DataConfig, vocab: Vocab,
                  progress: bool = False) -> list[Example]:
    """Reads every sample of `split`, in annotation order, from the pose files or, with
    `config.source == "tfds"`, through the corpus's TFDS build (made on first use).

    Samples that batching will change (see `batching_changes`) are kept and logged as warnings.
    """
    if config.source == "tfds":
        from slt_jax.tfds_builder import read_split

        examples = read_split(root, split, config, vocab)
    else:
        examples = _read_pose_files(root, split, config, vocab, progress)
    for message in batching_changes(examples, config):
        log.warning("%s, split %s: %s", root, split, message)
    return examples


def _read_pose_files(root, split: str, config: DataConfig, vocab: Vocab, progress: bool) -> list[Example]:
    samples = [s for s in read_annotations(root) if s.split == split]
    if not samples:
        raise LayoutError(f"{os.path.join(root, 'annotations.csv')}: no samples in split {split!r}")

    def load(sample: Sample) -> Example:
        spans = None if sample.gloss_spans is None else np.asarray(sample.gloss_spans, np.int32)
        tokens = np.asarray(vocab.encode(target_sentence(sample, config)), np.int32)
        frames = select_features(load_pose(root, sample.id), config)
        return Example(sample.id, frames, tokens, target_sentence(sample, config), spans)

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        loaded = pool.map(load, samples)
        if progress:
            from tqdm import tqdm

            loaded = tqdm(loaded, total=len(samples), desc=f"load {split}", unit="sample", leave=False)
        return list(loaded)


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


def map_spans(spans: np.ndarray, frame_indices: np.ndarray) -> np.ndarray:
    """Original-frame spans [s, e) -> spans over the sampled frames whose index lies in [s, e)."""
    return np.searchsorted(frame_indices, spans, side="left").astype(np.int32)


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
        picked = sample_frames(len(ex.frames), config.sample_rate, rng)[:length]
        frames = ex.frames[picked]
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
    one random frame per chunk is kept; without it, order and frames are deterministic.
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
