"""Jit-compiled greedy and beam-search decoding with a key/value cache.

Each step runs the decoder for the newest token only: the prefix's keys and values are cached
and the frames' keys and values are computed once. Both decoders return (B, max_len) tokens
y1 .. yn <eos> PAD ..., the <bos> excluded.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from slt_jax.config import BOS, EOS, PAD
from slt_jax.model import Transformer


def most_probable(logits_BxV: jax.Array) -> jax.Array:
    """`jnp.argmax` over the last axis (the first maximum wins) as a max and a min, which XLA:CPU
    runs about 4x faster than argmax's (value, index) reduction; a valid token even for NaN logits."""
    vocab = logits_BxV.shape[-1]
    top = jnp.max(logits_BxV, axis=-1, keepdims=True)
    first = jnp.min(jnp.where(logits_BxV == top, jnp.arange(vocab, dtype=jnp.int32), vocab), axis=-1)
    return jnp.minimum(first, vocab - 1)


def _start(model: Transformer, params, frames, frame_mask, max_len: int):
    variables = {"params": params}
    memory = model.apply(variables, frames, frame_mask, method=Transformer.encode)
    cache = model.apply(variables, memory, max_len, method=Transformer.init_cache)
    step = functools.partial(model.apply, variables, method=Transformer.decode_step)
    return cache, step


@functools.partial(jax.jit, static_argnames=("model", "max_len"))
def greedy_decode(model: Transformer, params, frames_BxTxF, frame_mask_BxT, max_len: int):
    """The most probable token at each step, until <eos> or `max_len` tokens."""
    cache, decode_step = _start(model, params, frames_BxTxF, frame_mask_BxT, max_len)
    batch = frames_BxTxF.shape[0]

    def step(carry, position):
        token, cache, done = carry
        logits, cache = decode_step(token, position, cache, frame_mask_BxT)
        token = jnp.where(done, PAD, most_probable(logits))
        return (token, cache, done | (token == EOS)), token

    start = (jnp.full((batch,), BOS, jnp.int32), cache, jnp.zeros((batch,), bool))
    _, tokens_LxB = jax.lax.scan(step, start, jnp.arange(max_len))
    return tokens_LxB.T


@functools.partial(jax.jit, static_argnames=("model",))
def token_probabilities(model: Transformer, params, frames_BxTxF, frame_mask_BxT, tokens_BxL):
    """The probability the model gives each of `tokens_BxL` (a decoder's output) after the ones
    before it: one teacher-forced pass, the same as the decoding steps that chose them."""
    fed_BxL = jnp.concatenate([jnp.full_like(tokens_BxL[:, :1], BOS), tokens_BxL[:, :-1]], axis=1)
    logits_BxLxV = model.apply({"params": params}, frames_BxTxF, frame_mask_BxT, fed_BxL)
    return jnp.take_along_axis(jax.nn.softmax(logits_BxLxV), tokens_BxL[..., None], axis=-1)[..., 0]


@functools.partial(jax.jit, static_argnames=("model", "max_len", "beam"))
def beam_search(model: Transformer, params, frames_BxTxF, frame_mask_BxT, max_len: int,
                beam: int = 32, length_penalty: float = 0.0):
    """Beam search by the sum of token log-probabilities (the authors': no length penalty).

    The finished hypothesis with the best score / length**length_penalty wins; length counts
    the tokens up to and including <eos>.
    """
    batch, k = frames_BxTxF.shape[0], beam
    repeat = lambda x: jnp.repeat(x, k, axis=0)
    cache, decode_step = _start(model, params, repeat(frames_BxTxF), repeat(frame_mask_BxT), max_len)
    mask_BKxT = repeat(frame_mask_BxT)

    def step(carry, position):
        token_BK, cache, scores_BxK, tokens_BxKxL, lengths_BxK, done_BxK = carry
        logits, cache = decode_step(token_BK, position, cache, mask_BKxT)
        logp_BxKxV = jax.nn.log_softmax(logits).reshape(batch, k, -1)
        vocab = logp_BxKxV.shape[-1]
        # A finished hypothesis continues only with PAD, at no cost.
        pad_only = jnp.where(jnp.arange(vocab) == PAD, 0.0, -jnp.inf)
        logp_BxKxV = jnp.where(done_BxK[..., None], pad_only, logp_BxKxV)
        candidates = (scores_BxK[..., None] + logp_BxKxV).reshape(batch, k * vocab)
        scores_BxK, flat = jax.lax.top_k(candidates, k)
        parent_BxK, token_BxK = flat // vocab, (flat % vocab).astype(jnp.int32)
        pick = lambda x: jnp.take_along_axis(x, parent_BxK.reshape(parent_BxK.shape + (1,) * (x.ndim - 2)), axis=1)
        tokens_BxKxL = pick(tokens_BxKxL).at[:, :, position].set(token_BxK)
        lengths_BxK = pick(lengths_BxK) + ~pick(done_BxK)
        done_BxK = pick(done_BxK) | (token_BxK == EOS)
        regroup = lambda x: pick(x.reshape((batch, k) + x.shape[1:])).reshape(x.shape)
        cache = cache._replace(self_kv=jax.tree.map(regroup, cache.self_kv))
        return (token_BxK.reshape(-1), cache, scores_BxK, tokens_BxKxL, lengths_BxK, done_BxK), None

    # Only the first beam is live at the start, so the first step picks k distinct tokens.
    scores = jnp.where(jnp.arange(k) == 0, 0.0, -jnp.inf) * jnp.ones((batch, 1))
    start = (jnp.full((batch * k,), BOS, jnp.int32), cache, scores,
             jnp.full((batch, k, max_len), PAD, jnp.int32), jnp.zeros((batch, k), jnp.int32),
             jnp.zeros((batch, k), bool))
    (_, _, scores, tokens, lengths, _), _ = jax.lax.scan(step, start, jnp.arange(max_len))
    final = scores / jnp.maximum(lengths, 1).astype(scores.dtype) ** length_penalty
    best = jnp.argmax(final, axis=1)
    return jnp.take_along_axis(tokens, best[:, None, None], axis=1)[:, 0]
