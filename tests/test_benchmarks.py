"""The PyTorch twin is the authors' architecture and our model's function; the benchmark runs."""

import math

import jax
import numpy as np
import pytest

from benchmarks import report, run, time_to_model
from slt_jax.config import EOS, run_config
from slt_jax.decode import greedy_decode
from slt_jax.model import Transformer, count_params
from slt_jax.runs import init_params

torch = run.torch
needs_torch = pytest.mark.skipif(torch is None, reason="the PyTorch twin needs the bench extra: pip install -e .[bench]")
SMALL = run.Shape(batch=2, frames=8, tokens=4, vocab=12)


def twin_and_params(name="gloss16", shape=run.Shape()):
    config = run.bench_config(name, shape)
    params = init_params(config, jax.random.key(0))
    return config, params, run.torch_twin_for(config, params)


@needs_torch
def test_twin_has_the_authors_parameter_count():
    _, params, twin = twin_and_params()
    assert sum(p.numel() for p in twin.parameters()) == count_params(params) == 170_442


@needs_torch
def test_twin_computes_what_our_model_computes():
    config, params, twin = twin_and_params()
    batch = run.synthetic_batch(run.Shape(batch=3, frames=10, tokens=6))
    batch["frame_mask"][1, 7:] = False  # padded frames must be masked alike
    batch["frames"][1, 7:] = 0.0
    inputs = run.torch_inputs(batch)
    ours = Transformer(config.model).apply({"params": params}, batch["frames"], batch["frame_mask"],
                                           batch["decoder_input"])
    twin.eval()
    with torch.no_grad():
        theirs = twin(inputs["frames"], inputs["frame_mask"], inputs["decoder_input"])
    assert theirs.shape == (3, 6, 314)
    np.testing.assert_allclose(theirs.numpy(), ours, atol=1e-4)
    # The authors' greedy loop (prefix re-run, no causal mask) picks our cached greedy's tokens.
    tokens = run.torch_twin.greedy_decode(twin, inputs["frames"], inputs["frame_mask"], 8).numpy()
    cached = np.asarray(greedy_decode(Transformer(config.model), params, batch["frames"], batch["frame_mask"], 8))
    assert tokens.shape == cached.shape == (3, 8)
    for row, ref in zip(tokens, cached):
        end = next((i + 1 for i, t in enumerate(ref) if t == EOS), len(ref))
        np.testing.assert_array_equal(row[:end], ref[:end])


@needs_torch
def test_twin_train_step_learns():
    config, _, twin = twin_and_params("tiny", SMALL)
    inputs = run.torch_inputs(run.synthetic_batch(SMALL))
    optimizer = torch.optim.Adam(twin.parameters(), 3e-3)
    losses = [float(run.torch_twin.train_step(twin, optimizer, inputs)) for _ in range(30)]
    assert math.isfinite(losses[0]) and losses[-1] < 0.5 * losses[0]


def test_benchmark_functions_give_positive_finite_figures(corpus_dir, tmp_path):
    results = {"machine": run.machine(), "shape": SMALL._asdict(), "repeats": 1,
               "load_average_before": 0.0, "load_average_after": 0.0, "process_peak_rss_mib": 1.0,
               "train_gloss16": run.train_figures("tiny", SMALL, 1),
               "decode_gloss16": run.decode_figures("tiny", SMALL, 1),
               "sweep": run.sweep_figures("tiny", SMALL, 1, seeds=2),
               "epoch_gloss16": run.epoch_figures("tiny", corpus_dir),
               "costs_gloss16": run.cost_figures("tiny", SMALL, 1),
               "memory_gloss16": run.memory_figures("tiny", SMALL, 1, stream_mib=8),
               "profile_gloss16": run.profile_ops("tiny", SMALL, steps=1, top=None)}
    expected_train = set(run.DROPOUT_VARIANTS) | ({"torch", "torch_1_thread"} if torch is not None else set())
    assert set(results["train_gloss16"]) == {f"{k}_samples_per_s" for k in expected_train}
    figures = [v for section in ("train_gloss16", "decode_gloss16", "sweep", "epoch_gloss16", "costs_gloss16")
               for v in results[section].values()] + [op["ms"] for op in results["profile_gloss16"]]
    assert all(math.isfinite(v) and v > 0 for v in figures)
    assert results["epoch_gloss16"]["samples"] == 48  # the toy corpus's train split
    memory = results["memory_gloss16"]
    memory["train_step"]["profile_ms"] = run.ms_by_group(results["profile_gloss16"])
    assert sum(memory["train_step"]["profile_ms"].values()) == pytest.approx(
        sum(op["ms"] for op in results["profile_gloss16"]))
    for call in ("train_step", "encode"):  # the walk counts what XLA's cost analysis counts
        assert sum(memory[call]["bytes_by_group"].values()) == pytest.approx(memory[call]["bytes_accessed_xla"],
                                                                           rel=0.01)
    assert all(memory["train_step"]["bytes_by_group"][g] > 0 for g in run.OP_GROUPS)
    assert memory["encode"]["bytes_by_group"]["optimiser"] == memory["encode"]["bytes_by_group"]["dropout_masks"] == 0
    assert math.isfinite(memory["bandwidth"]["stream_gb_per_s"]) and memory["bandwidth"]["stream_gb_per_s"] > 0
    assert memory["train_step"]["floor_ms"]["all"] == pytest.approx(
        1e3 * memory["train_step"]["bytes_accessed_xla"] / 1e9 / memory["bandwidth"]["stream_gb_per_s"])
    results["ratios"] = run.ratios(results)
    assert (results["ratios"]["train_gloss16_philox"] is None) == (torch is None)

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nProse before.\n")
    report.write_section(doc, results)
    report.write_section(doc, results)  # a second run replaces the section instead of adding one
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nProse before.\n") and text.count(report.BEGIN) == 1
    assert "| Training gloss16 |" in text and "`extract_attention`" in text and "| Greedy decoding |" in text
    assert "(the memory floor), ms" in text and "| feed-forward (`/mlp/`) |" in text
    assert "| Training step (`philox`) within 2x of its memory floor |" in text


@pytest.mark.parametrize("op_name, group", [
    ("jvp(Transformer)/Transformer.encode/encoder_0/mlp/wi/dot_general", "feed_forward"),
    ("transpose(jvp(Transformer))/Transformer.encode/encoder_0/mlp/select_n", "feed_forward"),
    ("jvp(Transformer)/Transformer.encode/encoder_0/mlp/Dropout_0/jit(_where)/select_n", "feed_forward"),
    ("jvp(Transformer)/Transformer.encode/encoder_0/mlp/Dropout_0/rem", "dropout_masks"),
    ("jvp(Transformer)/Transformer.encode/encoder_0/self_attn/dropout/rem", "dropout_masks"),
    ("transpose(jvp(Transformer))/Transformer.decode/decoder_0/cross_attn/bqhe,bkhe->bhqk/dot_general", "attention"),
    ("jit(_threefry_fold_in)/train_step_fn.<locals>.train_step/while", "dropout_masks"),
    ("jvp(Transformer)/Transformer.encode/encoder_0/Dropout_0/div", "other"),
    ("transpose(jvp())/add_any", "other"),
    ("add", "optimiser"), ("", "other")])
def test_ops_are_grouped_by_their_op_name(op_name, group):
    assert run.op_group(f"jit(train_step)/{op_name}" if op_name else "") == group


def test_the_byte_split_counts_each_op_as_xla_does():
    def step(x_NxD, w_DxD, key):
        with jax.named_scope("Transformer/mlp"):
            h = jax.nn.relu(x_NxD @ w_DxD)
            with jax.named_scope("Dropout_0"):
                h = jax.numpy.where(jax.random.bernoulli(key, 0.9, h.shape), h / 0.9, 0.0)
        with jax.named_scope("Transformer/self_attn"):
            s = jax.nn.softmax(h @ h.T)
        return w_DxD - 1e-3 * (s @ h).T @ x_NxD  # outside the model: the optimiser's group

    x, w = jax.numpy.ones((64, 32)), jax.numpy.ones((32, 32))
    traffic = run.memory_traffic(jax.jit(step).lower(x, w, jax.random.key(0)).compile())
    moved = traffic["bytes_by_group"]
    assert set(moved) == set(run.OP_GROUPS)
    assert moved["feed_forward"] >= x.nbytes + w.nbytes + x.nbytes  # reads x and w, writes h (and applies the mask)
    assert moved["dropout_masks"] >= x.size  # random bits of h's shape
    assert moved["attention"] > 0 and moved["optimiser"] > 0
    assert sum(moved.values()) == pytest.approx(traffic["bytes_accessed_xla"], rel=1e-3)

    bandwidth = run.bandwidth_figures(1, stream_mib=4, cache_mib=(1,))
    assert math.isfinite(bandwidth["stream_gb_per_s"]) and bandwidth["stream_gb_per_s"] > 0
    assert set(bandwidth["in_cache_gb_per_s"]) == {"1 MiB"}


def test_time_to_model_splits_the_gain_into_code_and_recipe():
    contestants = {"torch_authors": {"wall_s": 100.0, "train_s": 90.0, "updates": 300},
                   "jax_authors": {"wall_s": 40.0, "train_s": 30.0, "updates": 300},
                   "jax_fast": {"wall_s": 20.0, "train_s": 15.0, "updates": 150}}
    assert time_to_model.ratios(contestants) == pytest.approx({
        "wall_torch_authors_over_jax_authors": 2.5, "wall_torch_authors_over_jax_fast": 5.0,
        "seconds_per_update_torch_over_jax": 3.0, "updates_jax_authors_over_jax_fast": 2.0})
    assert time_to_model.ratios({"jax_fast": contestants["jax_fast"]})["wall_torch_authors_over_jax_fast"] is None


@needs_torch
def test_the_twin_trains_on_our_batches_and_is_scored(corpus_dir):
    figures = time_to_model.train_twin(run_config("tiny", "authors", 0, epochs=2), corpus_dir)
    assert figures["epochs"] == 2 and figures["updates"] == 2 * 6  # 48 training samples, batches of 8
    assert figures["kept_epoch"] in (1, 2) and 0.0 <= figures["test_exact_match"] <= 1.0
