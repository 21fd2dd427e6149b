"""extract_attention and run_with_cache, checked against the model's own decoding."""

import dataclasses
import functools
import subprocess
import sys

import jax
import numpy as np
import pytest

import slt_jax
from slt_jax.analysis import record as rec
from slt_jax.analysis.paper import cross_attention_rows
from slt_jax.config import BOS, EOS, PAD, ModelConfig
from slt_jax.decode import greedy_decode
from slt_jax.model import Transformer

TINY = ModelConfig(vocab_size=11, n_features=6, frame_hidden=8, kernel_size=3, d_model=8, n_heads=2, d_ff=16)
B, T, L = 3, 7, 6


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(B, T, TINY.n_features)).astype(np.float32)
    mask = np.ones((B, T), bool)
    mask[1, 4:] = False  # the second sample has 4 real frames
    frames[1, 4:] = 0.0
    target = np.array([[5, 6, EOS, 0, 0, 0], [7, EOS, 0, 0, 0, 0], [4, 8, 9, 10, EOS, 0]], np.int32)
    decoder_input = np.concatenate([np.full((B, 1), BOS, np.int32), target[:, :-1]], axis=1)
    spans = np.full((B, L, 2), -1, np.int32)
    spans[0, :2] = [[0, 3], [3, 7]]
    return {"frames": frames, "frame_mask": mask, "target": target, "decoder_input": decoder_input,
            "sample_mask": np.array([True, True, False]), "index": np.array([4, 2, 0], np.int32),
            "gloss_spans": spans}


@pytest.fixture(scope="module")
def params(batch):
    # A seed whose greedy translations differ and end at different steps (under Flax's
    # initialisation; none of keys 0-59 gives these lengths under torch's).
    init = Transformer(dataclasses.replace(TINY, init="flax")).init
    return jax.jit(init)(jax.random.key(10), batch["frames"], batch["frame_mask"], batch["decoder_input"])["params"]


@pytest.fixture(scope="module")
def records(params, batch):
    return {mode: rec.extract_attention(params, batch, mode) for mode in rec.MODES}


def test_the_architecture_is_read_off_the_parameters(params):
    assert rec.config_from_params(params, sow=False) == TINY


def test_greedy_tokens_equal_greedy_decode(params, batch, records):
    expected = np.asarray(greedy_decode(Transformer(TINY), params, batch["frames"], batch["frame_mask"], L))
    for record in records.values():
        np.testing.assert_array_equal(record.tokens_BxS, expected)
        np.testing.assert_array_equal(record.length_B, [2, L, L])  # <eos> came only to the first


def test_attention_rows_sum_to_one_and_padding_gets_nothing(records, batch):
    for record in records.values():
        cross = np.asarray(record.cross_pattern_BxSxHxT)
        np.testing.assert_allclose(cross.sum(-1), 1.0, atol=1e-5)
        assert np.all(cross[1, :, :, 4:] == 0.0)
        self_p = np.asarray(record.self_pattern_BxSxHxS)
        np.testing.assert_allclose(self_p.sum(-1), 1.0, atol=1e-5)
        later = np.arange(L)[None, :] > np.arange(L)[:, None]  # key position after the step's
        assert np.all(self_p[:, later[:, None, :].repeat(TINY.n_heads, 1)] == 0.0)
        encoder = np.asarray(record.encoder_pattern_BxHxTxT)
        assert np.all(encoder[1, :, :, 4:] == 0.0)
        assert np.all(np.asarray(record.attn_out_BxSxQxD)[:, later] == 0.0)


def test_paper_mode_prefix_outputs_equal_a_non_causal_decode_of_the_prefix(params, batch, records):
    record = records["paper"]
    fed = np.concatenate([np.full((B, 1), BOS), np.asarray(record.tokens_BxS)], axis=1)
    for s in (1, L - 1):
        _, cache = rec.run_with_cache(params, {**batch, "decoder_input": fed[:, : s + 1]}, causal=False)
        np.testing.assert_allclose(record.attn_out_BxSxQxD[:, s, : s + 1], cache["decoder_0/attn_out"], atol=1e-5)
        np.testing.assert_allclose(record.cross_attn_out_BxSxQxD[:, s, : s + 1], cache["decoder_0/cross_attn_out"],
                                   atol=1e-5)
        np.testing.assert_allclose(record.self_pattern_BxSxHxS[:, s, :, : s + 1],
                                   cache["decoder_0/self_attn/pattern"][:, :, s], atol=1e-6)


def test_causal_mode_equals_one_causal_pass_and_differs_from_paper_mode_off_the_newest_row(params, batch, records):
    causal, paper = records["causal"], records["paper"]
    fed = np.concatenate([np.full((B, 1), BOS), np.asarray(causal.tokens_BxS)[:, :-1]], axis=1)
    logits, cache = rec.run_with_cache(params, {**batch, "decoder_input": fed})
    np.testing.assert_allclose(causal.attn_out_BxSxQxD[:, -1], cache["decoder_0/attn_out"], atol=1e-5)
    np.testing.assert_allclose(causal.cross_pattern_BxSxHxT, cache["decoder_0/cross_attn/pattern"].transpose(0, 2, 1, 3),
                               atol=1e-6)
    np.testing.assert_allclose(paper.cross_pattern_BxSxHxT, causal.cross_pattern_BxSxHxT, atol=1e-5)
    assert not np.allclose(paper.attn_out_BxSxQxD[:, -1, 0], causal.attn_out_BxSxQxD[:, -1, 0], atol=1e-3)
    _, uncausal = rec.run_with_cache(params, {**batch, "decoder_input": fed}, causal=False)
    np.testing.assert_allclose(paper.attn_out_BxSxQxD[:, -1], uncausal["decoder_0/attn_out"], atol=1e-5)
    steps = np.asarray(causal.step_mask_BxS)
    np.testing.assert_array_equal(np.asarray(logits).argmax(-1)[steps], np.asarray(causal.tokens_BxS)[steps])


def test_teacher_forcing_scores_the_references(params, batch):
    record = rec.extract_attention(params, batch, "causal", max_len=L + 2, teacher_forced=True)
    padded = np.pad(batch["target"], ((0, 0), (0, 2)))
    np.testing.assert_array_equal(record.tokens_BxS, padded)
    np.testing.assert_array_equal(record.target_BxS, padded)
    np.testing.assert_array_equal(record.length_B, [3, 2, 5])
    logits, _ = rec.run_with_cache(params, batch)
    expected = np.take_along_axis(np.asarray(jax.nn.log_softmax(logits)), batch["target"][..., None], -1)[..., 0]
    np.testing.assert_allclose(record.log_probs_BxS[:, :L], np.where(batch["target"] != PAD, expected, 0.0), atol=1e-5)
    assert np.all(np.asarray(record.log_probs_BxS)[:, L:] == 0.0)
    np.testing.assert_array_equal(record.correct_B, [True, True, False])  # the third is batch filler


def test_the_batch_is_passed_through_and_the_record_is_a_pytree(params, batch, records):
    record = records["paper"]
    np.testing.assert_array_equal(record.gloss_spans_BxSx2, batch["gloss_spans"])
    np.testing.assert_array_equal(record.index_B, batch["index"])
    np.testing.assert_array_equal(record.frame_mask_BxT, batch["frame_mask"])
    rows = jax.jit(jax.vmap(cross_attention_rows))(record.cross_pattern_BxSxHxT, record.frame_mask_BxT)
    assert rows.shape == (B, L, 100)
    first = jax.tree.map(lambda x: x[0], record)
    assert first.cross_pattern_BxSxHxT.shape == (L, TINY.n_heads, T) and first.mode == "paper"


def test_the_package_exports_it_lazily():
    assert slt_jax.extract_attention is rec.extract_attention and slt_jax.run_with_cache is rec.run_with_cache
    code = "import sys, slt_jax, slt_jax.layout; assert 'jax' not in sys.modules; print(slt_jax.__all__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "extract_attention" in out and "AttentionRecord" in out


def test_greedy_and_teacher_forced_records_share_one_compilation(params, batch):
    before = rec._extract._cache_size()
    greedy = rec.extract_attention(params, batch, "causal", max_len=L + 3)
    forced = rec.extract_attention(params, batch, "causal", max_len=L + 3, teacher_forced=True)
    assert rec._extract._cache_size() == before + 1
    assert forced.teacher_forced and not greedy.teacher_forced


@pytest.mark.parametrize("mode", rec.MODES)
def test_a_record_made_a_row_at_a_time_is_the_same(params, batch, mode, monkeypatch):
    whole = rec.extract_attention(params, batch, mode)
    monkeypatch.setattr(rec, "GROUP_FRAMES", 1)  # in_row_groups: one row per group
    original = rec._extract.__wrapped__
    retraced = functools.wraps(original)(lambda *a, **k: original(*a, **k))  # a new function: no cached trace
    monkeypatch.setattr(rec, "_extract", jax.jit(retraced, static_argnames=("model", "mode", "max_len", "layer")))
    grouped = rec.extract_attention(params, batch, mode)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), whole, grouped)


@pytest.mark.parametrize("mode", rec.MODES)
def test_padded_vocabulary_and_frames_change_no_record(batch, mode):
    pointwise = dataclasses.replace(TINY, kernel_size=1, init="flax")  # pad_frames' condition
    params = jax.jit(Transformer(pointwise).init)(jax.random.key(10), batch["frames"], batch["frame_mask"],
                                                  batch["decoder_input"])["params"]
    record = rec.extract_attention(params, batch, mode)
    padded = rec.extract_attention(rec.pad_vocab(params, multiple=16), rec.pad_frames(batch, T + 5), mode)
    assert padded.cross_pattern_BxSxHxT.shape[-1] == T + 5
    assert not np.asarray(padded.cross_pattern_BxSxHxT)[..., T:].any()  # padded frames get no attention
    np.testing.assert_array_equal(padded.tokens_BxS, record.tokens_BxS)
    for name in ("log_probs_BxS", "attn_out_BxSxQxD", "cross_attn_out_BxSxQxD"):
        np.testing.assert_allclose(getattr(padded, name), getattr(record, name), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(padded.cross_pattern_BxSxHxT)[..., :T], record.cross_pattern_BxSxHxT,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(padded.encoder_pattern_BxHxTxT)[..., :T, :T],
                               record.encoder_pattern_BxHxTxT, rtol=1e-5, atol=1e-5)
