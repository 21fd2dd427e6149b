import jiwer
import pytest

from slt_jax import metrics


def test_wer_is_corpus_level_edits_over_reference_words():
    refs, hyps = ["A B C D", "E F"], ["A X C", "E F G"]
    # 1 substitution + 1 deletion, then 1 insertion: 3 edits over 6 reference words.
    assert metrics.wer(refs, hyps) == pytest.approx(0.5)
    assert metrics.wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps))
    assert metrics.wer(["A B"], [""]) == 1.0


def test_exact_match_compares_token_sequences():
    assert metrics.exact_match(["A B", "C", "D E"], ["A  B", "C D", "D E"]) == pytest.approx(2 / 3)


def test_bleu_and_chrf_are_perfect_on_identity_and_zero_on_disjoint():
    refs = ["the cat sat on the mat", "a dog ran far away"]
    scores = metrics.translation_metrics(refs, refs)
    assert all(scores[f"bleu{n}"] == pytest.approx(100.0) for n in range(1, 5))
    assert scores["chrf"] == pytest.approx(100.0) and scores["wer"] == 0.0 and scores["n"] == 2
    assert metrics.bleu(refs, ["x y z w v u", "q r s t p"], 1) == 0.0
    # BLEU-1 of one hypothesis with 3 of 4 words right and no brevity penalty: 75.
    assert metrics.bleu(["a b c d"], ["a b c x"], 1) == pytest.approx(75.0)
