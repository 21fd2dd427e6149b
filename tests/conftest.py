"""Shared fixtures: a small corpus in the converted layout that the tests write themselves."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

from slt_jax.compile_cache import CACHE_ENV, cache_compiled_programs
from slt_jax.hostmem import reuse_freed_memory
from slt_jax.layout import LANDMARK_GROUPS, N_LANDMARKS, Sample, save_pose, write_annotations, write_metadata

# The tests train in-process; opt in as `slt-jax` does, before any test starts JAX's CPU client.
reuse_freed_memory()
# One compilation cache for the session, shared with the `slt-jax` processes tests start; not the
# user's ~/.cache.
os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="slt-jax-xla-")
cache_compiled_programs()

GLOSSES = ("HELLO", "I", "HELP", "POLICE", "WHERE", "HOUSE")
FRAMES_PER_GLOSS = 9


def gloss_motion(gloss_index: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """The right hand's (x, y) over a sign: a gloss-specific circle around a gloss-specific place."""
    angle = 2 * np.pi * gloss_index / len(GLOSSES)
    centre = np.array([0.5 + 0.15 * np.cos(angle), 0.5 + 0.15 * np.sin(angle)])
    t = np.linspace(0, 2 * np.pi, n_frames)
    radius = 0.02 + 0.01 * gloss_index
    path = centre + radius * np.stack([np.cos(t), np.sin(t)], axis=1)
    return path + rng.normal(0, 0.003, path.shape)


def write_corpus(root, n_train: int = 48, n_eval: int = 8, seed: int = 0) -> list[Sample]:
    """Writes a learnable toy corpus: each gloss moves the right hand in its own way."""
    rng = np.random.default_rng(seed)
    samples = []
    splits = ["train"] * n_train + ["val"] * n_eval + ["test"] * n_eval
    for i, split in enumerate(splits):
        glosses = rng.choice(len(GLOSSES), size=rng.integers(1, 4), replace=False)
        pose = np.full((FRAMES_PER_GLOSS * len(glosses) + 6, 1, N_LANDMARKS, 3), np.nan, np.float32)
        body = slice(*LANDMARK_GROUPS["body"])
        pose[:, 0, body, :2] = rng.uniform(0.3, 0.7, (33, 2))
        pose[:, 0, body, 2] = 0.0
        spans, start = [], 3
        for g in glosses:
            hand = gloss_motion(int(g), FRAMES_PER_GLOSS, rng)
            right = slice(*LANDMARK_GROUPS["right_hand"])
            pose[start : start + FRAMES_PER_GLOSS, 0, right, :2] = hand[:, None, :] + rng.normal(0, 0.01, (21, 2))
            pose[start : start + FRAMES_PER_GLOSS, 0, right, 2] = 0.0
            spans.append((start, start + FRAMES_PER_GLOSS))
            start += FRAMES_PER_GLOSS
        sid = f"s{i:03d}"
        save_pose(root, sid, pose)
        gloss = " ".join(GLOSSES[g] for g in glosses)
        samples.append(Sample(sid, "the " + gloss.lower(), gloss, f"signer{i % 3}", split, tuple(spans)))
    write_annotations(root, samples)
    write_metadata(root, {"name": "toy", "fps": 30})
    return samples


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root)
    return root


@pytest.fixture(scope="session")
def run_dir(corpus_dir, tmp_path_factory):
    """A tiny run trained 3 epochs on `corpus_dir` (its translations are mostly empty)."""
    from slt_jax.config import get_config
    from slt_jax.train import train

    workdir = tmp_path_factory.mktemp("run")
    train(get_config("tiny", ["train.max_epochs=3"]), corpus_dir, workdir, progress=False)
    return workdir
