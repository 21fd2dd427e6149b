"""Attention beside attribution: the same scores for every lens, and the interventions' effects.

A lens ranks the frames for each reference token (teacher-forced): the head-averaged
cross-attention, each method of `attribution`, and random scores (the baseline of every score).
For each lens and each gloss with a known sign span:

  own_sign               its mass inside the gloss's own sign
  other_sign             its mass inside another sign of the sentence, scaled to the own sign's
                         length and averaged over those signs (what a lens that treats signs
                         alike gives); the chance levels of a uniform lens over all real frames
                         and over the signing frames only are in `chance`
  alignment_accuracy     the share of glosses whose top frame lies in their own sign
  agreement              Spearman's correlation with the attention over the real frames
  deletion               log p(gloss) lost when the lens's top k% real frames are deleted, and
                         when only they are kept (the rest deleted)

`batch_scores` reduces one batch to per-sample arrays; `summarise` pools the samples.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from slt_jax.analysis import alignment as al
from slt_jax.analysis import attribution as at
from slt_jax.analysis import faithfulness as fa
from slt_jax.analysis.record import model_for
from slt_jax.config import EOS
from slt_jax.features import PARTS

LENSES = ("attention", *at.METHODS, "random")
FRACTIONS = (0.1, 0.3)


def sign_shares(scores_T, frame_mask_T, spans_Lx2, step: int) -> jax.Array:
    """(own, other, chance over real frames, chance over signing frames) for one step's row of
    scores (summing to 1 over the real frames); NaN where the step's span is unknown, and
    `other` NaN without another known sign."""
    t_T = jnp.arange(scores_T.shape[0])
    known_L = (spans_Lx2[:, 0] >= 0) & (spans_Lx2[:, 1] > spans_Lx2[:, 0])
    inside_LxT = known_L[:, None] & (t_T >= spans_Lx2[:, :1]) & (t_T < spans_Lx2[:, 1:]) & frame_mask_T
    mass_L = jnp.sum(jnp.where(inside_LxT, scores_T, 0.0), -1)
    length_L = jnp.sum(inside_LxT, -1)
    others_L = known_L & (jnp.arange(len(known_L)) != step) & (length_L > 0)
    scaled_L = mass_L * length_L[step] / jnp.maximum(length_L, 1)
    other = jnp.sum(jnp.where(others_L, scaled_L, 0.0)) / jnp.maximum(jnp.sum(others_L), 1)
    signing = jnp.sum(jnp.any(inside_LxT, 0))
    own_known = known_L[step] & (length_L[step] > 0)
    nan_unless = lambda ok, x: jnp.where(ok, x, jnp.nan)
    return jnp.stack([nan_unless(own_known, mass_L[step]), nan_unless(own_known & jnp.any(others_L), other),
                      nan_unless(own_known, length_L[step] / jnp.maximum(jnp.sum(frame_mask_T), 1)),
                      nan_unless(own_known, length_L[step] / jnp.maximum(signing, 1))])


@jax.jit
def _row_scores(scores_BxLxT, attention_BxLxT, frame_mask_BxT, spans_BxLx2):
    """Per (sample, step): sign_shares (4), whether the top frame is in the own sign, and the
    rank agreement with attention."""
    steps_L = jnp.arange(scores_BxLxT.shape[1])
    shares = jax.vmap(jax.vmap(sign_shares, (0, None, None, 0)), (0, 0, 0, None))(
        scores_BxLxT, frame_mask_BxT, spans_BxLx2, steps_L)
    peak_BxL = jnp.argmax(jnp.where(frame_mask_BxT[:, None], scores_BxLxT, -jnp.inf), -1)
    hit_BxL = (peak_BxL >= spans_BxLx2[..., 0]) & (peak_BxL < spans_BxLx2[..., 1])
    agreement_BxL = jax.vmap(jax.vmap(al.spearman, (0, 0, None)), (0, 0, 0))(scores_BxLxT, attention_BxLxT,
                                                                            frame_mask_BxT)
    return shares, hit_BxL, agreement_BxL


@functools.partial(jax.jit, static_argnames=("keep",))
def _ranked_masks(scores_NxT, frame_mask_NxT, fractions_K, keep: bool) -> jax.Array:
    """Frames deleted per fraction k, (K, N, T): the top k% real frames, or all real frames but them."""
    top = jax.vmap(jax.vmap(fa.top_fraction_mask, (0, 0, None)), (None, None, 0))(scores_NxT, frame_mask_NxT,
                                                                                fractions_K)
    return frame_mask_NxT & ~top if keep else top


def ranked_deletion(params, batch, scores_MxBxLxT, rescore_BxL, fractions=FRACTIONS) -> np.ndarray:
    """log p of each rescored reference token with each lens's top frames deleted or kept alone,
    (M, 2, K, B, L): [m, 0] top k% deleted, [m, 1] only the top k% kept. NaN outside `rescore_BxL`."""
    scores = np.asarray(scores_MxBxLxT)
    m, b, length, t = scores.shape
    mask_NxT = np.broadcast_to(np.asarray(batch["frame_mask"])[:, None], (b, length, t)).reshape(-1, t)
    fractions_K = np.asarray(fractions, np.float32)
    pairs = np.flatnonzero(rescore_BxL)
    out = np.full((m, 2, len(fractions), b * length), np.nan, np.float32)
    if not len(pairs):
        return out.reshape(m, 2, len(fractions), b, length)
    deleted = np.stack([np.stack([np.asarray(_ranked_masks(s.reshape(-1, t)[pairs], mask_NxT[pairs], fractions_K,
                                                            keep)) for keep in (False, True)]) for s in scores])
    model = model_for(params, batch, length, sow=False)
    args = [jnp.asarray(batch[k]) for k in ("frames", "frame_mask", "decoder_input", "target")]
    score = functools.partial(fa.item_log_probs, model, params, *args)
    pair_I = np.tile(pairs, m * 2 * len(fractions))
    values = fa.in_chunks(score, t, (pair_I // length).astype(np.int32), (pair_I % length).astype(np.int32),
                          deleted.reshape(-1, t))
    out[..., pairs] = values.reshape(m, 2, len(fractions), len(pairs))
    return out.reshape(m, 2, len(fractions), b, length)


def batch_scores(params, batch, frames: int, attention_BxLxT, cross_BxLxHxT, parts_F, seed: int = 0,
                 fractions=FRACTIONS) -> dict:
    """Every lens's scores and every intervention on one batch, for its real samples.

    Args:
      params: model parameters.
      batch: a batch of `slt_jax.data` with `gloss_spans` and `sample_mask`, its frames possibly
        padded past the real ones (`record.pad_frames`).
      frames: the batch's own length: the real frames lie among the first `frames`, where every
        lens and intervention runs.
      attention_BxLxT: the teacher-forced, head-averaged cross-attention (a causal record's).
      cross_BxLxHxT: the same per head.
      parts_F: each feature's body part (`slt_jax.features.feature_parts`).
      seed: of the random lens.
      fractions: the shares of real frames the deletion curves delete or keep.

    Returns:
      Arrays with the real samples first: per lens `shares` (B, L, 4), `hit`, `agreement` (B, L),
      `parts` (B, L, P), `deleted` (B, 2, K, L); and `intact`, `known`, `gloss` (B, L), the sign
      deletion's `own` and `control` (B, L), the head knockout's `knocked`, `knocked_tokens`
      (B, H, L) and `head_own` (B, L, H), and the patching items (C, ...) under `patching`.
    """
    keep = np.asarray(batch["sample_mask"])
    # At the batch's own length: a gradient costs every frame a backward pass, so the padding to
    # the split's longest bucket would cost more than a compilation per bucket.
    batch = batch | {"frames": batch["frames"][:, :frames], "frame_mask": batch["frame_mask"][:, :frames]}
    attributions = {m: at.attribute(params, batch, m, parts_F=parts_F) for m in at.METHODS}
    attention_BxLxT, cross_BxLxHxT = attention_BxLxT[..., :frames], cross_BxLxHxT[..., :frames]
    target, spans, mask = (np.asarray(batch[k]) for k in ("target", "gloss_spans", "frame_mask"))
    gloss = (target > EOS) & keep[:, None]
    known = gloss & (spans[..., 0] >= 0) & (spans[..., 1] > spans[..., 0])
    random = jnp.where(mask[:, None], jax.random.uniform(jax.random.key(seed), attention_BxLxT.shape), 0.0)
    random = random / jnp.sum(random, -1, keepdims=True)
    scores = {"attention": attention_BxLxT, **{m: a.frames_BxLxT for m, a in attributions.items()}, "random": random}
    deleted = ranked_deletion(params, batch, np.stack([scores[lens] for lens in LENSES]), gloss, fractions)
    per_lens = {}
    for i, lens in enumerate(LENSES):
        shares, hit, agreement = jax.device_get(_row_scores(scores[lens], attention_BxLxT, mask, spans))
        parts = attributions[lens].parts_BxLxP if lens in attributions else np.full(target.shape + (len(PARTS),), np.nan)
        per_lens[lens] = {"shares": shares[keep], "hit": hit[keep], "agreement": agreement[keep],
                          "parts": np.asarray(parts)[keep], "deleted": np.moveaxis(deleted[i], 2, 0)[keep]}
    head_shares = jax.device_get(jax.vmap(_row_scores, (2, None, None, None))(
        jnp.asarray(cross_BxLxHxT), attention_BxLxT, mask, spans)[0][..., 0])  # (H, B, L) own-sign share
    signs = at.sign_deletion(params, batch, known)
    heads = at.head_knockout(params, batch)
    patching = at.activation_patching(params, batch)
    return {"lenses": per_lens, "intact": heads["intact"][keep], "known": known[keep], "gloss": gloss[keep],
            "own": signs["own"][keep], "control": signs["control"][keep],
            "knocked": np.moveaxis(heads["log_probs"], 0, 1)[keep],
            "knocked_tokens": np.moveaxis(heads["tokens"], 0, 1)[keep], "head_own": np.moveaxis(head_shares, 0, -1)[keep],
            "target": target[keep], "patching": {k: v for k, v in patching.items() if k != "items"}}


def _mean(values) -> float | None:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def summarise(m: dict, fractions=FRACTIONS) -> dict:
    """The pooled scores of `batch_scores`' merged arrays (analysis.json's `attribution`)."""
    known, gloss = m["known"], m["gloss"]
    lenses = {}
    for lens in LENSES:
        s = m["lenses"][lens]
        drop = lambda mode: [_mean((m["intact"] - s["deleted"][:, mode, k])[gloss]) for k in range(len(fractions))]
        lenses[lens] = {
            "own_sign": _mean(s["shares"][..., 0][known]), "other_sign": _mean(s["shares"][..., 1][known]),
            "alignment_accuracy": _mean(s["hit"][known]),
            "agreement_with_attention": None if lens == "attention" else _mean(s["agreement"][gloss]),
            "parts": None if np.isnan(s["parts"][gloss]).all() else dict(zip(PARTS, np.nanmean(s["parts"][gloss], 0).round(4).tolist())),
            "deletion": {"fractions": list(fractions), "log_prob_drop_top_deleted": drop(0),
                         "log_prob_drop_top_kept": drop(1)},
        }
    shares = m["lenses"]["attention"]["shares"]
    knocked_drop = [_mean((m["intact"][:, None] - m["knocked"])[:, h][gloss]) for h in range(m["knocked"].shape[1])]
    head_own = [_mean(m["head_own"][..., h][known]) for h in range(m["head_own"].shape[-1])]
    correct_when_knocked = [float(np.mean([np.array_equal(tokens, target) for tokens, target in
                                           zip(m["knocked_tokens"][:, h], m["target"])]))
                            for h in range(m["knocked"].shape[1])]
    best = int(np.nanargmax(np.asarray(head_own, float))) if any(v is not None for v in head_own) else None
    p = m["patching"]
    shift = (p["donor_after"] - p["own_after"]) - (p["donor_before"] - p["own_before"])
    return {
        "lenses": lenses,
        "chance": {"own_sign_uniform_over_frames": _mean(shares[..., 2][known]),
                   "own_sign_uniform_over_signing_frames": _mean(shares[..., 3][known]),
                   "alignment_accuracy_uniform": _mean(shares[..., 2][known])},
        "n_glosses": int(gloss.sum()), "n_known": int(known.sum()),
        "sign_deletion": {"own_drop": _mean((m["intact"] - m["own"])[known]),
                          "control_drop": _mean((m["intact"] - m["control"])[known]),
                          "n": int(np.isfinite(m["own"][known]).sum()),
                          "n_control": int(np.isfinite(m["control"][known]).sum())},
        "head_knockout": {"log_prob_drop": knocked_drop, "exact_match": correct_when_knocked,
                          "own_sign": head_own, "best_head": best},
        "activation_patching": {"n": int(len(shift)),
                                "follows_donor": _mean(p["predicted"] == p["donor_token"]) if len(shift) else None,
                                "keeps_own": _mean(p["predicted"] == p["own_token"]) if len(shift) else None,
                                "log_odds_shift": _mean(shift)},
    }
