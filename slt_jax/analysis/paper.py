"""The authors' analyses (SignAttention §4-5, their `interp_all` notebook), each beside a cleaner one.

Every function works on ONE sample's fields of an AttentionRecord (vmap it over the batch) or,
for the grouping, on per-sample arrays; all are pure and jittable. The paper's choices, kept as
the defaults: heads averaged; padded frames dropped and the frame axis resampled to 100 points
with torch's `interpolate(mode="linear")` (half-pixel centres, `align_corners=False`); each row
min-max normalised; the self- versus cross-attention contribution as the signed mean of
(self - cross) block outputs over all prefix rows and dimensions; averages over correctly
translated samples grouped by their number of decoding calls (glosses + 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

N_POINTS = 100  # the paper's normalised video length


def resample_frames(values_XxT: jax.Array, frame_mask_T: jax.Array, size: int = N_POINTS) -> jax.Array:
    """Drops padded frames (last axis) and resamples the real ones linearly to `size` points.

    Matches `torch.nn.functional.interpolate(mode="linear", align_corners=False)`: output point
    j reads the input at x = (j + 0.5) * n / size - 0.5, clamped to [0, n - 1], n real frames.
    """
    n = jnp.sum(frame_mask_T)
    real_XxT = jnp.take(values_XxT, jnp.argsort(~frame_mask_T, stable=True), axis=-1)  # real first
    x = jnp.clip((jnp.arange(size) + 0.5) * n / size - 0.5, 0, jnp.maximum(n - 1, 0))
    lo = jnp.floor(x).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, jnp.maximum(n - 1, 0))
    w = x - lo
    return jnp.take(real_XxT, lo, axis=-1) * (1 - w) + jnp.take(real_XxT, hi, axis=-1) * w


def min_max(x: jax.Array, axis: int = -1, where=True) -> jax.Array:
    """(x - min) / (max - min) along `axis`; a constant row becomes 0 (the authors' gives NaN).

    `where` limits the min and max to its True entries; the others come out NaN.
    """
    lo = jnp.min(x, axis, keepdims=True, where=where, initial=jnp.inf)
    hi = jnp.max(x, axis, keepdims=True, where=where, initial=-jnp.inf)
    return jnp.where(where, (x - lo) / jnp.where(hi > lo, hi - lo, 1.0), jnp.nan)


def cross_attention_rows_per_head(cross_pattern_SxHxT, frame_mask_T, size: int = N_POINTS) -> jax.Array:
    """Clean variant of `cross_attention_rows`: every head on its own, (S, H, size)."""
    return min_max(resample_frames(cross_pattern_SxHxT, frame_mask_T, size))


def cross_attention_rows(cross_pattern_SxHxT, frame_mask_T, size: int = N_POINTS) -> jax.Array:
    """Figures 2a/3: each step's cross-attention over the video, heads averaged, (S, size).

    The newest position's attention at each decoding call, padded frames dropped, resampled to
    `size` points, min-max normalised per row.
    """
    return cross_attention_rows_per_head(jnp.mean(cross_pattern_SxHxT, 1, keepdims=True), frame_mask_T, size)[:, 0]


def cross_attention_frames_per_head(cross_pattern_SxHxT, frame_mask_T) -> jax.Array:
    """Clean variant of `cross_attention_frames`: every head on its own, (S, H, T)."""
    return min_max(cross_pattern_SxHxT, where=frame_mask_T)


def cross_attention_frames(cross_pattern_SxHxT, frame_mask_T) -> jax.Array:
    """Figure 2a: one translation's cross-attention over its own frames, heads averaged, min-max
    per row over the real frames, (S, T); padded frames NaN. Unlike the averages it is not
    resampled, as in the authors' single-sample figures."""
    return min_max(jnp.mean(cross_pattern_SxHxT, 1), where=frame_mask_T)


def self_minus_cross(attn_out_SxQxD, cross_attn_out_SxQxD) -> jax.Array:
    """Figures 2b/4: mean of (self - cross) block output over prefix rows q <= s and dims, (S,).

    Positive: the self-attention block (previous tokens) adds more to the residual stream than
    the cross-attention block (the frames). A signed mean, as the authors took it: opposite
    signs across dimensions cancel, so it measures a bias, not a magnitude.
    """
    s, q, d = attn_out_SxQxD.shape
    prefix_SxQ = jnp.arange(q)[None, :] <= jnp.arange(s)[:, None]
    total_S = jnp.sum(jnp.where(prefix_SxQ[..., None], attn_out_SxQxD - cross_attn_out_SxQxD, 0.0), (1, 2))
    return total_S / ((jnp.arange(s) + 1) * d)


def self_share(attn_out_SxQxD, cross_attn_out_SxQxD) -> jax.Array:
    """Clean variant of `self_minus_cross`: ||self|| / (||self|| + ||cross||) of the newest row, (S,).

    In [0, 1]; 0.5 when both blocks add vectors of equal length to the newest position, whose
    output alone makes the prediction. With causal decoding the other rows are past steps.
    """
    s = attn_out_SxQxD.shape[0]
    newest = lambda x_SxQxD: jnp.linalg.norm(x_SxQxD[jnp.arange(s), jnp.arange(s)], axis=-1)
    self_S, cross_S = newest(attn_out_SxQxD), newest(cross_attn_out_SxQxD)
    return self_S / jnp.maximum(self_S + cross_S, 1e-12)


def encoder_attention(encoder_pattern_HxTxT, frame_mask_T, size: int = N_POINTS) -> jax.Array:
    """Figure 5: encoder self-attention, heads averaged, keys resampled to `size`, (T, size).

    Query rows stay frames (the paper resamples the key axis only). The authors padded every
    video to 220 frames and kept the padding queries; with length buckets those rows do not
    exist, so padded query rows are NaN here and averages skip them.
    """
    rows_TxP = resample_frames(jnp.mean(encoder_pattern_HxTxT, 0), frame_mask_T, size)
    return jnp.where(frame_mask_T[:, None], rows_TxP, jnp.nan)


def encoder_attention_received(encoder_pattern_HxTxT, frame_mask_T, size: int = N_POINTS) -> jax.Array:
    """Clean variant of `encoder_attention`: per head, the attention each frame receives, averaged
    over the real query frames, resampled to `size` points, (H, size)."""
    received_HxT = jnp.sum(encoder_pattern_HxTxT * frame_mask_T[:, None], 1) / jnp.maximum(jnp.sum(frame_mask_T), 1)
    return resample_frames(received_HxT, frame_mask_T, size)


def peak_frames_per_head(cross_pattern_SxHxT, frame_mask_T) -> jax.Array:
    """Clean variant of `peak_frames`: each head's most attended real frame per step, (S, H)."""
    return jnp.argmax(jnp.where(frame_mask_T, cross_pattern_SxHxT, -jnp.inf), axis=-1)


def peak_frames(cross_pattern_SxHxT, frame_mask_T) -> jax.Array:
    """Figure 2a's pictures: the most attended real frame (sampled-frame index) per step, (S,)."""
    return peak_frames_per_head(jnp.mean(cross_pattern_SxHxT, 1, keepdims=True), frame_mask_T)[:, 0]


def group_mean(values_Bx, group_B, include_B, n_groups: int, valid_Bx=None) -> tuple[jax.Array, jax.Array]:
    """Averages per-sample values by group, e.g. by number of decoding calls (`length_B`).

    Args:
      values_Bx: (B, ...) per-sample values.
      group_B: each sample's group in [0, n_groups); others are left out.
      include_B: which samples count (the paper: correctly translated ones).
      n_groups: number of groups G.
      valid_Bx: optional mask broadcastable to `values_Bx`; invalid entries (steps after the end,
        NaN rows) are skipped element by element.

    Returns:
      (means (G, ...), NaN where nothing was averaged; samples per group (G,)).
    """
    valid = ~jnp.isnan(values_Bx) if valid_Bx is None else jnp.broadcast_to(valid_Bx, values_Bx.shape) & ~jnp.isnan(values_Bx)
    member_BxG = (group_B[:, None] == jnp.arange(n_groups)) & include_B[:, None]
    weights = jnp.tensordot(member_BxG.astype(jnp.float32), valid.astype(jnp.float32), axes=(0, 0))
    sums = jnp.tensordot(member_BxG.astype(jnp.float32), jnp.where(valid, values_Bx, 0.0), axes=(0, 0))
    return jnp.where(weights > 0, sums / jnp.maximum(weights, 1), jnp.nan), jnp.sum(member_BxG, 0)
