"""The paper's conclusions (its §6) as measured checks, and their verdicts.

Each claim is a signed sum of analysis.json keys (`slt-jax analyze`), read per seed; its value
over seeds gets a 95% t-interval, and over the test samples a bootstrap interval that resamples
the samples every seed and config share. The verdict is read off the interval
(`analysis.intervals.verdict`). `reproduce` checks the main job's configs; `study` checks each of
its conditions.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Callable

import numpy as np

from slt_jax.analysis import intervals as iv
from slt_jax.pipelines.tables import known, mean_std


@dataclasses.dataclass(frozen=True)
class Claim:
    """One conclusion of the paper, the quantity that tests it, and when it counts as holding.

    The quantity is a signed sum of analysis.json keys, each read from a config's analyses
    (dotted keys walk into nested ones), seed by seed.
    """

    text: str
    quantity: str
    terms: tuple[tuple[int, str, str], ...]  # (sign, config, key)
    holds: Callable[[float], bool]  # true on one side of a threshold
    rule: str


def value_at(analysis: dict, key: str) -> float:
    """An analysis.json value by its dotted key (`by_length.short.diagonality`); NaN where missing."""
    for part in key.split("."):
        analysis = analysis.get(part) if isinstance(analysis, dict) else None
    return np.nan if analysis is None else float(analysis)


def _per_seed(claim: Claim, analyses: dict[str, list[dict]]) -> list[float]:
    """The quantity per seed (seed k of every config it reads; the fewest seeds set the count)."""
    columns = [[sign * value_at(a, key) for a in analyses.get(config, [])] for sign, config, key in claim.terms]
    return [float(sum(seed)) for seed in zip(*columns)]


def _pooled_bootstrap(claim: Claim, analyses: dict[str, list[dict]]) -> iv.Interval | None:
    """The seed mean's 95% interval over the test samples: one resample of the split's samples
    serves every seed and config (they are scored on the same samples), then the quantity is
    computed per seed and averaged as `_per_seed`'s values are. None without per-sample data, or
    where no seed has 2 samples in a term's population."""
    terms = []
    for sign, config, key in claim.terms:
        samples = [a.get("per_sample", {}).get(key) for a in analyses.get(config, [])]
        if not samples or None in samples or max(iv.population(s["count"]) for s in samples) < 2:
            return None
        terms.append((sign, np.array([s["sum"] for s in samples]), np.array([s["count"] for s in samples])))
    if len({sums.shape[1] for _, sums, _ in terms}) > 1:  # configs scored on different splits
        return None
    seeds, weights_RxN = min(len(sums) for _, sums, _ in terms), iv.resample_weights(terms[0][1].shape[1])
    per_seed_KxR = sum(sign * iv.resampled_means(sums[:seeds], counts[:seeds], weights_RxN) for sign, sums, counts in terms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without a seed's population: NaN
        return iv.percentile_interval(np.nanmean(per_seed_KxR, axis=0))


CLAIMS = (
    Claim("The model attends to clusters of consecutive frames rather than to single frames.",
          "gloss16: share of a step's cross-attention in its best window of 10% of the frames",
          ((1, "gloss16", "window_mass"),), lambda v: v >= 0.3,
          ">= 0.3 (a uniform row puts 0.1 there; a single-frame spike puts its peak there, and "
          "n_peaks in analysis.json tells the two apart)"),
    Claim("Cross-attention aligns diagonally with the predicted glosses.",
          "gloss16: Spearman correlation of gloss index and attention centroid (correct samples, >= 2 glosses)",
          ((1, "gloss16", "diagonality"),), lambda v: v >= 0.5, ">= 0.5"),
    Claim("Over a sentence the model shifts from the frames to the previous glosses.",
          "gloss16: self-minus-cross at later steps minus at the first step (paper's signed mean)",
          ((1, "gloss16", "self_minus_cross_later"), (-1, "gloss16", "self_minus_cross_first")),
          lambda v: v > 0, "> 0"),
    Claim("For longer sentences the model relies more on glosses and the alignment fades.",
          "gloss16: diagonality of sentences of 1-5 glosses minus that of 6-10 glosses",
          ((1, "gloss16", "by_length.short.diagonality"), (-1, "gloss16", "by_length.long.diagonality")),
          lambda v: v > 0, "> 0"),
    Claim("Encoder self-attention shows sign segmentation at d=16 but not at larger sizes.",
          "encoder attention kept inside the attending frame's sign, gloss16 minus gloss64",
          ((1, "gloss16", "encoder_within_sign"), (-1, "gloss64", "encoder_within_sign")),
          lambda v: v > 0, "> 0"),
    Claim("A text model still attends to clusters, but they do not align diagonally with the words.",
          "diagonality of gloss16 minus that of text16 (text16's window mass in the report)",
          ((1, "gloss16", "diagonality"), (-1, "text16", "diagonality")),
          lambda v: v > 0.2, "> 0.2"),
)


def check_claims(analyses: dict[str, list[dict]]) -> list[dict]:
    """Each claim's value over seeds (mean, std, 95% t-interval), its 95% bootstrap interval over
    the test samples, and its verdict: "holds" or "fails" when the whole interval lies on one
    side of the rule's threshold, "inconclusive" when it crosses it, "not measured" when a config
    or a key is missing (e.g. no gloss spans). The seeds' interval decides; with one seed, the
    test samples' ("basis" says which)."""
    checks = []
    for claim in CLAIMS:
        values = known(_per_seed(claim, analyses))
        check = {"claim": claim.text, "quantity": claim.quantity, "rule": claim.rule, "seeds": len(values),
                 "mean": None, "std": None, "seed_interval": None, "bootstrap_interval": None,
                 "verdict": "not measured", "basis": None}
        if values:
            check["mean"], check["std"] = mean_std(values)
            check["seed_interval"], check["bootstrap_interval"] = iv.seed_interval(values), _pooled_bootstrap(claim, analyses)
            check["basis"] = "seeds" if check["seed_interval"] else "test samples" if check["bootstrap_interval"] else None
            check["verdict"] = iv.verdict(check["seed_interval"] or check["bootstrap_interval"], claim.holds)
        checks.append(check)
    return checks


def verdict_text(check: dict) -> str:
    """The verdict, and on what it rests when that is not the seeds."""
    basis = {"test samples": " (1 seed: test samples)", None: " (no interval)"}.get(check.get("basis"), "")
    return check["verdict"] + (basis if check["mean"] is not None else "")
