"""Figures of the paper and of the new scores, drawn only from what the analyses return.

Each function takes arrays (numpy or jax) and labels and returns a `matplotlib.figure.Figure`
built without pyplot, so nothing here touches global state or the notebook's backend; save with
`fig.savefig(path)` or let Jupyter display it. Colour maps: "magma" for attention (close to the
authors' seaborn default), "coolwarm" on +-0.15 for self-minus-cross differences as in the paper.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from slt_jax.layout import LANDMARK_GROUPS, N_LANDMARKS
from slt_jax.synth.render import draw_frame

ATTENTION_CMAP = "magma"
DIFFERENCE_CMAP = "coolwarm"
DIFFERENCE_LIMIT = 0.15  # the paper's colour range for self - cross


def pose_points(features_F: np.ndarray, groups: Sequence[str], use_3d: bool = False) -> np.ndarray:
    """One frame's features back to (543, 2) landmark positions; absent points are NaN.

    Reads the positions block, which comes first (slt_jax.features); with `body_norm` its
    positions are in shoulder widths, not pixels, and draw the same shape.
    """
    per_point = 3 if use_3d else 2
    xy = np.full((N_LANDMARKS, 2), np.nan)
    indices = np.concatenate([np.arange(*LANDMARK_GROUPS[g]) for g in groups])
    flat = np.asarray(features_F, float)[: len(indices) * per_point].reshape(-1, per_point)[:, :2]
    xy[indices] = np.where(np.all(flat == 0, axis=1, keepdims=True), np.nan, flat)  # 0 = undetected
    return xy


def draw_pose(ax, xy: np.ndarray) -> None:
    """A stick figure of (543, 2) normalised landmarks (y down), with the synth renderer's style."""
    draw_frame(ax, xy)
    upper = np.r_[0:23, LANDMARK_GROUPS["left_hand"][0]:N_LANDMARKS]  # frame the head, arms and hands, not the legs
    real = xy[upper][~np.isnan(xy[upper]).any(1)]
    if len(real):
        (x0, y0), (x1, y1) = real.min(0), real.max(0)
        pad = 0.1 * max(x1 - x0, y1 - y0, 1e-3)
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y1 + pad, y0 - pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _percent_axis(ax, n: int) -> None:
    ticks = np.linspace(0, n, 5)
    ax.set_xticks(ticks - 0.5, [f"{p:.0f}" for p in np.linspace(0, 100, 5)])
    ax.set_xlabel("% of the video")


def cross_attention_sample(rows_SxN, tokens: Sequence[str], title: str, poses: Sequence[np.ndarray] = (),
                           peaks: Sequence[int] = (), spans: Sequence[tuple[int, int] | None] = ()) -> Figure:
    """Figure 2a: one translation's cross-attention, a row per predicted token over the real frames.

    Args:
      rows_SxN: min-max normalised rows over the N real frames (`cross_attention_rows` with
        size N keeps the frames as they are).
      tokens: the row labels (predicted tokens, <eos> included).
      title: the figure title.
      poses: (543, 2) landmarks drawn above the heatmap, one per gloss, at its peak frame.
      peaks: the real-frame position of each row's maximum, marked on the heatmap.
      spans: per row, the annotated [start, end) real-frame span of its token's sign, outlined;
        None for a row without one.
    """
    rows_SxN = np.asarray(rows_SxN)
    s, n = rows_SxN.shape
    fig = Figure(figsize=(max(6.0, 1.6 * len(poses)), 2.2 + 0.35 * s + (1.8 if len(poses) else 0)),
                 layout="constrained")
    grid = fig.add_gridspec(2 if len(poses) else 1, max(len(poses), 1), height_ratios=[1, 1.4] if len(poses) else None)
    for i, (xy, peak) in enumerate(zip(poses, peaks)):
        ax = fig.add_subplot(grid[0, i])
        draw_pose(ax, xy)
        ax.set_title(f"{tokens[i]}\nframe {peak}", fontsize=9)
    ax = fig.add_subplot(grid[-1, :])
    image = ax.imshow(rows_SxN, aspect="auto", cmap=ATTENTION_CMAP, vmin=0, vmax=1, interpolation="nearest")
    ax.plot(peaks, range(len(peaks)), "c.", markersize=6, label="peak frame") if len(peaks) else None
    for row, span in enumerate(spans):
        if span is not None:
            start, end = span
            ax.add_patch(Rectangle((start - 0.5, row - 0.5), end - start, 1, fill=False, edgecolor="white", lw=1.2))
    ax.set_yticks(range(s), tokens)
    ax.set_ylabel("predicted token")
    _percent_axis(ax, n)
    fig.colorbar(image, ax=ax, label="cross-attention (min-max per row)")
    fig.suptitle(title)
    return fig


def self_minus_cross_sample(diff_S, tokens: Sequence[str], title: str) -> Figure:
    """Figure 2b: self- minus cross-attention block output per decoding step of one translation."""
    diff_S = np.asarray(diff_S)
    fig = Figure(figsize=(4.4, 1.4 + 0.4 * len(diff_S)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(diff_S[:, None], aspect="auto", cmap=DIFFERENCE_CMAP, vmin=-DIFFERENCE_LIMIT,
                      vmax=DIFFERENCE_LIMIT)
    for i, value in enumerate(diff_S):
        ax.text(0, i, f"{value:+.3f}", ha="center", va="center", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks(range(len(tokens)), tokens)
    ax.set_ylabel("predicted token")
    fig.colorbar(image, ax=ax, label="self - cross")
    ax.set_title(title, fontsize=10)
    return fig


def _groups_present(counts_G, groups: Sequence[int]) -> list[int]:
    return [g for g in groups if g < len(counts_G) and counts_G[g] > 0]


def _panels_by_length(counts_G, groups: Sequence[int], title: str, unit: str, label: str, draw) -> Figure:
    """One panel per sentence length present; `draw(ax, g)` fills it and returns its image."""
    shown = _groups_present(counts_G, groups)
    fig = Figure(figsize=(3.2 * max(len(shown), 1) + 1, 3.5), layout="constrained")
    axes = fig.subplots(1, max(len(shown), 1), squeeze=False)[0]
    images = [draw(ax, g) for ax, g in zip(axes, shown)]
    for ax, g in zip(axes, shown):
        ax.set_title(f"{g - 1} {unit} ({int(counts_G[g])} samples)", fontsize=10)
    if images:
        fig.colorbar(images[-1], ax=list(axes), label=label)
    else:
        axes[0].text(0.5, 0.5, "no sample of these lengths", ha="center", transform=axes[0].transAxes)
    fig.suptitle(title)
    return fig


def cross_attention_by_length(mean_GxSxP, counts_G, groups: Sequence[int], title: str, unit: str = "glosses") -> Figure:
    """Figures 3a/3b (7a/7b): mean cross-attention rows per number of decoding calls g (= units + 1)."""
    mean_GxSxP = np.asarray(mean_GxSxP)

    def draw(ax, g):
        ax.set_yticks(range(g), [str(i + 1) for i in range(g - 1)] + ["<eos>"])
        ax.set_ylabel("decoding step")
        _percent_axis(ax, mean_GxSxP.shape[-1])
        return ax.imshow(mean_GxSxP[g, :g], aspect="auto", cmap=ATTENTION_CMAP, vmin=0, vmax=1, interpolation="nearest")

    return _panels_by_length(counts_G, groups, title, unit, "mean cross-attention (min-max per row)", draw)


def by_length_matrix(mean_GxS, counts_G, groups: Sequence[int], title: str, label: str,
                     cmap: str = DIFFERENCE_CMAP, limits: tuple[float, float] = (-DIFFERENCE_LIMIT, DIFFERENCE_LIMIT),
                     unit: str = "glosses") -> Figure:
    """Figure 4 (7c) and its clean variant: a value per decoding step (rows) and sentence length
    (columns), blank where a length has no such step or no sample."""
    shown = _groups_present(counts_G, groups)
    steps = max(shown, default=1)
    matrix = np.full((steps, max(len(shown), 1)), np.nan)
    for j, g in enumerate(shown):
        matrix[:g, j] = np.asarray(mean_GxS)[g, :g]
    fig = Figure(figsize=(max(4.8, 2.4 + 0.55 * len(shown)), 2.0 + 0.3 * steps), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, aspect="auto", cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
    ax.set_xticks(range(len(shown)), [f"{g - 1}\n(n={int(counts_G[g])})" for g in shown], fontsize=8)
    ax.set_yticks(range(steps), [str(i + 1) for i in range(steps)])
    ax.set_xlabel(f"{unit} in the sentence")
    ax.set_ylabel("decoding step")
    fig.colorbar(image, ax=ax, label=label)
    ax.set_title(title, fontsize=10)
    return fig


def encoder_by_length(mean_GxTxP, counts_G, groups: Sequence[int], title: str, unit: str = "glosses") -> Figure:
    """Figure 5 (7d): mean encoder self-attention, query frames x keys resampled to 100, one colour
    scale for all panels."""
    mean_GxTxP = np.asarray(mean_GxTxP)
    shown = _groups_present(counts_G, groups)
    top = np.nanmax(mean_GxTxP[shown]) if shown else 1.0

    def draw(ax, g):
        rows = mean_GxTxP[g][: np.max(np.flatnonzero(~np.isnan(mean_GxTxP[g]).all(1)), initial=0) + 1]
        ax.set_ylabel("query frame")
        _percent_axis(ax, rows.shape[1])
        ax.set_xlabel("key: % of the video")
        return ax.imshow(rows, aspect="auto", cmap=ATTENTION_CMAP, vmin=0, vmax=top, interpolation="nearest")

    return _panels_by_length(counts_G, groups, title, unit, "mean encoder self-attention", draw)


def attention_examples(samples: Sequence[tuple[np.ndarray, Sequence[str], str]]) -> Figure:
    """Figure 6: per sample, the heatmap of its rows (left) and the same rows as lines (right)."""
    fig = Figure(figsize=(11, 2.8 * max(len(samples), 1)), layout="constrained")
    axes = fig.subplots(max(len(samples), 1), 2, squeeze=False)
    for (heat, lines), (rows_SxN, tokens, title) in zip(axes, samples):
        rows_SxN = np.asarray(rows_SxN)
        image = heat.imshow(rows_SxN, aspect="auto", cmap=ATTENTION_CMAP, vmin=0, vmax=1, interpolation="nearest")
        heat.set_yticks(range(len(tokens)), tokens)
        heat.set_ylabel("predicted token")
        heat.set_title(title, fontsize=10)
        _percent_axis(heat, rows_SxN.shape[1])
        fig.colorbar(image, ax=heat)
        for row, token in zip(rows_SxN, tokens):
            lines.plot(row, label=token)
        lines.set_xlim(0, rows_SxN.shape[1] - 1)
        lines.set_ylabel("normalised attention")
        lines.set_xlabel("real frame")
        lines.legend(fontsize=7, loc="upper right")
    return fig


def cross_attention_heads(rows_SxHxN, tokens: Sequence[str], title: str) -> Figure:
    """Clean variant of Figure 2a: each head's rows on its own (min-max per row)."""
    rows_SxHxN = np.asarray(rows_SxHxN)
    heads = rows_SxHxN.shape[1]
    cols = min(heads, 4)
    fig = Figure(figsize=(3.2 * cols, 0.6 + (0.3 * len(tokens) + 0.8) * -(-heads // cols)), layout="constrained")
    axes = fig.subplots(-(-heads // cols), cols, squeeze=False).ravel()
    for h, ax in enumerate(axes):
        if h >= heads:
            ax.set_axis_off()
            continue
        image = ax.imshow(rows_SxHxN[:, h], aspect="auto", cmap=ATTENTION_CMAP, vmin=0, vmax=1,
                          interpolation="nearest")
        ax.set_yticks(range(len(tokens)), tokens if h % cols == 0 else [""] * len(tokens), fontsize=7)
        _percent_axis(ax, rows_SxHxN.shape[-1])
        ax.set_title(f"head {h}", fontsize=9)
    fig.colorbar(image, ax=axes.tolist(), label="cross-attention (min-max per row)")
    fig.suptitle(title)
    return fig


def alignment_summary(diagonality_B, monotonicity_B, token_share_N, centroid_N, title: str) -> Figure:
    """Per-sample diagonality and monotonicity histograms, and every gloss's attention centroid
    against its place in the sentence (the diagonal is perfect proportional alignment)."""
    fig = Figure(figsize=(12, 3.4), layout="constrained")
    a, b, c = fig.subplots(1, 3)
    for ax, values, name in ((a, diagonality_B, "diagonality (Spearman)"), (b, monotonicity_B, "monotonicity")):
        values = np.asarray(values)
        values = values[~np.isnan(values)]
        ax.hist(values, bins=np.linspace(-1 if ax is a else 0, 1, 21), color="#4c72b0")
        ax.set_xlabel(name)
        ax.set_ylabel("samples")
        ax.set_title(f"mean {values.mean():.2f} over {len(values)} samples" if len(values) else "no sample", fontsize=9)
    c.scatter(token_share_N, centroid_N, s=6, alpha=0.4)
    c.plot([0, 1], [0, 1], "k--", lw=1)
    c.set_xlabel("gloss position: (s + 0.5) / n")
    c.set_ylabel("attention centroid: share of the video")
    c.set_xlim(0, 1)
    c.set_ylim(0, 1)
    fig.suptitle(title)
    return fig


def deletion_curves(fractions, drop_top_K, drop_random_K, drop_uniform: float, wer_top_K, wer_random_K,
                    wer_intact: float, wer_uniform: float, title: str) -> Figure:
    """Deletion curves: a gloss's log-probability drop and the WER as more frames are deleted."""
    percent = 100 * np.asarray(fractions)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(percent, drop_top_K, "o-", label="most attended frames")
    left.plot(percent, drop_random_K, "s--", label="random frames")
    left.axhline(drop_uniform, color="grey", ls=":", label="uniform cross-attention")
    left.set_xlabel("frames deleted (% of the real frames)")
    left.set_ylabel("drop in log p(gloss)")
    left.legend(fontsize=8)
    right.plot(percent, wer_top_K, "o-", label="most attended frames")
    right.plot(percent, wer_random_K, "s--", label="random frames")
    right.axhline(wer_intact, color="black", lw=1, label="nothing deleted")
    right.axhline(wer_uniform, color="grey", ls=":", label="uniform cross-attention")
    right.set_xlabel("frames deleted (% of the real frames)")
    right.set_ylabel("WER")
    right.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def lenses(scores: dict, title: str) -> Figure:
    """Attention beside attribution (analysis.json's `attribution`): where each lens puts a
    gloss's relevance against the chance levels, which body parts the gradients credit, and how
    much a gloss needs the frames each lens ranks highest."""
    names = list(scores["lenses"])
    fig = Figure(figsize=(14, 3.8), layout="constrained")
    signs, parts, deletion = fig.subplots(1, 3)
    x = np.arange(len(names))
    value = lambda lens, key: np.nan if scores["lenses"][lens][key] is None else scores["lenses"][lens][key]
    signs.bar(x - 0.2, [value(n, "own_sign") for n in names], 0.4, label="own sign")
    signs.bar(x + 0.2, [value(n, "other_sign") for n in names], 0.4, label="an equally long other sign")
    chance = scores["chance"]
    for key, style, label in (("own_sign_uniform_over_frames", ":", "uniform over all frames"),
                              ("own_sign_uniform_over_signing_frames", "--", "uniform over signing frames")):
        if chance[key] is not None:
            signs.axhline(chance[key], color="grey", ls=style, label=label)
    signs.set_xticks(x, [n.replace("_", "\n") for n in names], fontsize=8)
    signs.set_ylabel("share of a gloss's relevance")
    signs.legend(fontsize=7)
    credited = [n for n in names if scores["lenses"][n]["parts"]]
    bottom = np.zeros(len(credited))
    for part in ("body", "face", "left_hand", "right_hand"):
        share = np.array([scores["lenses"][n]["parts"][part] for n in credited])
        parts.bar(np.arange(len(credited)), share, 0.6, bottom=bottom, label=part.replace("_", " "))
        bottom += share
    parts.set_xticks(np.arange(len(credited)), [n.replace("_", "\n") for n in credited], fontsize=8)
    parts.set_ylabel("share of the attribution")
    parts.legend(fontsize=7)
    for lens, marker in zip(names, "osd^v"):
        curve = scores["lenses"][lens]["deletion"]
        percent = 100 * np.asarray(curve["fractions"])
        line, = deletion.plot(percent, curve["log_prob_drop_top_deleted"], marker + "-", label=f"{lens}: top deleted")
        deletion.plot(percent, curve["log_prob_drop_top_kept"], marker + "--", color=line.get_color(),
                      label=f"{lens}: only top kept")
    deletion.set_xlabel("frames ranked top (% of the real frames)")
    deletion.set_ylabel("drop in log p(gloss)")
    deletion.legend(fontsize=6)
    fig.suptitle(title)
    return fig
