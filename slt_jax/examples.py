"""A corpus in the converted layout, read into `Example`s, and its target vocabulary.

It sits under both `slt_jax.data` (batching, and `load_examples`, which picks the source) and
`slt_jax.tfds_builder` (whose records are these examples), so the builder needs nothing from
`data`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
from tqdm import tqdm

from slt_jax import features
from slt_jax.config import BOS, EOS, PAD, SPECIAL_TOKENS, UNK, DataConfig
from slt_jax.layout import LayoutError, Sample, load_pose, read_annotations, write_json


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
    gloss_spans: np.ndarray | None  # (tokens, 2) int32, each token's sign (`target_spans`)


def select_features(pose: np.ndarray, config: DataConfig) -> np.ndarray:
    """(frames, people, 543, dims) -> (frames, F): first person, chosen groups and axes, NaN -> 0,
    with the config's feature options (`slt_jax.features`; none by default, as the authors)."""
    axes = 3 if config.use_3d else 2
    if pose.shape[-1] < axes:
        raise ValueError(f"pose has {pose.shape[-1]} coordinates, config needs {axes}")
    return features.frame_features(pose[:, 0, :, :axes], config)


def target_sentence(sample: Sample, config: DataConfig) -> str:
    return sample.gloss if config.target == "gloss" else sample.text


def token_glosses(sample: Sample, config: DataConfig) -> tuple[int | None, ...] | None:
    """The position of the gloss each target token renders: a gloss itself; for a word, its gloss
    in `text_alignment` (None: a word no gloss carries). None for text without a word alignment."""
    return tuple(range(len(sample.gloss.split()))) if config.target == "gloss" else sample.text_alignment


def target_spans(sample: Sample, config: DataConfig) -> np.ndarray | None:
    """[start, end) original frames of the sign each target token renders (`token_glosses`),
    (tokens, 2) int32, (-1, -1) for a word no gloss carries. None when unknown: without gloss
    spans, and for text without a word alignment (a word's place in the sentence says nothing
    about its sign).
    """
    glosses = token_glosses(sample, config)
    if sample.gloss_spans is None or glosses is None:
        return None
    return np.asarray([(-1, -1) if g is None else sample.gloss_spans[g] for g in glosses], np.int32).reshape(-1, 2)


def fit_vocab(root: str | os.PathLike, config: DataConfig) -> Vocab:
    """The target vocabulary of the train split."""
    samples = [s for s in read_annotations(root) if s.split == "train"]
    if not samples:
        raise LayoutError(f"{os.path.join(root, 'annotations.csv')}: no train samples to fit a vocabulary on")
    return Vocab.fit([target_sentence(s, config) for s in samples])


def read_examples(root: str | os.PathLike, split: str, config: DataConfig, vocab: Vocab,
                  progress: bool = False) -> list[Example]:
    """Every sample of `split`, in annotation order, read from its pose file (`poses/<id>.npy`).

    Args:
      root: a corpus in the converted layout.
      split: train, val or test.
      config: which features to select and which target to encode.
      vocab: the target vocabulary (unseen tokens become <unk>).
      progress: show a progress bar.

    Returns:
      The split's examples, as they are: `slt_jax.data.load_examples` also reads through TFDS
      and logs what batching will change.
    """
    samples = [s for s in read_annotations(root) if s.split == split]
    if not samples:
        raise LayoutError(f"{os.path.join(root, 'annotations.csv')}: no samples in split {split!r}")

    def load(sample: Sample) -> Example:
        tokens = np.asarray(vocab.encode(target_sentence(sample, config)), np.int32)
        frames = select_features(load_pose(root, sample.id), config)
        return Example(sample.id, frames, tokens, target_sentence(sample, config), target_spans(sample, config))

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        loaded = pool.map(load, samples)
        if progress:
            loaded = tqdm(loaded, total=len(samples), desc=f"load {split}", unit="sample", leave=False)
        return list(loaded)
