"""How well cross-attention aligns glosses with the video: numbers for what the paper shows.

The paper reads diagonality and clusters off heatmaps and names their quantification as future
work; these functions make them numbers. Each works on one sample: `attention_SxT`, the newest
position's cross-attention at each decoding step with heads averaged (rows sum to 1 over the
real frames), `frame_mask_T`, and `n_tokens`, the number of steps that produced a gloss (the
decoding calls minus the <eos> one). Positions along the video are "real-frame ranks": padded
frames are skipped, as the paper's figures drop them. All but the boundary functions (whose
outputs vary in size) are jittable and vmappable; a value that is undefined for a sample (fewer
than two glosses for the ordering scores) is NaN, so averages use `nanmean`.

The span scores take each step's `gloss_spans` row: the [start, end) of the sign its token
renders. For a gloss that is its own sign; for a word of a text target, the sign of the gloss the
corpus aligns it with (`examples.target_spans`), so two words of one gloss share a span, and a
word no gloss carries (an article, a particle) has none (-1) and is left out of every span score.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def frame_ranks(frame_mask_T) -> jax.Array:
    """Each frame's position among the real frames (0 .. N-1); padded frames get -1."""
    return jnp.where(frame_mask_T, jnp.cumsum(frame_mask_T) - 1, -1)


def centroids(attention_SxT, frame_mask_T) -> jax.Array:
    """Attention centroid per step as a share of the video, (S,): sum_t a_t (r_t + 0.5) / N.

    r_t is frame t's real-frame rank and N the number of real frames, so 0 is the start and 1
    the end of the video.
    """
    n = jnp.maximum(jnp.sum(frame_mask_T), 1)
    position_T = (frame_ranks(frame_mask_T) + 0.5) / n
    weights_SxT = jnp.where(frame_mask_T, attention_SxT, 0.0)
    return jnp.sum(weights_SxT * position_T, -1) / jnp.maximum(jnp.sum(weights_SxT, -1), 1e-12)


def spearman(x_N, y_N, valid_N) -> jax.Array:
    """Spearman's rank correlation of x and y over the valid entries (tied values share their
    average rank); NaN below two entries or when either is constant."""
    def ranks(v_N):
        others = valid_N[None, :]
        below = jnp.sum(others & (v_N[None, :] < v_N[:, None]), 1)
        ties = jnp.sum(others & (v_N[None, :] == v_N[:, None]), 1)
        return below + (ties - 1) / 2

    count = jnp.sum(valid_N)
    centre = lambda r: jnp.where(valid_N, r - jnp.sum(jnp.where(valid_N, r, 0.0)) / jnp.maximum(count, 1), 0.0)
    cx, cy = centre(ranks(x_N)), centre(ranks(y_N))
    denominator = jnp.sqrt(jnp.sum(cx**2) * jnp.sum(cy**2))
    defined = (count >= 2) & (denominator > 0)
    return jnp.where(defined, jnp.sum(cx * cy) / jnp.where(defined, denominator, 1.0), jnp.nan)


def diagonality(attention_SxT, frame_mask_T, n_tokens) -> jax.Array:
    """Rank correlation between a gloss's position in the sentence and where in the video it
    looked (its attention centroid), in [-1, 1]: 1 when later glosses always look later."""
    steps_S = jnp.arange(attention_SxT.shape[0])
    return spearman(steps_S, centroids(attention_SxT, frame_mask_T), steps_S < n_tokens)


def diagonal_mass(attention_SxT, frame_mask_T, n_tokens, width: float = 0.2) -> jax.Array:
    """A guided-attention score (after Tachibana et al. 2018): mean over gloss steps of
    sum_t a_st exp(-(p_s - q_t)^2 / (2 width^2)), with p_s = (s + 0.5) / n the gloss's share of
    the sentence and q_t = (r_t + 0.5) / N the frame's share of the video.

    1 when every gloss attends exactly to its proportional place on the diagonal; attention
    spread uniformly over the video scores about 0.5 for one gloss and 0.42 for many (default
    width).
    """
    s_len = attention_SxT.shape[0]
    n = jnp.maximum(n_tokens, 1)
    p_Sx1 = ((jnp.arange(s_len) + 0.5) / n)[:, None]
    q_1xT = ((frame_ranks(frame_mask_T) + 0.5) / jnp.maximum(jnp.sum(frame_mask_T), 1))[None, :]
    guide_SxT = jnp.exp(-((p_Sx1 - q_1xT) ** 2) / (2 * width**2))
    per_step_S = jnp.sum(jnp.where(frame_mask_T, attention_SxT * guide_SxT, 0.0), -1)
    return jnp.where(n_tokens >= 1, jnp.sum(jnp.where(jnp.arange(s_len) < n_tokens, per_step_S, 0.0)) / n, jnp.nan)


def monotonicity(attention_SxT, frame_mask_T, n_tokens) -> jax.Array:
    """Share of consecutive glosses whose attention centroid does not move backwards, in [0, 1]."""
    c_S = centroids(attention_SxT, frame_mask_T)
    moves = jnp.arange(1, attention_SxT.shape[0]) < n_tokens
    forward = jnp.sum((c_S[1:] >= c_S[:-1]) & moves)
    return jnp.where(n_tokens >= 2, forward / jnp.maximum(n_tokens - 1, 1), jnp.nan)


def _compress(values_T, frame_mask_T, fill):
    """The real frames first, in order, then `fill`."""
    order = jnp.argsort(~frame_mask_T, stable=True)
    return jnp.where(jnp.arange(values_T.shape[0]) < jnp.sum(frame_mask_T), values_T[order], fill)


def window_mass(attention_T, frame_mask_T, fraction: float = 0.1) -> jax.Array:
    """Clustering: the largest attention mass inside any run of round(fraction * N) consecutive
    real frames (at least one). 1 when attention sits in one such cluster; about `fraction`
    when it is spread evenly."""
    n = jnp.sum(frame_mask_T)
    width = jnp.maximum(jnp.round(fraction * n), 1).astype(jnp.int32)
    cumulative = jnp.concatenate([jnp.zeros(1), jnp.cumsum(_compress(attention_T, frame_mask_T, 0.0))])
    starts = jnp.arange(attention_T.shape[0])
    return jnp.max(cumulative[jnp.minimum(starts + width, n)] - cumulative[starts])


def n_peaks(attention_T, frame_mask_T, height: float = 0.5) -> jax.Array:
    """Clustering: local maxima over the real frames at least `height` times the row's maximum
    (a plateau counts once)."""
    x = _compress(attention_T, frame_mask_T, -jnp.inf)
    left = jnp.concatenate([jnp.full(1, -jnp.inf), x[:-1]])
    right = jnp.concatenate([x[1:], jnp.full(1, -jnp.inf)])
    return jnp.sum((x > left) & (x >= right) & (x >= height * jnp.max(x)) & jnp.isfinite(x))


def clustering(attention_SxT, frame_mask_T, n_tokens, fraction: float = 0.1, height: float = 0.5):
    """Mean `window_mass` and mean `n_peaks` over the gloss steps, NaN without glosses."""
    gloss_S = jnp.arange(attention_SxT.shape[0]) < n_tokens
    mean = lambda v_S: jnp.where(n_tokens >= 1, jnp.sum(jnp.where(gloss_S, v_S, 0)) / jnp.maximum(n_tokens, 1), jnp.nan)
    mass_S = jax.vmap(window_mass, (0, None, None))(attention_SxT, frame_mask_T, fraction)
    peaks_S = jax.vmap(n_peaks, (0, None, None))(attention_SxT, frame_mask_T, height)
    return mean(mass_S), mean(peaks_S)


def alignment_hits(attention_SxT, frame_mask_T, gloss_spans_Sx2, n_tokens) -> tuple[jax.Array, jax.Array]:
    """Alignment accuracy's counts: (glosses whose most attended real frame lies inside their
    annotated [start, end) span, glosses with a known span). Frames are sampled-frame indices,
    the numbering of the batch's `gloss_spans`."""
    peak_S = jnp.argmax(jnp.where(frame_mask_T, attention_SxT, -jnp.inf), -1)
    start_S, end_S = gloss_spans_Sx2[:, 0], gloss_spans_Sx2[:, 1]
    known_S = (jnp.arange(attention_SxT.shape[0]) < n_tokens) & (start_S >= 0) & (end_S > start_S)
    return jnp.sum(known_S & (peak_S >= start_S) & (peak_S < end_S)), jnp.sum(known_S)


def attention_boundaries(attention_SxT, frame_mask_T, n_tokens: int) -> np.ndarray:
    """Sign boundaries read off the attention: label every real frame with the gloss whose
    min-max-normalised attention (a row of Figure 2a) is highest there; a boundary is the first
    frame of each new label, as a sampled-frame index."""
    real = np.flatnonzero(np.asarray(frame_mask_T))
    if n_tokens < 2 or len(real) < 2:
        return np.zeros(0)
    rows = np.asarray(attention_SxT)[:n_tokens][:, real]
    lo, hi = rows.min(1, keepdims=True), rows.max(1, keepdims=True)
    labels = np.argmax((rows - lo) / np.where(hi > lo, hi - lo, 1.0), axis=0)  # as paper.min_max
    return real[1:][labels[1:] != labels[:-1]].astype(float)


def by_sign(attention_SxT, gloss_spans_Sx2, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `n_tokens` steps grouped by sign: the distinct known spans in time order, (K, 2),
    and for each the mean attention of the steps whose token it renders, (K, T). Steps without a
    known span are left out; for glosses (one sign each, in signing order) nothing changes."""
    spans = np.asarray(gloss_spans_Sx2)[:n_tokens]
    known = spans[:, 0] >= 0
    spans_Kx2, sign_S = np.unique(spans[known], axis=0, return_inverse=True)
    member_KxS = np.arange(len(spans_Kx2))[:, None] == sign_S.reshape(-1)
    return spans_Kx2, member_KxS @ np.asarray(attention_SxT)[:n_tokens][known] / member_KxS.sum(1, keepdims=True)


def span_boundaries(spans_Kx2) -> np.ndarray:
    """Annotated boundaries between consecutive signs (`by_sign`'s spans): the middle of the gap
    between one's end and the next one's start (their shared frame edge when they touch)."""
    return np.array([(a[1] + b[0]) / 2 for a, b in zip(spans_Kx2[:-1], spans_Kx2[1:])], float)


def match_boundaries(predicted: np.ndarray, annotated: np.ndarray, tolerance: float) -> int:
    """Pairs each boundary with at most one of the other set within `tolerance` frames, closest
    pairs first; returns the number of pairs."""
    distance = np.abs(predicted[:, None] - annotated[None, :])
    used_p, used_a, matched = set(), set(), 0
    for i, j in zip(*np.unravel_index(np.argsort(distance, axis=None, kind="stable"), distance.shape)):
        if distance[i, j] > tolerance:
            break
        if i not in used_p and j not in used_a:
            used_p.add(i), used_a.add(j)
            matched += 1
    return matched


def boundary_counts(attention_SxT, frame_mask_T, gloss_spans_Sx2, n_tokens: int,
                    tolerance: float = 2.0) -> tuple[int, int, int]:
    """(matched, predicted, annotated) boundaries of one sample, read per sign (`by_sign`): the
    frames are labelled by the signs the steps render, so a text's words without a sign add no
    boundary and two words of one sign none between them; (0, 0, 0) without known spans. Over a
    set of samples, precision = sum matched / sum predicted, recall = sum matched / sum annotated
    and F1 = 2 sum matched / (sum predicted + sum annotated) (see `f1`)."""
    spans_Kx2, rows_KxT = by_sign(attention_SxT, gloss_spans_Sx2, n_tokens)
    predicted = attention_boundaries(rows_KxT, frame_mask_T, len(spans_Kx2))
    annotated = span_boundaries(spans_Kx2)
    return match_boundaries(predicted, annotated, tolerance), len(predicted), len(annotated)


def boundary_baselines(frame_mask_T, gloss_spans_Sx2, n_tokens: int, rng: np.random.Generator,
                       tolerance: float = 2.0, draws: int = 20) -> np.ndarray:
    """What boundary F1 gives without attention, (2, 3) counts as `boundary_counts`: [0] as many
    boundaries as annotated, evenly spaced over the real frames; [1] as many at random real
    frames (distinct, first frame excluded), the counts averaged over `draws` draws."""
    spans_Kx2, _ = by_sign(np.zeros((len(gloss_spans_Sx2), 1)), gloss_spans_Sx2, n_tokens)
    annotated, real = span_boundaries(spans_Kx2), np.flatnonzero(np.asarray(frame_mask_T))
    count = min(len(annotated), max(len(real) - 1, 0))
    even = real[(np.arange(1, count + 1) * len(real)) // (count + 1)].astype(float)
    random = [rng.choice(real[1:], count, replace=False).astype(float) for _ in range(draws)]
    counts = lambda predicted: (match_boundaries(predicted, annotated, tolerance), len(predicted), len(annotated))
    return np.array([counts(even), np.mean([counts(r) for r in random], 0)])


def f1(matched: int, predicted: int, annotated: int) -> float:
    """The harmonic mean of precision and recall from pooled counts; NaN when both sets are empty."""
    total = predicted + annotated
    return float(2 * matched / total) if total else float("nan")


def encoder_within_sign(encoder_pattern_HxTxT, frame_mask_T, gloss_spans_Sx2) -> jax.Array:
    """How much the encoder groups frames by sign (the paper's segmentation patterns, §5.1.1).

    For every real frame inside a gloss span: the share of its encoder self-attention (heads
    averaged) that stays inside its own span, minus the share a uniform row over the real frames
    would put there. Averaged over those frames: 0 for sign-blind attention, > 0 when frames
    attend within their sign. NaN when no frame lies in a known span.
    """
    t_T = jnp.arange(frame_mask_T.shape[0])
    known_S = gloss_spans_Sx2[:, 0] >= 0
    member_SxT = (known_S[:, None] & (t_T >= gloss_spans_Sx2[:, :1]) & (t_T < gloss_spans_Sx2[:, 1:])
                  & frame_mask_T)
    same_TxT = jnp.einsum("st,su->tu", member_SxT.astype(jnp.float32), member_SxT.astype(jnp.float32)) > 0
    attention_TxT = jnp.mean(encoder_pattern_HxTxT, axis=0)
    inside_T = jnp.sum(jnp.where(same_TxT, attention_TxT, 0.0), axis=-1)
    uniform_T = jnp.sum(same_TxT, axis=-1) / jnp.maximum(jnp.sum(frame_mask_T), 1)
    in_sign_T = jnp.any(member_SxT, axis=0)
    n = jnp.sum(in_sign_T)
    return jnp.where(n > 0, jnp.sum(jnp.where(in_sign_T, inside_T - uniform_T, 0.0)) / jnp.maximum(n, 1), jnp.nan)
