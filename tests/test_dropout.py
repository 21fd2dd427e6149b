"""Dropout's keep masks: known answers, Bernoulli statistics, and `nn.Dropout` where asked."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from slt_jax.config import DROPOUT_RNGS
from slt_jax.dropout import KEEP_MASKS, Dropout, hash_keep_mask, philox4x32, philox_keep_mask


def test_philox4x32_gives_random123s_known_answers():
    """Random123's known-answer vectors for Philox-4x32-10: (counter, key) -> four words."""
    vectors = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
               ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
               ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
                (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for counter, key, expected in vectors:
        words = philox4x32(*(jnp.uint32(w) for w in key + counter))
        assert tuple(int(w) for w in words) == expected


def test_philox_keep_mask_compares_each_word_with_the_rate():
    key, shape, keep_prob = jax.random.key(5), (3, 7), 0.5  # 21 elements: 6 calls, 3 words unused
    k0, k1 = jax.random.bits(key, (2,), jnp.uint32)
    zeros = jnp.zeros((6,), jnp.uint32)
    words = np.stack(philox4x32(k0, k1, jnp.arange(6, dtype=jnp.uint32), zeros, zeros, zeros))  # (word, call)
    expected = (words.reshape(-1)[:21] < 2**31).reshape(shape)
    np.testing.assert_array_equal(philox_keep_mask(key, shape, keep_prob), expected)
    np.testing.assert_array_equal(jax.jit(philox_keep_mask, static_argnums=(1, 2))(key, shape, keep_prob), expected)


@pytest.mark.parametrize("draw", [philox_keep_mask, hash_keep_mask])
def test_keep_masks_are_bernoulli_with_the_asked_rate(draw):
    keep_prob, shape = 0.8, (256, 2047)  # 2047: a size that is not a multiple of Philox's four words
    masks = [np.asarray(jax.jit(draw, static_argnums=(1, 2))(jax.random.key(k), shape, keep_prob)) for k in (0, 1)]
    n = masks[0].size
    sigma = np.sqrt(keep_prob * (1 - keep_prob) / n)
    assert abs(masks[0].mean() - keep_prob) < 5 * sigma
    # Neighbours (along either axis) and two keys' masks agree as independent draws would.
    independent = keep_prob**2 + (1 - keep_prob) ** 2
    for a, b in ((masks[0][:, 1:], masks[0][:, :-1]), (masks[0][1:], masks[0][:-1]), (masks[0], masks[1])):
        assert abs(np.mean(a == b) - independent) < 5 * np.sqrt(independent * (1 - independent) / a.size)


def test_dropout_rngs_change_only_how_masks_are_drawn():
    x = jnp.ones((64, 1024))
    drop = lambda module: module.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(3)})
    np.testing.assert_array_equal(drop(Dropout(0.2, "jax")), drop(nn.Dropout(0.2)))  # "jax" is nn.Dropout
    for rng in DROPOUT_RNGS:
        dropped = np.asarray(drop(Dropout(0.2, rng)))
        assert set(np.unique(dropped)) == {0.0, 1.25}  # inverted scaling
        assert abs(dropped.mean() - 1.0) < 0.02


def test_every_allowed_dropout_rng_draws_its_own_masks():
    assert tuple(KEEP_MASKS) == DROPOUT_RNGS
