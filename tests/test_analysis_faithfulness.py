"""Deletion masks, deletion re-scoring and the uniform-attention baseline on a tiny model."""

import jax
import numpy as np
import pytest

from slt_jax.analysis import faithfulness as fa
from slt_jax.config import BOS, EOS, PAD, ModelConfig
from slt_jax.decode import greedy_decode
from slt_jax.model import Transformer

TINY = ModelConfig(vocab_size=9, n_features=4, frame_hidden=8, d_model=8, n_heads=2, d_ff=16)
B, T, L = 2, 6, 4


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(B, T, TINY.n_features)).astype(np.float32)
    mask = np.array([[True] * 6, [True] * 4 + [False] * 2])
    frames[~mask] = 0.0
    target = np.array([[4, 5, EOS, 0], [6, 7, 8, EOS]], np.int32)
    decoder_input = np.concatenate([np.full((B, 1), BOS, np.int32), target[:, :-1]], axis=1)
    return {"frames": frames, "frame_mask": mask, "target": target, "decoder_input": decoder_input}


@pytest.fixture(scope="module")
def params(batch):
    return Transformer(TINY).init(jax.random.key(0), batch["frames"], batch["frame_mask"],
                                  batch["decoder_input"])["params"]


def log_probs(params, batch, mask):
    logits = Transformer(TINY).apply({"params": params}, batch["frames"], mask, batch["decoder_input"])
    return np.take_along_axis(np.asarray(jax.nn.log_softmax(logits)), batch["target"][..., None], -1)[..., 0]


def test_top_fraction_mask_takes_the_highest_real_frames():
    scores = np.array([0.1, 0.5, 0.3, 0.9, 0.2])
    mask = np.array([True, True, True, False, True])  # frame 3 scores highest but is padding
    np.testing.assert_array_equal(fa.top_fraction_mask(scores, mask, 0.5), [False, True, True, False, False])
    assert not fa.top_fraction_mask(scores, mask, 0.0).any()


def test_random_fraction_mask_deletes_as_many_real_frames():
    mask = np.array([True] * 7 + [False] * 3)
    for seed in range(5):
        deleted = np.asarray(fa.random_fraction_mask(jax.random.key(seed), mask, 0.3))
        assert deleted.sum() == 2 and not deleted[~mask].any()


def test_each_gloss_is_rescored_with_its_own_frames_deleted(params, batch):
    rng = np.random.default_rng(1)
    scores = rng.random((B, L, T)).astype(np.float32)
    out = fa.gloss_deletion(params, batch, scores, fractions=(0.0, 0.5))
    np.testing.assert_allclose(out["intact"], log_probs(params, batch, batch["frame_mask"]), atol=1e-5)
    np.testing.assert_allclose(out["top"][0], out["intact"], atol=1e-5)  # deleting nothing
    for s in range(L):
        deleted = np.stack([fa.top_fraction_mask(scores[b, s], batch["frame_mask"][b], 0.5) for b in range(B)])
        expected = log_probs(params, batch, batch["frame_mask"] & ~deleted)[:, s]
        np.testing.assert_allclose(out["top"][1][:, s], expected, atol=1e-5)
    assert out["random"].shape == (2, B, L) and not np.allclose(out["top"][1], out["intact"])


def test_translation_deletion_of_nothing_is_the_greedy_translation(params, batch):
    scores = np.ones((B, T), np.float32)
    out = fa.translation_deletion(params, batch, scores, fractions=(0.0, 0.5))
    greedy = greedy_decode(Transformer(TINY), params, batch["frames"], batch["frame_mask"], L)
    np.testing.assert_array_equal(out["top"][0], greedy)
    np.testing.assert_array_equal(out["random"][0], greedy)
    first_half = np.array([[True] * 3 + [False] * 3, [True] * 2 + [False] * 4])  # ties go to earlier frames
    expected = greedy_decode(Transformer(TINY), params, batch["frames"], batch["frame_mask"] & ~first_half, L)
    np.testing.assert_array_equal(out["top"][1], expected)


def test_uniform_attention_equals_the_model_over_a_single_frame_and_differs_otherwise(params, batch):
    before = log_probs(params, batch, batch["frame_mask"])
    single = {**batch, "frame_mask": np.eye(B, T, dtype=bool)}  # one real frame each: softmax is 1 there
    np.testing.assert_allclose(fa.uniform_cross_attention(params, single)["log_probs"],
                               log_probs(params, single, single["frame_mask"]), atol=1e-5)
    uniform = fa.uniform_cross_attention(params, batch)
    assert not np.allclose(uniform["log_probs"], before, atol=1e-3)
    assert uniform["tokens"].shape == (B, L)
    np.testing.assert_array_equal(log_probs(params, batch, batch["frame_mask"]), before)  # nothing leaks


def test_chosen_pairs_and_cut_frames_rescore_the_same(params, batch):
    rng = np.random.default_rng(2)
    scores = rng.random((B, L, T)).astype(np.float32)
    full = fa.gloss_deletion(params, batch, scores, fractions=(0.2, 0.5), seed=3)
    chosen = np.array([[True, False, False, True], [False, True, True, False]])
    padded = {**batch, "frames": np.pad(batch["frames"], ((0, 0), (0, 3), (0, 0))),
              "frame_mask": np.pad(batch["frame_mask"], ((0, 0), (0, 3)))}
    part = fa.gloss_deletion(params, padded, np.pad(scores, ((0, 0), (0, 0), (0, 3))), fractions=(0.2, 0.5), seed=3,
                             rescore_BxL=chosen, frames=T)
    for key in ("intact", "top", "random"):
        np.testing.assert_allclose(part[key][..., chosen], full[key][..., chosen], atol=1e-5)
        assert np.isnan(part[key][..., ~chosen]).all()
    with pytest.raises(ValueError, match="cuts real frames"):
        fa.gloss_deletion(params, batch, scores, rescore_BxL=chosen, frames=T - 1)


def test_deletions_do_not_depend_on_padding():
    # analyze pads every batch to the split's longest bucket: the random deletions must not move.
    rng = np.random.default_rng(3)
    scores, mask = rng.random((5, 8)).astype(np.float32), np.arange(8)[None, :] < rng.integers(2, 9, (5, 1))
    key = jax.random.key(7)
    for fraction in (0.2, 0.5):
        short = fa.deletion_masks(scores, mask, key, fraction)
        long = fa.deletion_masks(np.pad(scores, ((0, 0), (0, 24))), np.pad(mask, ((0, 0), (0, 24))), key, fraction)
        for s, l in zip(short, long):
            np.testing.assert_array_equal(np.asarray(l)[:, :8], s)
            assert not np.asarray(l)[:, 8:].any()


def test_chosen_rows_translate_the_same(params, batch):
    scores = np.random.default_rng(4).random((B, T)).astype(np.float32)
    full = fa.translation_deletion(params, batch, scores, fractions=(0.5,))
    part = fa.translation_deletion(params, batch, scores, fractions=(0.5,), rows_B=np.array([False, True]))
    np.testing.assert_array_equal(part["top"][:, 1], full["top"][:, 1])
    np.testing.assert_array_equal(part["random"][:, 1], full["random"][:, 1])
    assert (part["top"][:, 0] == PAD).all()
