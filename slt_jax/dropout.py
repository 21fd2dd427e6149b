"""Dropout with a choice of how its keep masks are drawn (`model.dropout_rng`).

On XLA:CPU JAX's own Bernoulli draw (threefry) runs as a rolled loop that writes random bits to
memory; the two other generators here are elementwise integer arithmetic that XLA fuses into the
op applying the mask, and a gloss16 training step takes about half as long with them
(docs/benchmarks.md).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import linen as nn


def _lowbias32(h: jax.Array) -> jax.Array:
    """A bijective 32-bit integer hash with low bias ("lowbias32", C. Wellons' hash-prospector)."""
    h = (h ^ (h >> 16)) * jnp.uint32(0x7FEB352D)
    h = (h ^ (h >> 15)) * jnp.uint32(0x846CA68B)
    return h ^ (h >> 16)


def _threshold32(keep_prob: float) -> jnp.uint32:
    """A uniform 32-bit word is below this with probability `keep_prob` (to within 2**-32)."""
    return jnp.uint32(min(round(keep_prob * 2**32), 2**32 - 1))


def hash_keep_mask(key: jax.Array, shape: tuple[int, ...], keep_prob: float) -> jax.Array:
    """A Bernoulli(`keep_prob`) boolean mask from a keyed hash of each element's flat index.

    Two 32-bit words drawn from `key` seed two hash rounds; the result is compared with
    `keep_prob * 2**32`. Being elementwise, XLA fuses it into the op that applies the mask: no
    rolled generator loop and no random bits written to memory, unlike `jax.random.bernoulli`
    on XLA:CPU.
    """
    k0, k1 = jax.random.bits(key, (2,), jnp.uint32)
    index = jax.lax.iota(jnp.uint32, math.prod(shape)).reshape(shape)
    h = _lowbias32(_lowbias32(index + k0) ^ k1)
    return h < _threshold32(keep_prob)


def _mulhi32(a: jax.Array, m: int) -> jax.Array:
    """The high word of the 64-bit product of uint32 `a` and the constant `m`, from 16-bit limbs:
    uint32 arithmetic only, so it lowers everywhere (`lax.mulhi` fails under sharding in jax 0.10)."""
    a0, a1 = a & 0xFFFF, a >> 16
    m0, m1 = jnp.uint32(m & 0xFFFF), jnp.uint32(m >> 16)
    cross0, cross1 = a0 * m1, a1 * m0
    middle = ((a0 * m0) >> 16) + (cross0 & 0xFFFF) + (cross1 & 0xFFFF)
    return a1 * m1 + (cross0 >> 16) + (cross1 >> 16) + (middle >> 16)


def philox4x32(k0, k1, x0, x1, x2, x3) -> tuple[jax.Array, ...]:
    """Philox-4x32-10 (Salmon et al., SC'11; the Random123 library): four uint32 words per
    128-bit counter (x0..x3) under a 64-bit key (k0, k1). The counter-based generator of cuRAND
    and of PyTorch's CUDA dropout; it passes TestU01's BigCrush."""
    for round_ in range(10):
        if round_:
            k0, k1 = k0 + jnp.uint32(0x9E3779B9), k1 + jnp.uint32(0xBB67AE85)
        x0, x1, x2, x3 = (_mulhi32(x2, 0xCD9E8D57) ^ x1 ^ k0, x2 * jnp.uint32(0xCD9E8D57),
                          _mulhi32(x0, 0xD2511F53) ^ x3 ^ k1, x0 * jnp.uint32(0xD2511F53))
    return x0, x1, x2, x3


def philox_keep_mask(key: jax.Array, shape: tuple[int, ...], keep_prob: float) -> jax.Array:
    """A Bernoulli(`keep_prob`) boolean mask from Philox-4x32-10, one call per four elements.

    The key is two 32-bit words drawn from `key`, the counters 0, 1, ...; each output word is
    compared with `keep_prob * 2**32`. Element i takes word i // n of call i % n (n calls).
    """
    k0, k1 = jax.random.bits(key, (2,), jnp.uint32)
    size = math.prod(shape)
    calls = -(-size // 4)
    zeros = jnp.zeros((calls,), jnp.uint32)
    words = philox4x32(k0, k1, jax.lax.iota(jnp.uint32, calls), zeros, zeros, zeros)
    packed = sum((w < _threshold32(keep_prob)).astype(jnp.uint8) << i for i, w in enumerate(words))
    # XLA:CPU fuses integer arithmetic into every consumer element, which would rerun all ten
    # rounds for each of a call's four elements. It does not duplicate an integer remainder, so
    # this one (by 16, which XLA cannot fold: a no-op on 4-bit values) makes the calls run once.
    # (`lax.optimization_barrier` is dropped before fusion on CPU.)
    packed = jax.lax.rem(packed, jnp.maximum(k0 >> 28, 16).astype(jnp.uint8))
    bits = (packed >> jnp.arange(4, dtype=jnp.uint8)[:, None]) & 1
    return bits.reshape(-1)[:size].reshape(shape).astype(bool)


def threefry_keep_mask(key: jax.Array, shape: tuple[int, ...], keep_prob: float) -> jax.Array:
    """`jax.random.bernoulli` on the key as given: the mask `nn.Dropout` draws."""
    return jax.random.bernoulli(key, keep_prob, shape)


# model.dropout_rng (its allowed values: config.DROPOUT_RNGS) -> how Dropout draws its keep mask.
KEEP_MASKS = {"philox": philox_keep_mask, "jax": threefry_keep_mask, "hash": hash_keep_mask}


class Dropout(nn.Module):
    """Inverted dropout, as `nn.Dropout` (same rate, scaling, 'dropout' rng stream and, being
    named alike, the same per-module keys), with a choice of how the keep mask is drawn:

      "philox"  `philox_keep_mask`: Philox-4x32-10, a vetted counter-based generator, four
                mask elements per call; the default, and as cheap as "hash" on CPU.
      "jax"     `threefry_keep_mask`: JAX's default PRNG (threefry), bit for bit what
                `nn.Dropout` draws; on XLA:CPU the costliest.
      "hash"    `hash_keep_mask`: the same Bernoulli rate from a keyed integer hash fused into
                the op that applies it; not a vetted generator.
    """

    rate: float
    rng: str = "philox"  # a key of KEEP_MASKS, checked when the ModelConfig is built

    @nn.compact
    def __call__(self, x, deterministic: bool) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        if self.rate == 1.0:  # as nn.Dropout: no 0/0 in the gradient
            return jnp.zeros_like(x)
        keep_prob = 1.0 - self.rate
        keep = KEEP_MASKS[self.rng](self.make_rng("dropout"), x.shape, keep_prob)
        return jnp.where(keep, x / keep_prob, jnp.zeros_like(x))
