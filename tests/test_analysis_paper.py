"""The authors' analyses on small arrays whose answers are worked out by hand."""

import jax
import numpy as np
import pytest

from slt_jax.analysis import paper


def test_resampling_drops_padding_and_matches_torch_linear_interpolation():
    values = np.array([0.0, 9.0, 1.0, 2.0, 3.0, 9.0])
    mask = np.array([True, False, True, True, True, False])  # a padded frame inside, one at the end
    # torch: output j reads x = (j + 0.5) * 4 / 8 - 0.5, clamped to [0, 3]
    np.testing.assert_allclose(paper.resample_frames(values, mask, 8), [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    np.testing.assert_allclose(paper.resample_frames(values, mask, 2), [0.5, 2.5])
    np.testing.assert_allclose(paper.resample_frames(np.array([[4.0, 0.0]]), np.array([True, False]), 3), [[4, 4, 4]])


def test_min_max_scales_rows_and_leaves_constant_rows_at_zero():
    np.testing.assert_allclose(paper.min_max(np.array([[2.0, 4.0, 6.0], [1.0, 1.0, 1.0]])), [[0, 0.5, 1], [0, 0, 0]])


def test_min_max_over_the_real_frames_only():
    out = np.asarray(paper.min_max(np.array([9.0, 1.0, 3.0, 0.0]), where=np.array([False, True, True, True])))
    np.testing.assert_allclose(out[1:], [1 / 3, 1, 0])
    assert np.isnan(out[0])


def test_cross_attention_frames_keep_the_sample_s_own_frames():
    pattern = np.array([[[0.2, 0.3, 0.5, 0.0], [0.4, 0.3, 0.3, 0.0]]])  # one step, two heads, frame 3 padded
    mask = np.array([True, True, True, False])
    rows = np.asarray(paper.cross_attention_frames(pattern, mask))
    np.testing.assert_allclose(rows[0, :3], [0, 0, 1], atol=1e-6)
    assert np.isnan(rows[0, 3])
    np.testing.assert_allclose(paper.cross_attention_frames_per_head(pattern, mask)[0, 1, :3], [1, 0, 0], atol=1e-6)


def test_cross_attention_rows_average_heads_then_normalise():
    pattern = np.array([[[0.2, 0.3, 0.5], [0.4, 0.3, 0.3]],  # step 0, two heads
                        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    mask = np.ones(3, bool)
    np.testing.assert_allclose(paper.cross_attention_rows(pattern, mask, 3), [[0, 0, 1], [1, 0, 1]], atol=1e-6)
    per_head = paper.cross_attention_rows_per_head(pattern, mask, 3)
    np.testing.assert_allclose(per_head[0], [[0, 1 / 3, 1], [1, 0, 0]], atol=1e-6)


def test_self_minus_cross_is_the_signed_mean_over_prefix_rows_and_dims():
    attn_out = np.zeros((2, 2, 2))
    cross_out = np.zeros((2, 2, 2))
    attn_out[0, 0] = [1, 3]
    attn_out[0, 1] = [100, 100]  # a row after step 0's prefix: ignored
    attn_out[1] = [[1, 1], [2, 2]]
    cross_out[1] = [[0, 0], [1, -1]]
    np.testing.assert_allclose(paper.self_minus_cross(attn_out, cross_out), [2.0, 1.5])


def test_self_share_compares_the_newest_rows_norms():
    attn_out = np.zeros((2, 2, 2))
    cross_out = np.zeros((2, 2, 2))
    attn_out[0, 0], cross_out[0, 0] = [3, 4], [0, 5]
    attn_out[1, 0], cross_out[1, 1] = [9, 9], [1, 0]  # step 1's newest self row is zero
    np.testing.assert_allclose(paper.self_share(attn_out, cross_out), [0.5, 0.0])


def test_encoder_attention_resamples_keys_and_blanks_padded_queries():
    pattern = np.array([[[0.25, 0.75, 0.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]])  # one head, frame 2 padded
    mask = np.array([True, True, False])
    rows = np.asarray(paper.encoder_attention(pattern, mask, 2))
    np.testing.assert_allclose(rows[:2], [[0.25, 0.75], [1.0, 0.0]])
    assert np.all(np.isnan(rows[2]))
    np.testing.assert_allclose(paper.encoder_attention_received(pattern, mask, 2), [[0.625, 0.375]])


def test_peak_frames_skip_padding():
    pattern = np.array([[[0.1, 0.6, 0.3, 0.9]], [[0.5, 0.2, 0.3, 0.9]]])
    mask = np.array([True, True, True, False])
    np.testing.assert_array_equal(paper.peak_frames(pattern, mask), [1, 0])
    assert paper.peak_frames_per_head(pattern, mask).shape == (2, 1)


def test_group_mean_averages_included_samples_per_length_skipping_finished_steps():
    values = np.array([[1.0, 50.0], [2.0, 4.0], [6.0, 8.0], [10.0, 20.0]])
    lengths = np.array([1, 2, 2, 2])
    include = np.array([True, True, True, False])
    steps = np.arange(2)[None, :] < lengths[:, None]
    means, counts = paper.group_mean(values, lengths, include, 3, steps)
    np.testing.assert_array_equal(counts, [0, 1, 2])
    assert np.all(np.isnan(means[0])) and np.isnan(means[1, 1])
    np.testing.assert_allclose(means[1:], [[1.0, np.nan], [4.0, 6.0]])


@pytest.mark.parametrize("jit", [False, True])
def test_analyses_vmap_over_a_batch(jit):
    rng = np.random.default_rng(0)
    pattern = rng.dirichlet(np.ones(5), size=(3, 4, 2)).astype(np.float32)  # B, S, H, T
    mask = np.ones((3, 5), bool)
    rows = jax.vmap(paper.cross_attention_rows)
    rows = jax.jit(rows) if jit else rows
    out = np.asarray(rows(pattern, mask))
    assert out.shape == (3, 4, 100) and np.allclose(out.min(-1), 0) and np.allclose(out.max(-1), 1)
