"""Corpus statistics in GSL's terms, measured from a corpus folder, beside GSL's published ones."""

from __future__ import annotations

import collections
import os

import numpy as np

from slt_jax import layout
from slt_jax.synth.presets import GSL_GLOSSES_PER_SENTENCE

# GSL continuous, signer-independent split (docs/reference.md §3).
GSL = {
    "samples": 10290, "glosses": 310, "sentences": 331, "signers": 7,
    "train": 8821, "val": 588, "test": 881, "glosses per sentence": 3.96,
    "frames, mean": 100.7, "frames, median": 89, "frames, max": 615, "fps": 30,
}


def corpus_statistics(root: str | os.PathLike) -> dict:
    """GSL's headline numbers for a corpus in the converted layout.

    Frame counts come from the pose files' headers (memory-mapped), so this is quick even for
    gigabytes of poses. "sentences" counts distinct gloss sequences.
    """
    samples = layout.read_annotations(root)
    frames = np.array([np.load(layout.pose_path(root, s.id), mmap_mode="r").shape[0] for s in samples])
    lengths = np.array([len(s.gloss.split()) for s in samples])
    splits = collections.Counter(s.split for s in samples)
    return {
        "samples": len(samples),
        "glosses": len({g for s in samples for g in s.gloss.split()}),
        "sentences": len({s.gloss for s in samples}),
        "signers": len({s.signer for s in samples}),
        **{split: splits[split] for split in layout.SPLITS},
        "glosses per sentence": round(float(lengths.mean()), 2),
        "frames, mean": round(float(frames.mean()), 1),
        "frames, median": float(np.median(frames)),
        "frames, max": int(frames.max()),
        "fps": layout.read_metadata(root).get("fps"),
    }


def glosses_per_sentence(root: str | os.PathLike) -> dict[int, float]:
    """Share of samples with each number of glosses."""
    counts = collections.Counter(len(s.gloss.split()) for s in layout.read_annotations(root))
    total = sum(counts.values())
    return {k: counts[k] / total for k in sorted(counts)}


def gsl_glosses_per_sentence() -> dict[int, float]:
    total = sum(GSL_GLOSSES_PER_SENTENCE.values())
    return {k: v / total for k, v in GSL_GLOSSES_PER_SENTENCE.items()}


def markdown_table(columns: dict[str, dict], cell=None) -> str:
    """A markdown table with one row per key and one column per named corpus.

    Args:
      columns: corpus name -> {row key: value}; a missing value leaves its cell empty.
      cell: formats a value (default: thousands separators for ints, %g for floats).
    """
    cell = cell or (lambda v: f"{v:,}" if isinstance(v, int) else f"{v:g}" if isinstance(v, float) else str(v))
    keys = list(dict.fromkeys(k for col in columns.values() for k in col))
    rows = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key in keys:
        cells = ("" if key not in col else cell(col[key]) for col in columns.values())
        rows.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
