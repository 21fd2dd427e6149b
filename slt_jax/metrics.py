"""Translation metrics over a corpus of (reference, hypothesis) sentences.

WER is corpus-level, as in sign language recognition papers: the word-level edit operations
(substitutions + deletions + insertions) summed over all sentences, divided by the number of
reference words (jiwer's alignment). Exact match is the share of hypotheses equal to their
reference token for token (the paper's "correctly translated" samples). BLEU-1..4 and chrF are
sacrebleu's corpus scores on a 0-100 scale, with tokenisation off (sentences are already
whitespace-tokenised glosses or words).
"""

from __future__ import annotations

from typing import Sequence

import jiwer
from sacrebleu.metrics import BLEU, CHRF


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    return float(jiwer.wer(list(references), list(hypotheses)))


def exact_match(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    return sum(r.split() == h.split() for r, h in zip(references, hypotheses, strict=True)) / len(references)


def bleu(references: Sequence[str], hypotheses: Sequence[str], max_order: int) -> float:
    scorer = BLEU(max_ngram_order=max_order, tokenize="none")
    return float(scorer.corpus_score(list(hypotheses), [list(references)]).score)


def chrf(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    return float(CHRF().corpus_score(list(hypotheses), [list(references)]).score)


def translation_metrics(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Every metric above, keyed wer, exact_match, bleu1..bleu4, chrf, plus n."""
    scores = {"n": len(references), "wer": wer(references, hypotheses),
              "exact_match": exact_match(references, hypotheses)}
    scores.update({f"bleu{n}": bleu(references, hypotheses, n) for n in range(1, 5)})
    scores["chrf"] = chrf(references, hypotheses)
    return scores
