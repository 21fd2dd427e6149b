"""The blocked feed-forward of benchmarks/blocked_ff.py computes what the model's does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import blocked_ff
from slt_jax.config import get_config
from slt_jax.model import FeedForward

CONFIG = get_config("tiny").model  # d_model 16, d_ff 64
X = jax.random.normal(jax.random.key(0), (4, 12, CONFIG.d_model))  # 48 rows: quarters of 12
PARAMS = FeedForward(CONFIG).init({"params": jax.random.key(1)}, X, True)["params"]


def test_block_rows_divide_the_quarters():
    assert blocked_ff.quarter_rows(4736, 296) == 74
    assert blocked_ff.quarter_rows(4736, 128) == 32
    assert blocked_ff.quarter_rows(48, 1024) == 12
    with pytest.raises(ValueError, match="divide by 4"):
        blocked_ff.quarter_rows(50, 16)


@pytest.mark.parametrize("block_rows", [4, 8, 24, 48])
def test_block_masks_are_philox_keep_masks(block_rows):
    assert blocked_ff.masks_match(48, block_rows, d_ff=64, keep_prob=0.7)


def forward_and_grads(module, deterministic=False):
    def loss(params, x):
        y = module.apply({"params": params}, x, deterministic, rngs={"dropout": jax.random.key(2)})
        return jnp.sum(y * jnp.cos(x)), y

    return jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(PARAMS, X)


@pytest.mark.parametrize("backward", ["remat", "vjp", "vjp_bits"])
@pytest.mark.parametrize("block_rows", [8, 48])
def test_blocked_training_matches_the_model(backward, block_rows):
    (grads, dx), y = forward_and_grads(blocked_ff.BlockedFeedForward(CONFIG, block_rows, backward))
    (want_grads, want_dx), want_y = forward_and_grads(FeedForward(CONFIG))
    np.testing.assert_array_equal(y, want_y)  # same masks, same rows: bit for bit
    np.testing.assert_array_equal(dx, want_dx)
    # weight gradients are summed block by block: equal up to rounding
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), grads, want_grads)
    assert not np.array_equal(y, FeedForward(CONFIG).apply({"params": PARAMS}, X, True))  # dropout ran


def test_blocked_eval_matches_the_model():
    want = FeedForward(CONFIG).apply({"params": PARAMS}, X, True)
    np.testing.assert_array_equal(blocked_ff.BlockedFeedForward(CONFIG, 8).apply({"params": PARAMS}, X, True), want)
