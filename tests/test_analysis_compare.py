"""The lens scores: own-sign share against its fair baselines."""

import numpy as np

from slt_jax.analysis import compare

MASK = np.array([True] * 20 + [False] * 4)
SPANS = np.array([[2, 6], [6, 14], [16, 18], [-1, -1]])  # frames 0-1, 14-15 and 18-19 are not signing


def test_a_uniform_row_scores_its_chance_on_own_and_other_signs():
    uniform = np.where(MASK, 1 / 20, 0.0)
    own, other, frames, signing = np.asarray(compare.sign_shares(uniform, MASK, SPANS, 0))
    np.testing.assert_allclose([own, other, frames, signing], [4 / 20, 4 / 20, 4 / 20, 4 / 14], rtol=1e-6)


def test_a_row_on_its_own_sign_scores_one_and_others_zero():
    row = np.zeros(24)
    row[6:14] = 1 / 8
    own, other, _, _ = np.asarray(compare.sign_shares(row, MASK, SPANS, 1))
    assert own == 1.0 and other == 0.0
    own, other, _, _ = np.asarray(compare.sign_shares(row, MASK, SPANS, 2))  # seen from sign 2: 2/8 of sign 1
    assert own == 0.0 and other == np.float32(0.5 * (0 + 1.0 * 2 / 8))


def test_signs_without_a_span_are_undefined():
    row = np.where(MASK, 1 / 20, 0.0)
    assert np.isnan(np.asarray(compare.sign_shares(row, MASK, SPANS, 3))).all()
    alone = np.array([[2, 6], [-1, -1], [-1, -1], [-1, -1]])
    own, other, _, _ = np.asarray(compare.sign_shares(row, MASK, alone, 0))
    assert own == np.float32(0.2) and np.isnan(other)
