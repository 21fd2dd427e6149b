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
The model calls are jitted per shape; the mask helpers are pure and vmappable.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from slt_jax.analysis.record import model_for
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


def _model(params, batch) -> Transformer:
    return model_for(params, batch, batch["target"].shape[1], sow=False)


def _reference_log_probs(model, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL):
    logits = model.apply({"params": params}, frames_BxTxF, frame_mask_BxT, decoder_input_BxL)
    return jnp.take_along_axis(jax.nn.log_softmax(logits), target_BxL[..., None], -1)[..., 0]


_intact_log_probs = jax.jit(_reference_log_probs, static_argnums=0)


@functools.partial(jax.jit, static_argnames=("model",))
def _deleted_log_probs(model, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL, deleted_BxLxT):
    def one_gloss(args):
        position, deleted_BxT = args
        log_probs_BxL = _reference_log_probs(model, params, frames_BxTxF, frame_mask_BxT & ~deleted_BxT,
                                             decoder_input_BxL, target_BxL)
        return log_probs_BxL[:, position]

    positions = jnp.arange(target_BxL.shape[1])
    return jax.lax.map(one_gloss, (positions, jnp.moveaxis(deleted_BxLxT, 1, 0))).T


def gloss_deletion(params, batch, scores_BxLxT, fractions=FRACTIONS, seed: int = 0) -> dict[str, jax.Array]:
    """Each reference gloss re-scored with its most attended (or random) frames deleted.

    Args:
      params: model parameters.
      batch: a batch of `slt_jax.data` (frames, frame_mask, decoder_input, target).
      scores_BxLxT: per reference position, how much each frame matters to it, e.g. a
        teacher-forced record's head-averaged `cross_pattern`.
      fractions: the shares k of real frames to delete.
      seed: for the random deletions.

    Returns:
      `intact` (B, L): log p(target) with all frames; `top` and `random` (K, B, L): log p of
      each target token with its own top-k% or random frames deleted.
    """
    model = _model(params, batch)
    args = [jnp.asarray(batch[k]) for k in ("frames", "frame_mask", "decoder_input", "target")]
    b, l, t = scores_BxLxT.shape
    mask_NxT = jnp.broadcast_to(args[1][:, None], (b, l, t)).reshape(-1, t)
    out = {"top": [], "random": []}
    for i, fraction in enumerate(fractions):
        key = jax.random.fold_in(jax.random.key(seed), i)
        for name, deleted_NxT in zip(out, deletion_masks(jnp.reshape(scores_BxLxT, (-1, t)), mask_NxT, key, fraction)):
            out[name].append(_deleted_log_probs(model, params, *args, deleted_NxT.reshape(b, l, t)))
    return {"intact": _intact_log_probs(model, params, *args), **{k: jnp.stack(v) for k, v in out.items()}}


def translation_deletion(params, batch, scores_BxT, fractions=FRACTIONS, seed: int = 0) -> dict[str, jax.Array]:
    """Greedy translations with the most attended (or random) frames of each sample deleted.

    Args:
      scores_BxT: how much each frame matters to the translation, e.g. a greedy record's
        head-averaged cross-attention summed over its decoding steps.

    Returns:
      `top` and `random` (K, B, L): greedy tokens for each fraction, as `greedy_decode` returns.
    """
    model, max_len = _model(params, batch), batch["target"].shape[1]
    frames, mask_BxT = jnp.asarray(batch["frames"]), jnp.asarray(batch["frame_mask"])
    out = {"top": [], "random": []}
    for i, fraction in enumerate(fractions):
        key = jax.random.fold_in(jax.random.key(seed), i)
        for name, deleted_BxT in zip(out, deletion_masks(scores_BxT, mask_BxT, key, fraction)):
            out[name].append(greedy_decode(model, params, frames, mask_BxT & ~deleted_BxT, max_len))
    return {name: jnp.stack(tokens) for name, tokens in out.items()}


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
    with nn.intercept_methods(_uniform_cross_attention):
        log_probs = _reference_log_probs(model, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL)
        tokens = greedy_decode.__wrapped__(model, params, frames_BxTxF, frame_mask_BxT, max_len)
    return log_probs, tokens


def uniform_cross_attention(params, batch) -> dict[str, jax.Array]:
    """The baseline where the decoder's cross-attention is uniform over each sample's real frames.

    Returns:
      `log_probs` (B, L): teacher-forced log p(target); `tokens` (B, L): greedy translation.
    """
    args = [jnp.asarray(batch[k]) for k in ("frames", "frame_mask", "decoder_input", "target")]
    log_probs, tokens = _uniform(_model(params, batch), params, *args, batch["target"].shape[1])
    return {"log_probs": log_probs, "tokens": tokens}
