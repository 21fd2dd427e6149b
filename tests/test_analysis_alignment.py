"""Alignment scores on constructed attention whose answers are known."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_jax.analysis import alignment as al


def one_hot_rows(frames, n_frames):
    rows = np.zeros((len(frames), n_frames), np.float32)
    rows[np.arange(len(frames)), frames] = 1.0
    return rows


DIAGONAL = one_hot_rows([0, 2, 4, 5], 6)  # three glosses then <eos>
MASK6 = np.ones(6, bool)


def test_centroids_are_shares_of_the_real_video():
    mask = np.array([True, False, True, True, True])  # frame 1 is padding: ranks 0, -, 1, 2, 3
    rows = one_hot_rows([2, 4], 5)
    np.testing.assert_allclose(al.centroids(rows, mask), [1.5 / 4, 3.5 / 4])
    np.testing.assert_array_equal(al.frame_ranks(mask), [0, -1, 1, 2, 3])


def test_diagonal_attention_scores_one_and_reversed_scores_minus_one():
    assert al.diagonality(DIAGONAL, MASK6, 3) == pytest.approx(1.0)
    assert al.monotonicity(DIAGONAL, MASK6, 3) == pytest.approx(1.0)
    reverse = one_hot_rows([4, 2, 0, 5], 6)
    assert al.diagonality(reverse, MASK6, 3) == pytest.approx(-1.0)
    assert al.monotonicity(reverse, MASK6, 3) == pytest.approx(0.0)
    zigzag = one_hot_rows([0, 4, 2, 5], 6)  # forward, back: ranks (0, 2, 1) against (0, 1, 2)
    assert al.diagonality(zigzag, MASK6, 3) == pytest.approx(0.5)
    assert al.monotonicity(zigzag, MASK6, 3) == pytest.approx(0.5)
    assert np.isnan(al.diagonality(DIAGONAL, MASK6, 1)) and np.isnan(al.monotonicity(DIAGONAL, MASK6, 1))


def test_spearman_ignores_invalid_entries_and_is_nan_for_constants():
    valid = np.array([True, True, True, False])
    assert al.spearman(np.array([1.0, 2, 3, -5]), np.array([10.0, 20, 30, 99]), valid) == pytest.approx(1.0)
    assert np.isnan(al.spearman(np.array([1.0, 2, 3, 4]), np.ones(4), valid))
    ties = al.spearman(np.array([1.0, 2, 3]), np.array([5.0, 5, 7]), np.ones(3, bool))
    assert ties == pytest.approx(np.sqrt(3) / 2)  # ranks (0.5, 0.5, 2) against (0, 1, 2)


def test_diagonal_mass_is_one_on_the_diagonal_and_known_for_uniform_attention():
    mask = np.ones(2, bool)  # two frames at shares 0.25, 0.75; two glosses at 0.25, 0.75
    assert al.diagonal_mass(one_hot_rows([0, 1], 2), mask, 2) == pytest.approx(1.0)
    uniform = np.full((2, 2), 0.5)
    assert al.diagonal_mass(uniform, mask, 2) == pytest.approx(0.5 * (1 + np.exp(-0.25 / 0.08)), rel=1e-5)
    assert al.diagonal_mass(one_hot_rows([1, 0], 2), mask, 2) == pytest.approx(np.exp(-0.25 / 0.08), rel=1e-5)


def test_window_mass_finds_the_best_cluster_over_real_frames():
    cluster = np.array([0, 0, 0.5, 0.5, 0, 0, 0, 0, 0, 0])
    assert al.window_mass(cluster, np.ones(10, bool), 0.2) == pytest.approx(1.0)
    assert al.window_mass(np.full(10, 0.1), np.ones(10, bool), 0.2) == pytest.approx(0.2)
    split = np.array([0.5, 0, 0.5, 0, 0, 0])
    mask = np.array([True, False, True, True, True, True])  # the gap is padding: 0.5, 0.5 are neighbours
    assert al.window_mass(split, mask, 0.4) == pytest.approx(1.0)


def test_n_peaks_counts_high_local_maxima_once_per_plateau():
    assert al.n_peaks(np.array([0, 1, 0, 0.6, 0, 0.2]), np.ones(6, bool), 0.5) == 2
    assert al.n_peaks(np.array([0.4, 0.4, 0.1, 0.1]), np.ones(4, bool), 0.5) == 1
    mean_mass, mean_peaks = al.clustering(DIAGONAL, MASK6, 3, fraction=0.2)
    assert mean_mass == pytest.approx(1.0) and mean_peaks == pytest.approx(1.0)


def test_alignment_hits_count_peaks_inside_known_spans():
    spans = np.array([[0, 2], [2, 3], [-1, -1], [0, 0]])  # the third gloss has no annotation
    hits, known = al.alignment_hits(DIAGONAL, MASK6, spans, 3)
    assert (int(hits), int(known)) == (2, 2)  # peaks at frames 0 and 2
    hits, known = al.alignment_hits(DIAGONAL, MASK6, np.array([[1, 2], [2, 3], [4, 6], [0, 0]]), 3)
    assert (int(hits), int(known)) == (2, 3)


def test_boundaries_read_off_the_attention_match_the_annotation():
    attention = np.array([[0.3, 0.3, 0.3, 0.05, 0.05, 0.0],   # gloss 0: frames 0-2
                          [0.0, 0.05, 0.05, 0.3, 0.3, 0.3],   # gloss 1: frames 3-5
                          [0.2, 0.2, 0.2, 0.2, 0.2, 0.0]])    # <eos>, not a gloss
    np.testing.assert_array_equal(al.attention_boundaries(attention, MASK6, 2), [3.0])
    np.testing.assert_array_equal(al.span_boundaries(np.array([[0, 2], [4, 6]])), [3.0])
    assert al.boundary_counts(attention, MASK6, np.array([[0, 3], [3, 6], [-1, -1]]), 2) == (1, 1, 1)
    assert al.boundary_counts(attention, MASK6, np.array([[0, 5], [5, 6], [-1, -1]]), 2, tolerance=1) == (0, 1, 1)
    assert al.boundary_counts(attention, MASK6, np.full((3, 2), -1), 2) == (0, 0, 0)  # no spans: nothing read


# A text "o spiti psilo spiti" for the glosses HOUSE (frames 0-2, two words) and TALL (frames 3-5):
# word 0 is an article no gloss carries, words 1 and 3 render HOUSE, word 2 TALL; then <eos>.
TEXT_SPANS = np.array([[-1, -1], [0, 3], [3, 6], [0, 3], [-1, -1]])
TEXT_ATTENTION = np.array([[0.0, 0.0, 0.0, 0.0, 0.1, 0.9],    # the article looks anywhere
                           [0.4, 0.3, 0.3, 0.0, 0.0, 0.0],    # HOUSE
                           [0.0, 0.0, 0.0, 0.3, 0.3, 0.4],    # TALL
                           [0.2, 0.6, 0.2, 0.0, 0.0, 0.0],    # HOUSE again
                           [0.2, 0.2, 0.2, 0.2, 0.2, 0.0]])   # <eos>


def test_text_words_are_scored_against_the_sign_of_their_gloss():
    hits, known = al.alignment_hits(TEXT_ATTENTION, MASK6, TEXT_SPANS, 4)
    assert (int(hits), int(known)) == (3, 3)  # the article is left out
    spans, rows = al.by_sign(TEXT_ATTENTION, TEXT_SPANS, 4)
    np.testing.assert_array_equal(spans, [[0, 3], [3, 6]])  # one sign per gloss, in time order
    np.testing.assert_allclose(rows, [[0.3, 0.45, 0.25, 0, 0, 0], [0, 0, 0, 0.3, 0.3, 0.4]])
    # One boundary, HOUSE|TALL at frame 3: none from the article's peak nor between HOUSE's words.
    assert al.boundary_counts(TEXT_ATTENTION, MASK6, TEXT_SPANS, 4) == (1, 1, 1)


def test_matching_is_one_to_one_and_f1_pools_counts():
    assert al.match_boundaries(np.array([3.0, 4.0]), np.array([3.5]), 1.0) == 1
    assert al.match_boundaries(np.array([1.0, 9.0]), np.array([2.0, 8.0]), 1.0) == 2
    assert al.f1(1, 2, 1) == pytest.approx(2 / 3)
    assert np.isnan(al.f1(0, 0, 0))


def test_scores_vmap_and_jit_over_samples():
    batch = np.stack([DIAGONAL, one_hot_rows([4, 2, 0, 5], 6)])
    scores = jax.jit(jax.vmap(al.diagonality, (0, None, 0)))(batch, MASK6, np.array([3, 3]))
    np.testing.assert_allclose(scores, [1.0, -1.0])


def test_encoder_within_sign_is_the_in_sign_share_above_uniform():
    spans = jnp.array([[0, 3], [3, 6], [-1, -1]])
    mask = jnp.ones(6, bool)
    block = jnp.kron(jnp.eye(2), jnp.full((3, 3), 1 / 3))[None]  # each frame attends only to its sign
    np.testing.assert_allclose(al.encoder_within_sign(block, mask, spans), 1 - 0.5, atol=1e-6)
    uniform = jnp.full((2, 6, 6), 1 / 6)
    np.testing.assert_allclose(al.encoder_within_sign(uniform, mask, spans), 0.0, atol=1e-6)
    assert np.isnan(al.encoder_within_sign(uniform, mask, jnp.full((3, 2), -1)))


def test_boundary_baselines_score_even_and_random_boundaries_of_the_annotated_count():
    mask = np.array([True] * 30 + [False] * 4)
    spans = np.array([[0, 10], [10, 20], [20, 30], [-1, -1]])
    counts = al.boundary_baselines(mask, spans, 3, np.random.default_rng(0), tolerance=0.5, draws=200)
    np.testing.assert_array_equal(counts[0], [2, 2, 2])  # even spacing puts them at 10 and 20
    matched, predicted, annotated = counts[1]
    assert (predicted, annotated) == (2, 2)
    # Each of 29 candidate frames is within 0.5 of a boundary (10 or 20) with chance 2/29: about 4/29 matched.
    assert 0.06 < matched < 0.25
