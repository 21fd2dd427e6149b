"""Heads one by one, a null for picking the best head, and where each gloss's attention falls.

The paper averages the 8 heads before it reads a diagonal off the heatmaps. A single head can
align while the average does not, and the best of 8 heads can look aligned by chance. `head_scores`
scores every head on its own, teacher-forced (the references fed, so that every run is scored on
the same glosses of every sample), and builds the null for the best head by shuffling each
sample's gloss order: under "where a head looks has nothing to do with the gloss order", the
best-of-8 mean diagonality of the shuffled samples is distributed as the observed one.

It also says which frames each gloss attends to: the share of its attention on the rest before
the first sign, on the signs, on the transitions between signs and on the rest after the last
sign, and inside its own sign. For a text target a word's sign is that of the gloss it renders;
words that no gloss carries are left out, as are samples without a word alignment
(`examples.target_spans`).

Diagonality here is Spearman's correlation of gloss index and attention centroid per sample, as
`alignment.diagonality` (centroids are continuous, so there are no ties), averaged over the
samples with two glosses or more.
"""

from __future__ import annotations

import jax
import numpy as np

from slt_jax import data
from slt_jax.analysis import alignment as al
from slt_jax.analysis.record import extract_attention
from slt_jax.runs import load_run

REGIONS = ("before", "sign", "between", "after")


def rank_correlation(order_XxS: np.ndarray, centroid_XxS: np.ndarray, n_X: np.ndarray) -> np.ndarray:
    """Spearman's correlation of `order` and `centroid` over each row's first n entries (no ties),
    NaN where n < 2. `order` holds a permutation of 0..n-1 in those entries."""
    s = centroid_XxS.shape[-1]
    valid = np.arange(s) < n_X[..., None]
    ranks = np.argsort(np.argsort(np.where(valid, centroid_XxS, np.inf), -1), -1)
    n = n_X.astype(float)
    squares = np.sum(np.where(valid, (ranks - order_XxS) ** 2, 0), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 2, 1 - 6 * squares / (n * (n**2 - 1)), np.nan)


def _shuffled_orders(rng: np.random.Generator, n_N: np.ndarray, s: int, permutations: int) -> np.ndarray:
    """(P, N, S): per permutation and sample, its first n steps in a random order."""
    keys = np.where(np.arange(s) < n_N[:, None], rng.random((permutations, len(n_N), s)), np.inf)
    return np.argsort(np.argsort(keys, -1), -1)


def head_diagonality(centroid_NxHxS: np.ndarray, n_N: np.ndarray, permutations: int = 200,
                     seed: int = 0) -> dict:
    """Per-head and head-averaged diagonality, and the shuffled-order null of the best and worst head.

    Args:
      centroid_NxHxS: each sample's attention centroid per head and gloss step.
      n_N: glosses per sample (steps that produced a gloss).
      permutations: shuffles of the gloss order for the null.
      seed: of the shuffles.

    Returns:
      per_head (H,), averaged (the centroid of the heads' mean attention: the mean of their
      centroids), best / worst head's value and index, the null's 95th percentile of the best-of-H
      and 5th of the worst-of-H, and one-sided p-values; samples with < 2 glosses are left out.
    """
    keep = n_N >= 2
    centroid_NxHxS, n_N = centroid_NxHxS[keep], n_N[keep]
    s = centroid_NxHxS.shape[-1]
    steps_NxS = np.broadcast_to(np.arange(s), (len(n_N), s))
    per_head = np.nanmean(rank_correlation(steps_NxS[:, None], centroid_NxHxS, n_N[:, None]), 0)
    averaged = float(np.nanmean(rank_correlation(steps_NxS, centroid_NxHxS.mean(1), n_N)))
    orders_PxNxS = _shuffled_orders(np.random.default_rng(seed), n_N, s, permutations)
    null_PxH = np.nanmean(rank_correlation(orders_PxNxS[:, :, None], centroid_NxHxS[None], n_N[None, :, None]), 1)
    best, worst = null_PxH.max(1), null_PxH.min(1)
    return {
        "n": int(len(n_N)), "per_head": per_head.tolist(), "averaged": averaged,
        "best": float(per_head.max()), "best_head": int(per_head.argmax()),
        "best_null95": float(np.quantile(best, 0.95)),
        "best_p": float((1 + np.sum(best >= per_head.max())) / (1 + permutations)),
        "worst": float(per_head.min()), "worst_head": int(per_head.argmin()),
        "worst_null05": float(np.quantile(worst, 0.05)),
        "worst_p": float((1 + np.sum(worst <= per_head.min())) / (1 + permutations)),
    }


def frame_regions(spans_Sx2: np.ndarray, n: int, frame_mask_T: np.ndarray) -> np.ndarray | None:
    """Each real frame's region (index into REGIONS) by the known spans of the first n steps, -1
    for padding; None without one."""
    spans = spans_Sx2[:n][spans_Sx2[:n, 0] >= 0]
    if len(spans) == 0:
        return None
    t = np.arange(len(frame_mask_T))
    in_sign = np.any((t[:, None] >= spans[:, 0]) & (t[:, None] < spans[:, 1]), 1)
    region = np.where(in_sign, 1, np.where(t < spans[:, 0].min(), 0, np.where(t >= spans[:, 1].max(), 3, 2)))
    return np.where(frame_mask_T, region, -1)


def region_shares(samples) -> dict | None:
    """Where the glosses' attention (heads averaged) falls, over the samples with spans.

    A "gloss" here is a step whose token has a known span (every gloss of a gloss target; the
    words of a text that render a gloss).

    Args:
      samples: per sample (attention_SxT, spans_Sx2, n steps, frame_mask_T); T may differ.

    Returns:
      For the first gloss, the last gloss (samples with >= 2 glosses) and all glosses: the mean
      share of attention per region of REGIONS and inside the gloss's own sign ("own_sign"),
      beside the share of frames its own sign covers ("own_sign_frames", chance); "frames": the
      share of real frames per region over the samples with >= 2 glosses (what attention spread
      evenly would give the first and last gloss); None when no sample has spans.
    """
    first, last, every, frames = [], [], [], []
    for attention_SxT, spans_Sx2, n, mask_T in samples:
        region_T = frame_regions(spans_Sx2, int(n), mask_T)
        if region_T is None:
            continue
        t = np.arange(len(mask_T))
        rows = []
        for step in np.flatnonzero(spans_Sx2[: int(n), 0] >= 0):
            a_T = attention_SxT[step]
            in_own = (t >= spans_Sx2[step, 0]) & (t < spans_Sx2[step, 1])
            rows.append([np.sum(a_T[region_T == r]) for r in range(len(REGIONS))]
                        + [np.sum(a_T[in_own]), np.mean(in_own[mask_T])])
        every += rows
        if len(rows) >= 2:
            frames.append([np.mean(region_T[mask_T] == r) for r in range(len(REGIONS))])
            first.append(rows[0])
            last.append(rows[-1])
    if not every:
        return None
    named = lambda rows: dict(zip((*REGIONS, "own_sign", "own_sign_frames"), np.mean(rows, 0).round(4).tolist())) if rows else None
    return {"first": named(first), "last": named(last), "all": named(every),
            "frames": dict(zip(REGIONS, np.mean(frames, 0).round(4).tolist())) if frames else None}


def without_content(frames_BxTxF: np.ndarray, frame_mask_BxT: np.ndarray) -> np.ndarray:
    """Every real frame replaced by its sample's mean real frame (padding stays 0): what is left
    for attention to tell frames apart by is their position."""
    mask = frame_mask_BxT[..., None]
    mean_Bx1xF = np.sum(frames_BxTxF * mask, 1, keepdims=True) / np.maximum(mask.sum(1, keepdims=True), 1)
    return np.where(mask, mean_Bx1xF, 0.0).astype(frames_BxTxF.dtype)


def head_scores(workdir, split: str = "test", data_dir=None, permutations: int = 200, seed: int = 0) -> dict:
    """`head_diagonality` and `region_shares` of a trained run, teacher-forced on every sample
    of `split`, plus the mean centroid of the first and the last gloss (share of the video).

    "position_only" repeats the per-head diagonality and the attention inside each gloss's own
    sign with the frames' content removed (`without_content`): what survives it comes from
    positions, not from the signs.
    """
    run = load_run(workdir)
    examples = data.load_examples(data_dir or run.data_dir, split, run.config.data, run.vocab)
    parts = []
    per_head_centroids = jax.jit(jax.vmap(jax.vmap(al.centroids, in_axes=(1, None), out_axes=1)))
    for batch in data.make_batches(examples, run.config.data, run.config.train.batch_size):
        record = extract_attention(run.params, batch, "causal", teacher_forced=True)
        blind = extract_attention(run.params, batch | {"frames": without_content(batch["frames"], batch["frame_mask"])},
                                  "causal", teacher_forced=True)
        keep = batch["sample_mask"]
        parts.append({"centroid": np.asarray(per_head_centroids(record.cross_pattern_BxSxHxT, record.frame_mask_BxT))[keep],
                      "blind": np.asarray(per_head_centroids(blind.cross_pattern_BxSxHxT, blind.frame_mask_BxT))[keep],
                      "attention": np.asarray(record.cross_pattern_BxSxHxT.mean(2))[keep],
                      "blind_attention": np.asarray(blind.cross_pattern_BxSxHxT.mean(2))[keep],
                      "spans": np.asarray(record.gloss_spans_BxSx2)[keep], "n": np.asarray(record.length_B - 1)[keep],
                      "mask": np.asarray(record.frame_mask_BxT)[keep]})
    centroid = np.concatenate([p["centroid"] for p in parts])  # (N, S, H)
    n = np.concatenate([p["n"] for p in parts])
    averaged = centroid.mean(2)
    several = n >= 2
    regions, blind_regions = (region_shares(sample for p in parts for sample in zip(p[key], p["spans"], p["n"], p["mask"]))
                              for key in ("attention", "blind_attention"))
    heads = head_diagonality(np.swapaxes(centroid, 1, 2), n, permutations, seed)
    blind = head_diagonality(np.swapaxes(np.concatenate([p["blind"] for p in parts]), 1, 2), n, permutations, seed)
    return {
        "epoch": run.epoch, "split": split, "mode": "teacher-forced, causal",
        "heads": heads,
        "position_only": {"per_head": blind["per_head"], "averaged": blind["averaged"],
                          "own_sign": blind_regions["all"]["own_sign"] if blind_regions else None,
                          # across heads: does a head keep its direction without the content?
                          "agreement": float(np.corrcoef(heads["per_head"], blind["per_head"])[0, 1])},
        "first_centroid": float(averaged[several, 0].mean()),
        "last_centroid": float(averaged[several, n[several] - 1].mean()),
        "regions": regions,
    }

