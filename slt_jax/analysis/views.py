"""From a record to the paper's pictures: one sample's view, per-length averages, figure sets.

Shared by `analyze` (a whole split) and the notebook (one batch), so both draw the same thing:

    record = extract_attention(run.params, batch)
    view = sample_view(record, pick_sample(record), run.vocab, run.config.data, examples)
    sample_figures(view)                                    # Figures 2a, 2b, per-head rows
    average_figures(length_means(per_sample(record)))       # Figures 3a, 3b, 4, 5
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from slt_jax import data
from slt_jax.analysis import figures, paper
from slt_jax.analysis.record import AttentionRecord
from slt_jax.config import PAD

GROUPS_SHORT, GROUPS_LONG = range(2, 7), range(7, 12)  # decoding calls for 1-5 and 6-10 glosses
_group_mean = jax.jit(paper.group_mean, static_argnames="n_groups")


def pick_sample(record: AttentionRecord, n_glosses: int = 3) -> int:
    """The row of a correct translation with about `n_glosses` glosses (the paper's Figure 2
    shows three), else the first real row."""
    correct = np.asarray(record.correct_B)
    if not correct.any():
        return int(np.argmax(np.asarray(record.sample_mask_B)))
    distance = np.abs(np.asarray(record.length_B) - 1 - n_glosses)
    return int(np.argmin(np.where(correct, distance, np.iinfo(np.int32).max)))


@jax.jit
def _row(record: AttentionRecord, row) -> dict:
    """One row's arrays for `sample_view` in one compiled call (eager indexing and maths would
    compile op by op, again for every sentence length)."""
    cross_SxHxT, mask_T = record.cross_pattern_BxSxHxT[row], record.frame_mask_BxT[row]
    return {
        "rows": paper.cross_attention_frames(cross_SxHxT, mask_T),
        "heads": paper.cross_attention_frames_per_head(cross_SxHxT, mask_T),
        "diff": paper.self_minus_cross(record.attn_out_BxSxQxD[row], record.cross_attn_out_BxSxQxD[row]),
        "mask": mask_T, "index": record.index_B[row], "length": record.length_B[row], "correct": record.correct_B[row],
        "tokens": record.tokens_BxS[row], "target": record.target_BxS[row], "spans": record.gloss_spans_BxSx2[row],
        "frames": record.frames_BxTxF[row],
    }


def sample_view(record: AttentionRecord, row: int, vocab: data.Vocab, data_config: data.DataConfig,
                examples: Sequence[data.Example] = ()) -> dict:
    """What the single-sample figures draw for one row of a record, at its real frames.

    `examples` (those the batch was made from) supply the sample's id and reference text;
    without them they are the row number and the decoded reference tokens.
    """
    a = jax.device_get(_row(record, int(row)))
    example = examples[int(a["index"])] if examples else None
    real = np.flatnonzero(a["mask"])
    n_calls = int(a["length"])
    correct = bool(a["correct"])
    rows = a["rows"][:n_calls, real]
    peaks = real[np.argmax(rows, axis=1)][: n_calls - 1]  # each gloss's most attended sampled frame
    spans = a["spans"][: n_calls - 1]
    return {
        "id": example.id if example else f"row {row}",
        "reference": example.reference if example else vocab.decode(a["target"]),
        "hypothesis": vocab.decode(a["tokens"]),
        "correct": correct,
        "tokens": [vocab.tokens[t] for t in a["tokens"][:n_calls]],
        "rows": rows,
        "heads": a["heads"][:n_calls][..., real],
        "diff": a["diff"][:n_calls],
        "peaks": np.searchsorted(real, peaks),
        "poses": [figures.pose_points(a["frames"][p], data_config.groups, data_config.use_3d) for p in peaks],
        # Spans belong to the reference tokens: drawn only when the translation is the reference,
        # for the tokens with a sign (None: a word no gloss carries, or no spans).
        "spans": [tuple(np.searchsorted(real, s)) if s[0] >= 0 else None for s in spans] if correct else [],
    }


def sample_figures(view: dict) -> dict[str, Figure]:
    """Figure 2a (cross-attention per token, poses at the peaks), 2b (self - cross per step)
    and the per-head cross-attention of one `sample_view`."""
    label = f"{view['id']}: {view['hypothesis']}" + ("" if view["correct"] else f" (reference: {view['reference']})")
    return {
        "fig2a_cross_attention_sample": figures.cross_attention_sample(
            view["rows"], view["tokens"], f"Cross-attention per predicted token\n{label}", view["poses"],
            view["peaks"], view["spans"]),
        "fig2b_self_minus_cross_sample": figures.self_minus_cross_sample(
            view["diff"], view["tokens"], f"Self - cross per step\n{view['id']}"),
        "clean_cross_attention_heads_sample": figures.cross_attention_heads(
            view["heads"], view["tokens"], f"Cross-attention per head\n{label}"),
    }


def reduce_per_sample(record: AttentionRecord, share_record: AttentionRecord) -> dict:
    """`per_sample`'s reductions before the filler rows are dropped (jittable)."""
    mask = record.frame_mask_BxT
    return {
        "rows": jax.vmap(paper.cross_attention_rows)(record.cross_pattern_BxSxHxT, mask),
        "diff": jax.vmap(paper.self_minus_cross)(record.attn_out_BxSxQxD, record.cross_attn_out_BxSxQxD),
        "share": jax.vmap(paper.self_share)(share_record.attn_out_BxSxQxD, share_record.cross_attn_out_BxSxQxD),
        "encoder": jax.vmap(paper.encoder_attention)(record.encoder_pattern_BxHxTxT, mask),
        "length": record.length_B,
        "ref_length": jnp.sum(record.target_BxS != PAD, axis=1),
        "correct": record.correct_B,
    }


_per_sample = jax.jit(reduce_per_sample)


def per_sample(record: AttentionRecord, causal: AttentionRecord | None = None) -> dict[str, np.ndarray]:
    """The per-sample reductions the averages need, filler rows dropped: cross-attention rows
    resampled to 100 points, self - cross, self share (from `causal`, a causal-mode record of the
    same batch, when given; else from `record`), encoder attention, lengths, correctness."""
    reduced = jax.device_get(_per_sample(record, record if causal is None else causal))
    keep = np.asarray(record.sample_mask_B)
    return {k: np.asarray(v)[keep] for k, v in reduced.items()}


def length_means(m: dict[str, np.ndarray]) -> dict:
    """Means per number of decoding calls over the correct samples (the encoder's over every
    sample, grouped by its reference's length, as the authors do); `m` as `per_sample` returns
    it, or several of them concatenated (the encoder axis padded with NaN to one length)."""
    correct, length = m["correct"], m["length"]
    n_groups = m["rows"].shape[1] + 1
    steps = np.arange(m["rows"].shape[1])[None, :] < length[:, None]
    mean = lambda values, valid=None, include=correct, by=length: [
        np.asarray(x) for x in _group_mean(values, by, include, n_groups, valid)]
    rows, counts = mean(m["rows"], steps[..., None])
    encoder, encoder_counts = mean(m["encoder"], include=np.ones_like(correct), by=m["ref_length"])
    return {"rows": rows, "counts": counts, "diff": mean(m["diff"], steps)[0], "share": mean(m["share"], steps)[0],
            "encoder": encoder, "encoder_counts": encoder_counts}


def average_figures(means: dict, target: str = "gloss") -> dict[str, Figure]:
    """Figures 3a, 3b, 4, 5 (7a-7d for text) and the clean self share, from `length_means`."""
    text = target == "text"
    unit = "tokens" if text else "glosses"
    names = ("fig7a", "fig7b", "fig7c", "fig7d") if text else ("fig3a", "fig3b", "fig4", "fig5")
    counts, lengths = means["counts"], range(2, len(means["counts"]))
    return {
        f"{names[0]}_cross_attention_1-5": figures.cross_attention_by_length(
            means["rows"], counts, GROUPS_SHORT, f"Mean cross-attention, 1-5 {unit} (correct samples)", unit),
        f"{names[1]}_cross_attention_6-10": figures.cross_attention_by_length(
            means["rows"], counts, GROUPS_LONG, f"Mean cross-attention, 6-10 {unit} (correct samples)", unit),
        f"{names[2]}_self_minus_cross_by_length": figures.by_length_matrix(
            means["diff"], counts, lengths, "Mean self - cross (paper mode)", "self - cross block output", unit=unit),
        f"{names[3]}_encoder_self_attention": figures.encoder_by_length(
            means["encoder"], means["encoder_counts"], GROUPS_SHORT, "Mean encoder self-attention (all samples)", unit),
        "clean_self_share_by_length": figures.by_length_matrix(
            means["share"], counts, lengths, "Self share ||self|| / (||self|| + ||cross||), causal",
            "self share (0.5 = balanced)", limits=(0.0, 1.0), unit=unit),
    }
