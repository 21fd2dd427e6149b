"""`analyze`: a trained run on one split -> the paper's figures, the new scores and analysis.json.

Per batch it records three translations (`extract_attention`): greedy in the authors' `paper`
mode (the paper's figures and the alignment scores), greedy `causal` (the clean self/cross
share) and teacher-forced `causal` (alignment against every reference and the deletion
rankings), attributes the references to the frames (`attribution`) and intervenes on signs,
heads and encoder states, then reduces it all with the pure analyses; the figures draw those
reductions.

analysis.json (population: "correct" = greedy translation equal to the reference, as in the
paper; "all" = every sample of the split):
  n, n_correct, exact_match, wer          samples, correct ones, their share, greedy WER (all)
  groups                                  correct samples per number of glosses (tokens)
  diagonality                             mean Spearman(gloss index, attention centroid), correct
                                          samples with >= 2 glosses
  diagonal_mass                           mean guided-attention score (alignment.diagonal_mass)
  monotonicity                            mean share of forward centroid moves (>= 2 glosses)
  window_mass, n_peaks                    clustering: mass in the best 10% window, peaks >= 50%
  alignment_accuracy                      share of glosses whose peak frame lies in its span
  boundary_precision, _recall, _f1        sign boundaries read off attention vs the spans,
                                          within boundary_tolerance sampled frames
  boundary_f1_even, _random               the F1 of as many boundaries as annotated, evenly
                                          spaced / at random real frames (no attention needed)
  chance                                  what sign-blind attention scores on diagonality,
                                          monotonicity and window_mass (a one-frame spike scores
                                          window_mass 1: read it with n_peaks)
  self_minus_cross_first, _later          the paper's signed mean at the first step / later steps
  self_share_first, _later                ||self|| / (||self|| + ||cross||), causal, same steps
  teacher_forced                          the alignment keys above over all samples, references fed
  deletion                                fractions k; per k the mean drop in a gloss's
                                          log-probability when its top-k% attended frames are
                                          deleted (top) or as many random ones (random), their
                                          difference (gap); the WER with each sample's most
                                          attended / random frames deleted
  deletion_gap                            mean over k of deletion.gap (> 0: attention is faithful)
  uniform_cross_attention                 mean log-probability drop and WER with cross-attention
                                          replaced by a uniform average over the real frames
  by_length                               short (1-5 glosses) / long (6-10): n, diagonality and
                                          self_minus_cross_later over the correct samples
  diagonality_by_length                   per number of glosses (>= 2): n and diagonality, correct
                                          samples (a 2-gloss sample can only score -1 or 1)
  attribution                             attention beside the attributions, teacher-forced
                                          (analysis.compare): per lens own_sign, other_sign,
                                          alignment_accuracy, agreement_with_attention, body-part
                                          shares and deletion curves; chance; sign_deletion,
                                          head_knockout and activation_patching
  encoder_within_sign                     alignment.encoder_within_sign over all samples with spans
  per_sample, intervals                   for exact_match, diagonality, window_mass,
                                          self_minus_cross_*, encoder_within_sign and
                                          by_length.{short,long}.diagonality: per sample (split
                                          order) the sum and count behind the mean, and the
                                          mean's 95% bootstrap interval over the samples
                                          (analysis.intervals)
  sample                                  the sample of Figures 2a/2b
  epoch                                   the training epoch of the analysed parameters
The span-based keys (alignment_accuracy, boundary_*) are null without gloss_spans. For text targets
a word's span is its gloss's sign (`examples.target_spans`): words no gloss carries are left out,
and without a word alignment in the corpus (`text_alignment`) the span keys are null.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from slt_jax import data, features
from slt_jax.analysis import alignment as al
from slt_jax.analysis import compare
from slt_jax.analysis import faithfulness as fa
from slt_jax.analysis import figures, intervals, views
from slt_jax.analysis.record import AttentionRecord, extract_attention, pad_frames, pad_vocab, split_length
from slt_jax.config import EOS, PAD
from slt_jax.layout import write_json
from slt_jax.metrics import wer
from slt_jax.runs import load_run

ALIGNMENT_KEYS = ("diagonality", "diagonal_mass", "monotonicity", "window_mass", "n_peaks")
# What attention with no relation to the signs scores (the span-based chance levels depend on the
# samples: boundary_f1_even / _random beside each boundary_f1, attribution.chance).
CHANCE = {"diagonality": 0.0,  # centroids in random order
          "monotonicity": 0.5,  # a random centroid moves forward half the time (ties count forward)
          "window_mass": 0.1}  # a uniform row's mass in a window of 10% of the frames


def head_mean(record: AttentionRecord) -> jax.Array:
    return jnp.mean(record.cross_pattern_BxSxHxT, axis=2)


def _alignment_scores(attention_BxSxT, frame_mask_BxT, spans_BxSx2, n_B) -> dict[str, jax.Array]:
    v = lambda f: jax.vmap(f)(attention_BxSxT, frame_mask_BxT, n_B)
    window, peaks = jax.vmap(al.clustering)(attention_BxSxT, frame_mask_BxT, n_B)
    hits, known = jax.vmap(al.alignment_hits)(attention_BxSxT, frame_mask_BxT, spans_BxSx2, n_B)
    return {"diagonality": v(al.diagonality), "diagonal_mass": v(al.diagonal_mass),
            "monotonicity": v(al.monotonicity), "window_mass": window, "n_peaks": peaks, "hits": hits, "known": known}


@jax.jit
def _reduce(greedy: AttentionRecord, causal: AttentionRecord, forced: AttentionRecord) -> dict:
    """Per-sample reductions of one batch's paper-mode, causal and teacher-forced records in one
    compiled program: the averages' (`views.per_sample`), the alignment scores, and the
    head-averaged cross-attention the boundaries and the deletion tests read."""
    attention, mask = head_mean(greedy), greedy.frame_mask_BxT
    return {
        "averaged": views.reduce_per_sample(greedy, causal),
        "attention_greedy": attention, "attention_forced": head_mean(forced),
        "translation_scores": jnp.sum(jnp.where(greedy.step_mask_BxS[..., None], attention, 0.0), 1),
        "length": greedy.length_B, "correct": greedy.correct_B,
        "centroids": jax.vmap(al.centroids)(attention, mask),
        "encoder_within": jax.vmap(al.encoder_within_sign)(greedy.encoder_pattern_BxHxTxT, mask,
                                                           greedy.gloss_spans_BxSx2),
        "greedy": _alignment_scores(attention, mask, greedy.gloss_spans_BxSx2, greedy.length_B - 1),
        "forced": _alignment_scores(head_mean(forced), mask, forced.gloss_spans_BxSx2, forced.length_B - 1),
    }


def _boundaries(attention_BxSxT, record: AttentionRecord, tolerance: float, seed: int) -> np.ndarray:
    """Per sample (3, 3): the boundary counts of the attention, then of its baselines (evenly
    spaced, random: `alignment.boundary_baselines`)."""
    masks, spans, lengths = jax.device_get((record.frame_mask_BxT, record.gloss_spans_BxSx2, record.length_B))
    rng = np.random.default_rng(seed)
    return np.array([[al.boundary_counts(a, m, s, int(n) - 1, tolerance),
                      *al.boundary_baselines(m, s, int(n) - 1, rng, tolerance)]
                     for a, m, s, n in zip(attention_BxSxT, masks, spans, lengths)]).reshape(-1, 3, 3)


def _mean(values) -> float | None:
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def _alignment_summary(scores: dict, include: np.ndarray, boundaries: np.ndarray, has_spans: bool,
                       tolerance: float) -> dict:
    out = {k: _mean(scores[k][include]) for k in ALIGNMENT_KEYS}
    (matched, predicted, annotated), even, random = boundaries[include].sum(0) if include.any() else np.zeros((3, 3))
    known = scores["known"][include].sum()
    out["alignment_accuracy"] = float(scores["hits"][include].sum() / known) if has_spans and known else None
    out["boundary_precision"] = float(matched / predicted) if has_spans and predicted else None
    out["boundary_recall"] = float(matched / annotated) if has_spans and annotated else None
    out["boundary_f1"] = al.f1(matched, predicted, annotated) if has_spans and (predicted + annotated) else None
    out["boundary_f1_even"] = al.f1(*even) if has_spans and annotated else None
    out["boundary_f1_random"] = al.f1(*random) if has_spans and annotated else None
    out["boundary_tolerance"] = tolerance
    return out


def _gloss_mean(values_NxS, gloss_NxS) -> float:
    return float(np.sum(np.where(gloss_NxS, values_NxS, 0.0)) / max(gloss_NxS.sum(), 1))


def _batch_part(params, batch, frames: int, fractions, tolerance: float, seed: int, max_frames: int, parts_F):
    """Records one batch (padded, its real frames among the first `frames`) three ways and reduces
    it to per-sample arrays, filler rows dropped.

    Returns:
      (the per-sample arrays, the greedy paper-mode record, its lengths and correctness).
    """
    # Independent programs run from two threads: XLA compiles and runs them without the GIL and
    # on one core each, so on 2 cores they overlap. Greedy and teacher-forced causal records share
    # a program, so they run in turn (two threads compiling one program would compile it twice).
    with ThreadPoolExecutor(2) as pool:
        paper = pool.submit(extract_attention, params, batch, "paper")
        uniform = pool.submit(fa.uniform_cross_attention, params, batch)
        causal = extract_attention(params, batch, "causal")
        forced = extract_attention(params, batch, "causal", teacher_forced=True)
        greedy = paper.result()
        reduced = jax.device_get(_reduce(greedy, causal, forced))
        keep = batch["sample_mask"]
        gloss = (batch["target"] != PAD) & (batch["target"] != EOS)
        # Only what the summary reads: the real samples' glosses and translations. The glosses
        # (about 40 items a sample) run at the batch's own length, where the padding would cost
        # most; the translations (10 a sample) at the padded one: one compilation of greedy
        # decoding, not one per bucket, for less time than the extra frames cost (measured on
        # the 2-core VM).
        rewrites = pool.submit(fa.translation_deletion, params, batch, reduced["translation_scores"], fractions, seed,
                               keep)
        deletion = fa.gloss_deletion(params, batch, reduced["attention_forced"], fractions, seed,
                                     gloss & keep[:, None], frames)
        lenses = compare.batch_scores(params, batch, frames, reduced["attention_forced"], forced.cross_pattern_BxSxHxT,
                                      parts_F, seed)
        rewrites, uniform = rewrites.result(), jax.device_get(uniform.result())
    averaged = {k: v[keep] for k, v in reduced["averaged"].items()}  # as views.per_sample
    k_first = lambda x_KxBx: np.moveaxis(x_KxBx, 0, 1)[keep]
    frames_pad = ((0, 0), (0, max_frames - batch["frames"].shape[1]), (0, 0))  # to stack all buckets
    part = {
        **averaged, "encoder": np.pad(averaged["encoder"], frames_pad, constant_values=np.nan),
        "index": batch["index"][keep], "tokens": np.asarray(greedy.tokens_BxS)[keep],
        "centroids": reduced["centroids"][keep], "encoder_within": reduced["encoder_within"][keep],
        "greedy": {k: v[keep] for k, v in reduced["greedy"].items()},
        "forced": {k: v[keep] for k, v in reduced["forced"].items()},
        "boundaries_greedy": _boundaries(reduced["attention_greedy"], greedy, tolerance, seed)[keep],
        "boundaries_forced": _boundaries(reduced["attention_forced"], forced, tolerance, seed)[keep],
        "gloss": gloss[keep],
        "intact": deletion["intact"][keep], "uniform": uniform["log_probs"][keep],
        "top": k_first(deletion["top"]), "random": k_first(deletion["random"]),
        "rewrite_top": k_first(rewrites["top"]), "rewrite_random": k_first(rewrites["random"]),
        "rewrite_uniform": uniform["tokens"][keep], "attribution": lenses,
    }
    return part, greedy, reduced["length"], reduced["correct"]


def analyze(workdir, split: str = "test", out=None, sample_id: str | None = None, data_dir=None,
            fractions=fa.FRACTIONS, tolerance: float = 2.0, seed: int = 0, progress: bool = True,
            draw_in: Executor | None = None) -> dict | Future:
    """Runs every analysis on a split, writes the figures and analysis.json, returns the scalars.

    Args:
      workdir: a training workdir (`slt-jax train`).
      split: train, val or test.
      out: output folder (default: <workdir>/analysis_<split>).
      sample_id: the sample of Figures 2a/2b (default: a correctly translated one, preferably
        of 3 glosses like the paper's).
      data_dir: the corpus (default: the one the run was trained on).
      fractions: shares of real frames deleted by the faithfulness tests.
      tolerance: boundary F1 tolerance, in sampled frames.
      seed: for the random deletions.
      progress: show a progress bar over batches.
      draw_in: an executor with one worker (matplotlib is not thread-safe) to draw the figures
        and write analysis.json in; analyze then returns a Future of the scalars at once, and the
        caller's next analysis computes while these figures are drawn (reproduce does this).
    """
    run = load_run(workdir)
    config = run.config
    data_dir = data_dir or run.data_dir
    out = Path(out or Path(workdir) / f"analysis_{split}")
    out.mkdir(parents=True, exist_ok=True)
    examples = data.load_examples(data_dir, split, config.data, run.vocab, progress)
    if sample_id is not None and sample_id not in {ex.id for ex in examples}:
        raise ValueError(f"sample {sample_id!r} is not in the {split} split of {data_dir}")
    batch_size = config.train.batch_size
    longest = split_length(examples, config)  # one shape for the whole split (record.pad_frames)
    params = pad_vocab(run.params)
    parts, shown, shown_lengths = [], {}, set()
    batches = data.make_batches(examples, config.data, batch_size)
    for i, batch in enumerate(tqdm(batches, total=data.n_batches(examples, config.data, batch_size),
                                   desc=f"analyze {split}", unit="batch", disable=not progress)):
        own = batch["frames"].shape[1]
        part, greedy, lengths, correct = _batch_part(params, pad_frames(batch, max(longest, own)), own, fractions,
                                                     tolerance, seed + i, config.data.max_frames,
                                                     features.feature_parts(config.data))
        parts.append(part)
        for row in np.flatnonzero(batch["sample_mask"]):
            example = examples[batch["index"][row]]
            n_glosses = int(lengths[row]) - 1
            # The requested sample, else the first correct one of each length (and a fallback).
            if example.id == sample_id or not shown or (correct[row] and n_glosses not in shown_lengths):
                shown[example.id] = views.sample_view(greedy, row, run.vocab, config.data, examples)
                if correct[row]:
                    shown_lengths.add(n_glosses)

    merged = jax.tree.map(lambda *xs: np.concatenate(xs), *parts)
    results = _summarise(merged, examples, run.vocab, fractions, tolerance, run.length_bound)
    results["attribution"] = compare.summarise(merged["attribution"])
    main = shown[sample_id] if sample_id else min(
        shown.values(), key=lambda v: (not v["correct"], abs(len(v["tokens"]) - 4)))  # 3 glosses + <eos>
    results["sample"] = {k: main[k] for k in ("id", "reference", "hypothesis", "correct")}
    results["figures"] = None  # drawn last, in this place among the keys
    results |= {"run": str(workdir), "epoch": run.epoch, "split": split, "config": config.name,
                "target": config.data.target, "mode": "paper"}

    def finish() -> dict:
        results["figures"] = _draw(merged, main, [v for v in shown.values() if v is not main][:3], results, out,
                                   config, fractions)
        write_json(out / "analysis.json", results)
        return results

    return draw_in.submit(finish) if draw_in else finish()


def _by_length(m: dict, later, calls) -> dict:
    """Correct samples made in `calls` decoding calls: their number, diagonality and later-step self - cross."""
    in_group = m["correct"] & np.isin(m["length"], list(calls))
    return {"n": int(in_group.sum()), "diagonality": _mean(m["greedy"]["diagonality"][in_group]),
            "self_minus_cross_later": _mean(m["diff"][later & in_group[:, None]])}


def _summarise(m: dict, examples, vocab: data.Vocab, fractions, tolerance: float, bound: int) -> dict:
    references = [examples[i].reference for i in m["index"]]
    hypotheses = lambda tokens: [vocab.decode(t[:bound]) for t in tokens]  # as evaluate decodes (Run.length_bound)
    correct, glosses = m["correct"], m["gloss"]
    has_spans = any(ex.gloss_spans is not None for ex in examples)
    steps = np.arange(m["diff"].shape[1])[None, :]
    later = correct[:, None] & (steps >= 1) & (steps < m["length"][:, None])
    drop = lambda deleted_NxKxS: [_gloss_mean(m["intact"] - deleted_NxKxS[:, k], glosses) for k in range(len(fractions))]
    top, random = drop(m["top"]), drop(m["random"])
    gaps = [t - r for t, r in zip(top, random)]
    counts = np.bincount(m["length"][correct] - 1, minlength=1)
    return {
        "n": len(correct), "n_correct": int(correct.sum()), "exact_match": float(correct.mean()),
        "wer": wer(references, hypotheses(m["tokens"])),
        "groups": {str(g): int(c) for g, c in enumerate(counts) if c},
        **_alignment_summary(m["greedy"], correct, m["boundaries_greedy"], has_spans, tolerance),
        "self_minus_cross_first": _mean(m["diff"][correct, 0]),
        "self_minus_cross_later": _mean(m["diff"][later]),
        "by_length": {"short": _by_length(m, later, views.GROUPS_SHORT), "long": _by_length(m, later, views.GROUPS_LONG)},
        "diagonality_by_length": {str(calls - 1): {k: _by_length(m, later, [calls])[k] for k in ("n", "diagonality")}
                                  for calls in sorted(set(m["length"][correct].tolist())) if calls >= 3},
        "chance": CHANCE,
        "encoder_within_sign": _mean(m["encoder_within"]),
        "self_share_first": _mean(m["share"][correct, 0]),
        "self_share_later": _mean(m["share"][later]),
        "teacher_forced": _alignment_summary(m["forced"], np.ones_like(correct), m["boundaries_forced"], has_spans,
                                             tolerance),
        "deletion": {
            "fractions": list(fractions), "log_prob_drop_top": top, "log_prob_drop_random": random, "gap": gaps,
            "wer_top": [wer(references, hypotheses(m["rewrite_top"][:, k])) for k in range(len(fractions))],
            "wer_random": [wer(references, hypotheses(m["rewrite_random"][:, k])) for k in range(len(fractions))],
        },
        "deletion_gap": float(np.mean(gaps)),
        "uniform_cross_attention": {"log_prob_drop": _gloss_mean(m["intact"] - m["uniform"], glosses),
                                    "wer": wer(references, hypotheses(m["rewrite_uniform"]))},
        **intervals.sample_intervals(m, later, views.GROUPS_SHORT, views.GROUPS_LONG),
    }


def _save(fig, path: Path) -> str:
    fig.savefig(path, dpi=110)
    return path.name


def _draw(m: dict, main: dict, others: list[dict], results: dict, out: Path, config, fractions) -> list[str]:
    """Writes every figure; returns their file names."""
    unit = "tokens" if config.data.target == "text" else "glosses"
    correct = m["correct"]
    drawn = {**views.sample_figures(main), **views.average_figures(views.length_means(m), config.data.target)}
    drawn["fig6_attention_examples"] = figures.attention_examples(
        [(v["rows"], v["tokens"], f"{v['id']}: {v['hypothesis']}") for v in [main] + others])
    in_paper_order = sorted(drawn, key=lambda name: (name.startswith("clean"), name))  # then the new ones
    written = [_save(drawn[name], out / f"{name}.png") for name in in_paper_order]
    n = np.maximum(m["length"] - 1, 1)[:, None]
    gloss_steps = correct[:, None] & (np.arange(m["centroids"].shape[1])[None, :] < m["length"][:, None] - 1)
    token_share = np.broadcast_to((np.arange(m["centroids"].shape[1])[None, :] + 0.5) / n, gloss_steps.shape)
    written.append(_save(figures.alignment_summary(
        m["greedy"]["diagonality"][correct], m["greedy"]["monotonicity"][correct], token_share[gloss_steps],
        m["centroids"][gloss_steps], f"Alignment of cross-attention (correct samples, {unit} >= 2 for the scores)"),
        out / "alignment.png"))
    deletion, uniform = results["deletion"], results["uniform_cross_attention"]
    written.append(_save(figures.deletion_curves(
        fractions, deletion["log_prob_drop_top"], deletion["log_prob_drop_random"], uniform["log_prob_drop"],
        deletion["wer_top"], deletion["wer_random"], results["wer"], uniform["wer"],
        f"Deleting frames (gap top - random: {results['deletion_gap']:+.3f} nats)"), out / "deletion.png"))
    written.append(_save(figures.lenses(results["attribution"], "Attention beside attribution (references fed)"),
                         out / "attribution.png"))
    return written
