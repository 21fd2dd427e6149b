"""Does the model need the frames it attends to? Deletion tests and a uniform-attention baseline.

Deleting a frame means marking it as padding in `frame_mask`: the encoder and the
cross-attention then ignore it, exactly as they ignore the frames that pad a batch.

  gloss deletion        for each reference gloss, delete the round(k * N) real frames its
                        (teacher-forced) cross-attention ranks highest, or as many random real
                        frames, and re-score that gloss: the drop in its log-probability.
  translation deletion  delete the frames most attended over the whole translation (or random
                        ones) and decode greedily again: the change in WER.
  uniform baseline      cross-attention replaced by a uniform average over the real frames.

A faithful attention map makes the top-attended deletion hurt clearly more than random deletion.
The mask helpers are pure and vmappable. Each re-scored gloss and each re-translated sample is an
item with its own frames deleted; the items run through one compiled program in calls of
GROUP_FRAMES // T items, so a batch compiles once, whatever the number of items, and rows nobody
reads cost nothing. (On the 2-core VM an item of 128 frames took 1.9 ms of CPU in calls of 64
items, 0.55 ms in calls of 8: memory traffic, not arithmetic, is the cost.)
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from slt_jax.analysis.record import GROUP_FRAMES, in_row_groups, model_for
from slt_jax.config import PAD
from slt_jax.decode import greedy_decode
from slt_jax.model import Transformer

FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.5)


def top_fraction_mask(scores_T, frame_mask_T, fraction: float) -> jax.Array:
    """The round(fraction * N) real frames with the highest scores (ties: earlier frames)."""
    k = jnp.round(fraction * jnp.sum(frame_mask_T))
    order = jnp.argsort(-jnp.where(frame_mask_T, scores_T, -jnp.inf), stable=True)
    rank_T = jnp.argsort(order, stable=True)
    return frame_mask_T & (rank_T < k)


def random_fraction_mask(key, frame_mask_T, fraction: float) -> jax.Array:
    """As many random real frames as `top_fraction_mask` deletes."""
    return top_fraction_mask(jax.random.uniform(key, frame_mask_T.shape), frame_mask_T, fraction)


@jax.jit
def deletion_masks(scores_NxT, frame_mask_NxT, key, fraction) -> tuple[jax.Array, jax.Array]:
    """`top_fraction_mask` and `random_fraction_mask` of N rows at once, (N, T) each."""
    top_NxT = jax.vmap(top_fraction_mask, (0, 0, None))(scores_NxT, frame_mask_NxT, fraction)
    keys_N = jax.random.split(key, scores_NxT.shape[0])
    return top_NxT, jax.vmap(random_fraction_mask, (0, 0, None))(keys_N, frame_mask_NxT, fraction)


@jax.jit
def _deletions(scores_NxT, frame_mask_NxT, seed, fractions_K) -> jax.Array:
    """`deletion_masks` for every fraction k with key fold_in(key(seed), k): (2, K, N, T), top first."""
    keys_K = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(seed), jnp.arange(len(fractions_K)))
    return jnp.stack(jax.vmap(deletion_masks, (None, None, 0, 0))(scores_NxT, frame_mask_NxT, keys_K, fractions_K))


def _model(params, batch) -> Transformer:
    return model_for(params, batch, batch["target"].shape[1], sow=False)


def reference_log_probs(model, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL):
    logits = model.apply({"params": params}, frames_BxTxF, frame_mask_BxT, decoder_input_BxL)
    return jnp.take_along_axis(jax.nn.log_softmax(logits), target_BxL[..., None], -1)[..., 0]


@functools.partial(jax.jit, static_argnames=("model",))
def item_log_probs(model, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL, row_C, position_C,
                    deleted_CxT):
    """Per item c: log p(target[row_c, position_c]) with row_c's `deleted_CxT[c]` frames deleted."""
    log_probs_CxL = reference_log_probs(model, params, frames_BxTxF[row_C], frame_mask_BxT[row_C] & ~deleted_CxT,
                                         decoder_input_BxL[row_C], target_BxL[row_C])
    return jnp.take_along_axis(log_probs_CxL, position_C[:, None], 1)[:, 0]


@functools.partial(jax.jit, static_argnames=("model", "max_len"))
def _item_translations(model, params, frames_BxTxF, frame_mask_BxT, row_C, deleted_CxT, max_len: int):
    """Per item c: the greedy translation of row_c with its `deleted_CxT[c]` frames deleted, (C, max_len)."""
    return greedy_decode(model, params, frames_BxTxF[row_C], frame_mask_BxT[row_C] & ~deleted_CxT, max_len)


def in_chunks(fn, frames: int, *items):
    """`fn` over the items (numpy arrays with a leading item axis) in calls of GROUP_FRAMES // frames
    items each, the last call padded with copies of the first item; the results concatenated,
    padding dropped. One compiled shape per length, whatever the number of items. At least one item."""
    n, size = len(items[0]), max(GROUP_FRAMES // frames, 1)
    padded = [np.concatenate([x, np.repeat(x[:1], -n % size, 0)]) for x in items]
    call = lambda start: np.asarray(fn(*(x[start:start + size] for x in padded)))
    first = call(0)  # compiles, once
    # XLA:CPU runs each call on one thread; calls from two threads keep both cores busy.
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        rest = list(pool.map(call, range(size, n + (-n % size), size)))
    return np.concatenate([first, *rest])[:n]


def _first_frames(batch, frames: int | None) -> tuple[jax.Array, jax.Array]:
    """The batch's frames and mask cut to their first `frames` frames, which must hold every real one."""
    mask_BxT = np.asarray(batch["frame_mask"])
    if frames is not None and mask_BxT[:, frames:].any():
        raise ValueError(f"frames={frames} cuts real frames off")
    return jnp.asarray(batch["frames"][:, :frames]), jnp.asarray(mask_BxT[:, :frames])


def gloss_deletion(params, batch, scores_BxLxT, fractions=FRACTIONS, seed: int = 0,
                   rescore_BxL=None, frames: int | None = None) -> dict[str, np.ndarray]:
    """Each reference gloss re-scored with its most attended (or random) frames deleted.

    Every (sample, position) pair re-scored is an item of its own (one forward pass each, as its
    deleted frames are its own), so leaving out the pairs nobody reads saves their passes.

    Args:
      params: model parameters.
      batch: a batch of `slt_jax.data` (frames, frame_mask, decoder_input, target).
      scores_BxLxT: per reference position, how much each frame matters to it, e.g. a
        teacher-forced record's head-averaged `cross_pattern`.
      fractions: the shares k of real frames to delete.
      seed: for the random deletions.
      rescore_BxL: the (sample, position) pairs to score (default: all); e.g. the real samples'
        glosses, all `analyze` averages.
      frames: run the model on the first `frames` frames only (default: all); e.g. the length
        bucket of a batch padded to a longer one: each frame costs every item its encoder pass.
        The deletions are drawn over all T frames, so they do not depend on it.

    Returns:
      `intact` (B, L): log p(target) with all frames; `top` and `random` (K, B, L): log p of
      each target token with its own top-k% or random frames deleted. NaN outside `rescore_BxL`.
    """
    model = _model(params, batch)
    args = [*_first_frames(batch, frames), *(jnp.asarray(batch[k]) for k in ("decoder_input", "target"))]
    scores_BxLxT = np.asarray(scores_BxLxT)
    b, l, t = scores_BxLxT.shape
    mask_NxT = np.broadcast_to(np.asarray(batch["frame_mask"])[:, None], (b, l, t)).reshape(-1, t)
    deleted_2xKxNxT = np.asarray(_deletions(scores_BxLxT.reshape(-1, t), mask_NxT, seed,
                                            np.asarray(fractions, np.float32)))
    pairs = np.flatnonzero(np.ones((b, l), bool) if rescore_BxL is None else np.asarray(rescore_BxL).reshape(-1))
    k = len(fractions)
    out = np.full((1 + 2 * k, b * l), np.nan, np.float32)
    if len(pairs):
        # Items: each pair intact, then each pair per (top | random, fraction).
        deleted_IxT = np.concatenate([np.zeros((len(pairs), t), bool), deleted_2xKxNxT[:, :, pairs].reshape(-1, t)])
        pair_I = np.tile(pairs, 1 + 2 * k)
        score = functools.partial(item_log_probs, model, params, *args)
        length = args[0].shape[1]
        values = in_chunks(score, length, (pair_I // l).astype(np.int32), (pair_I % l).astype(np.int32),
                            deleted_IxT[:, :length])
        out[:, pairs] = values.reshape(1 + 2 * k, len(pairs))
    out = out.reshape(1 + 2 * k, b, l)
    return {"intact": out[0], "top": out[1:1 + k], "random": out[1 + k:]}


def translation_deletion(params, batch, scores_BxT, fractions=FRACTIONS, seed: int = 0,
                         rows_B=None, frames: int | None = None) -> dict[str, np.ndarray]:
    """Greedy translations with the most attended (or random) frames of each sample deleted.

    Args:
      scores_BxT: how much each frame matters to the translation, e.g. a greedy record's
        head-averaged cross-attention summed over its decoding steps.
      rows_B: the samples to translate (default: all), e.g. the batch's `sample_mask`.
      frames: decode from the first `frames` frames only, as in `gloss_deletion`.

    Returns:
      `top` and `random` (K, B, L): greedy tokens for each fraction, as `greedy_decode` returns;
      PAD for the rows left out.
    """
    model, max_len = _model(params, batch), batch["target"].shape[1]
    frames_BxTxF, mask_BxT = _first_frames(batch, frames)
    deleted_2xKxBxT = np.asarray(_deletions(scores_BxT, batch["frame_mask"], seed, np.asarray(fractions, np.float32)))
    b, t, k = mask_BxT.shape[0], mask_BxT.shape[1], len(fractions)
    rows = np.flatnonzero(np.ones(b, bool) if rows_B is None else np.asarray(rows_B))
    out = np.full((2 * k, b, max_len), PAD, np.int32)
    if len(rows):
        decode = lambda row_C, deleted_CxT: _item_translations(model, params, frames_BxTxF, mask_BxT, row_C,
                                                               deleted_CxT, max_len)
        tokens = in_chunks(decode, t, np.tile(rows, 2 * k).astype(np.int32),
                            deleted_2xKxBxT[:, :, rows, :t].reshape(-1, t))
        out[:, rows] = tokens.reshape(2 * k, len(rows), max_len)
    return {"top": out[:k], "random": out[k:]}


def _uniform_cross_attention(next_fun, args, kwargs, context):
    """A method interceptor: every decoder cross-attention averages the real frames' values."""
    if not (context.method_name == "__call__" and context.module.name == "cross_attn"):
        return next_fun(*args, **kwargs)
    module = context.module
    x_BxQxD, kv, mask = args[:3]
    q = x_BxQxD.shape[1]
    weights_BxHxQxK = jnp.broadcast_to(mask, mask.shape[:2] + (q,) + mask.shape[3:]).astype(x_BxQxD.dtype)
    weights_BxHxQxK = weights_BxHxQxK / jnp.sum(weights_BxHxQxK, -1, keepdims=True)
    return module.out(jnp.einsum("bhqk,bkhe->bqhe", weights_BxHxQxK, kv.values_BxKxHxE))


@functools.partial(jax.jit, static_argnames=("model", "max_len"))
def _uniform(model, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL, max_len: int):
    # The interceptor acts while tracing, so it must run inside this jit and call the
    # un-jitted decoder: a cached `greedy_decode` executable would not see it.
    def rows(frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL):
        log_probs = reference_log_probs(model, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL)
        return log_probs, greedy_decode.__wrapped__(model, params, frames_BxTxF, frame_mask_BxT, max_len)

    with nn.intercept_methods(_uniform_cross_attention):
        return in_row_groups(rows, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL)


def uniform_cross_attention(params, batch) -> dict[str, jax.Array]:
    """The baseline where the decoder's cross-attention is uniform over each sample's real frames.

    Returns:
      `log_probs` (B, L): teacher-forced log p(target); `tokens` (B, L): greedy translation.
    """
    args = [jnp.asarray(batch[k]) for k in ("frames", "frame_mask", "decoder_input", "target")]
    log_probs, tokens = _uniform(_model(params, batch), params, *args, batch["target"].shape[1])
    return {"log_probs": log_probs, "tokens": tokens}
