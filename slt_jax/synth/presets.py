"""Corpus presets: GSL's shape at full size, a small one for quick training, a tiny one for tests."""

from __future__ import annotations

import dataclasses

import numpy as np

# GSL's glosses per sentence over all 10,295 annotated samples (docs/reference.md §3).
GSL_GLOSSES_PER_SENTENCE = {1: 1848, 2: 1312, 3: 1480, 4: 1711, 5: 1502, 6: 1155, 7: 590, 8: 281,
                            9: 175, 10: 171, 11: 35, 16: 35}


@dataclasses.dataclass(frozen=True)
class Preset:
    """The size and shape of a corpus.

    Every signer performs `sentences_per_signer` of the sentences `repetitions` times. The split
    is GSL's signer-independent one: the test signer's first `val_repetitions` repetitions are
    the validation set, its later ones the test set, and everyone else's are the training set.
    """

    name: str
    glosses: int
    sentences: int
    signers: int
    repetitions: int
    sentences_per_signer: int
    test_signer: int  # index of the held-out signer
    val_repetitions: int
    max_glosses: int  # longest sentence, in glosses
    tempo: float = 1.0  # multiplies every duration
    left_handed: int = 1  # how many signers sign with the left hand
    # Every sample signs its own sentence (language.make_novel_sentences) instead of repeating
    # `sentences` fixed ones: no held-out sentence can be memorised. `sentences` then counts the
    # slots each repetition has.
    novel_sentences: bool = False

    @property
    def samples(self) -> int:
        return self.signers * self.repetitions * self.sentences_per_signer


PRESETS = {
    p.name: p for p in (
        Preset("gsl", glosses=310, sentences=331, signers=7, repetitions=5, sentences_per_signer=294,
               test_signer=2, val_repetitions=2, max_glosses=16),
        Preset("small", glosses=36, sentences=36, signers=7, repetitions=5, sentences_per_signer=30,
               test_signer=2, val_repetitions=2, max_glosses=16),
        # `small` with a new sentence in every sample: the positive control of docs/findings.md.
        Preset("novel", glosses=36, sentences=36, signers=7, repetitions=5, sentences_per_signer=30,
               test_signer=2, val_repetitions=2, max_glosses=16, novel_sentences=True),
        Preset("tiny", glosses=10, sentences=8, signers=3, repetitions=3, sentences_per_signer=8,
               test_signer=2, val_repetitions=1, max_glosses=4, tempo=0.5, left_handed=0),
    )
}


def sentence_lengths(n: int, max_glosses: int) -> list[int]:
    """n sentence lengths in GSL's proportions (largest remainder), at most max_glosses long."""
    hist = {k: v for k, v in GSL_GLOSSES_PER_SENTENCE.items() if k <= max_glosses}
    share = np.array(list(hist.values()), float) * n / sum(hist.values())
    counts = np.floor(share).astype(int)
    counts[np.argsort(counts - share)[: n - counts.sum()]] += 1
    return [k for k, c in zip(hist, counts) for _ in range(c)]
