"""The model's invariants, checked through the model itself."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slt_jax.config import BOS, DROPOUT_RNGS, PRESETS, ModelConfig
from slt_jax.decode import beam_search, greedy_decode, most_probable
from slt_jax.model import Transformer, count_params

TINY = ModelConfig(vocab_size=11, n_features=6, frame_hidden=8, d_model=8, n_heads=2, d_ff=16, max_len=32)
B, T, L = 2, 7, 5


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(B, T, TINY.n_features)).astype(np.float32)
    mask = np.ones((B, T), bool)
    mask[1, 4:] = False  # the second sample has 4 real frames
    frames[1, 4:] = 0.0
    tokens = rng.integers(4, TINY.vocab_size, (B, L)).astype(np.int32)
    tokens[:, 0] = BOS
    return frames, mask, tokens


@pytest.fixture(scope="module")
def params():
    frames, mask, tokens = inputs()
    return Transformer(TINY).init(jax.random.key(0), frames, mask, tokens)["params"]


def run_sown(params, config, *args, **kwargs):
    return Transformer(config).apply({"params": params}, *args, mutable=["intermediates"], **kwargs)


def test_gloss16_has_the_authors_parameter_count():
    config = ModelConfig(vocab_size=314)
    shapes = jax.eval_shape(Transformer(config).init, jax.random.key(0), jnp.zeros((1, 74, 150)),
                            jnp.ones((1, 74), bool), jnp.zeros((1, 20), jnp.int32))
    assert count_params(shapes["params"]) == 170_442


def test_nothing_is_sown_when_switched_off(params):
    _, state = run_sown(params, TINY, *inputs())
    assert state == {} or not state.get("intermediates")


@pytest.mark.parametrize("patterns,residuals", [(True, False), (False, True), (True, True)])
def test_sown_shapes_follow_the_switches(params, patterns, residuals):
    config = dataclasses.replace(TINY, sow_patterns=patterns, sow_residuals=residuals)
    _, state = run_sown(params, config, *inputs())
    sown = state["intermediates"]
    names = {(layer, name) for layer in sown for name in sown[layer] if name != "self_attn" and name != "cross_attn"}
    shapes = {}
    for layer in ("encoder_0", "decoder_0"):
        for site in ("self_attn", "cross_attn"):
            if site in sown.get(layer, {}):
                shapes[f"{layer}/{site}"] = sown[layer][site]["pattern"][0].shape
    if patterns:
        assert shapes == {"encoder_0/self_attn": (B, 2, T, T), "decoder_0/self_attn": (B, 2, L, L),
                          "decoder_0/cross_attn": (B, 2, L, T)}
    else:
        assert shapes == {}
    expected = {("encoder_0", n) for n in ("attn_out", "resid_mid", "mlp_out", "resid_post")}
    expected |= {("decoder_0", n) for n in ("attn_out", "resid_mid", "cross_attn_out", "resid_cross",
                                             "mlp_out", "resid_post")}
    assert names == (expected if residuals else set())
    if residuals:
        assert sown["decoder_0"]["cross_attn_out"][0].shape == (B, L, TINY.d_model)
        branch, total = sown["decoder_0"]["mlp_out"][0], sown["decoder_0"]["resid_post"][0]
        assert not np.allclose(branch, total)


def patterns(params):
    config = dataclasses.replace(TINY, sow_patterns=True)
    _, state = run_sown(params, config, *inputs())
    return state["intermediates"]


def test_attention_rows_sum_to_one(params):
    sown = patterns(params)
    for layer, site in (("encoder_0", "self_attn"), ("decoder_0", "self_attn"), ("decoder_0", "cross_attn")):
        np.testing.assert_allclose(np.sum(sown[layer][site]["pattern"][0], axis=-1), 1.0, rtol=1e-5)


def test_padded_frames_get_zero_attention(params):
    sown = patterns(params)
    cross = sown["decoder_0"]["cross_attn"]["pattern"][0]
    encoder = sown["encoder_0"]["self_attn"]["pattern"][0]
    assert np.all(cross[1, :, :, 4:] == 0.0) and np.all(encoder[1, :, :, 4:] == 0.0)
    assert np.all(cross[1, :, :, :4] > 0.0)


def test_padded_frames_do_not_change_the_output(params):
    frames, mask, tokens = inputs()
    noisy = frames.copy()
    noisy[1, 4:] = 5.0  # garbage where the mask says padding
    model = Transformer(TINY)
    a = model.apply({"params": params}, frames, mask, tokens)
    b = model.apply({"params": params}, noisy, mask, tokens)
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)


def test_decoder_is_causal(params):
    frames, mask, tokens = inputs()
    model = Transformer(TINY)
    changed = tokens.copy()
    changed[:, 3] = (tokens[:, 3] + 1 - 4) % (TINY.vocab_size - 4) + 4
    a = model.apply({"params": params}, frames, mask, tokens)
    b = model.apply({"params": params}, frames, mask, changed)
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-6)
    assert not np.allclose(a[:, 3:], b[:, 3:])
    # Without the causal mask (the authors' prefix re-run) earlier positions do see later tokens.
    memory = model.apply({"params": params}, frames, mask, method=Transformer.encode)
    full = lambda t: model.apply({"params": params}, t, memory, mask, causal=False, method=Transformer.decode)
    assert not np.allclose(full(tokens)[:, :3], full(changed)[:, :3])


def test_cached_steps_match_the_full_pass(params):
    frames, mask, tokens = inputs()
    model = Transformer(TINY)
    variables = {"params": params}
    full = model.apply(variables, frames, mask, tokens)
    memory = model.apply(variables, frames, mask, method=Transformer.encode)
    cache = model.apply(variables, memory, L, method=Transformer.init_cache)
    for position in range(L):
        logits, cache = model.apply(variables, tokens[:, position], position, cache, mask,
                                    method=Transformer.decode_step)
        np.testing.assert_allclose(logits, full[:, position], atol=1e-5)


def test_greedy_equals_argmax_of_teacher_forcing_on_its_own_output(params):
    frames, mask, _ = inputs()
    model = Transformer(TINY)
    tokens = np.asarray(greedy_decode(model, params, frames, mask, max_len=L))
    prefix = np.concatenate([np.full((B, 1), BOS), tokens[:, :-1]], axis=1)
    logits = model.apply({"params": params}, frames, mask, prefix)
    argmax = np.argmax(logits, axis=-1)
    for b in range(B):
        ends = np.flatnonzero(tokens[b] == 3)
        n = ends[0] + 1 if len(ends) else L
        np.testing.assert_array_equal(tokens[b, :n], argmax[b, :n])
        assert np.all(tokens[b, n:] == 0)


def test_beam_of_width_one_is_greedy_and_wider_beams_score_no_worse(params):
    frames, mask, _ = inputs()
    model = Transformer(TINY)
    greedy = greedy_decode(model, params, frames, mask, max_len=L)
    np.testing.assert_array_equal(beam_search(model, params, frames, mask, max_len=L, beam=1), greedy)

    def log_prob(tokens):
        prefix = np.concatenate([np.full((B, 1), BOS), tokens[:, :-1]], axis=1)
        logp = jax.nn.log_softmax(model.apply({"params": params}, frames, mask, prefix))
        picked = np.take_along_axis(np.asarray(logp), np.asarray(tokens)[..., None], -1)[..., 0]
        return np.sum(np.where(np.asarray(tokens) != 0, picked, 0.0), axis=1)

    wide = beam_search(model, params, frames, mask, max_len=L, beam=4)
    assert np.all(log_prob(wide) >= log_prob(greedy) - 1e-5)


def test_most_probable_is_argmax():
    logits = jax.random.randint(jax.random.key(0), (500, 37), 0, 4).astype(jnp.float32)  # many ties
    np.testing.assert_array_equal(most_probable(logits), jnp.argmax(logits, axis=-1))
    nan = most_probable(jnp.full((2, 37), jnp.nan))
    assert np.all((0 <= nan) & (nan < 37))


def test_dropout_rngs_change_nothing_when_deterministic(params):
    frames, mask, tokens = inputs()
    for rng in DROPOUT_RNGS:
        config = dataclasses.replace(TINY, dropout_rng=rng)  # same parameters, same function
        np.testing.assert_array_equal(Transformer(config).apply({"params": params}, frames, mask, tokens),
                                      Transformer(TINY).apply({"params": params}, frames, mask, tokens))


# Initialisation: each parameter against the distribution the authors' PyTorch model draws it from
# (REFERENCE §1), spread pooled over SEEDS initialisations so a 16-element bias is measured on 512.
SEEDS = 32
try:
    import torch

    from benchmarks import torch_twin
except ImportError:
    torch = None


def gloss16(**changes) -> ModelConfig:
    return dataclasses.replace(PRESETS["gloss16"].model, vocab_size=314, **changes)


def torch_distribution(path: tuple[str, ...], c: ModelConfig) -> tuple[str, float]:
    """(kind, scale) of a parameter at torch's initialisation: ("uniform", bound), ("normal",
    std), ("zeros", 0) or ("ones", 1); written from REFERENCE §1, not from slt_jax.model."""
    layer, leaf = path[-2], path[-1]
    default = lambda fan_in: ("uniform", 1 / np.sqrt(fan_in))  # nn.Linear / nn.Conv1d, weight and bias
    xavier = lambda fan_in, fan_out: ("uniform", np.sqrt(6 / (fan_in + fan_out)))
    if path[0] == "frame_convs_0":  # Conv1d: fan_in = in_channels * kernel_size
        return default(c.n_features * c.kernel_size)
    if path[0] == "frame_convs_1":
        return default(c.frame_hidden * c.kernel_size)
    if path[0] == "token_embed":
        return ("normal", 1.0)
    if path[0] == "logits":
        return default(c.d_model)
    if "scale" == leaf:  # LayerNorm
        return ("ones", 1.0)
    if layer in ("query", "key", "value"):  # slices of the fused (3d, d) in_proj_weight
        return xavier(c.d_model, 3 * c.d_model) if leaf == "kernel" else ("zeros", 0.0)
    if layer == "out":
        return xavier(c.d_model, c.d_model) if leaf == "kernel" else ("zeros", 0.0)
    if layer == "wi":  # linear1
        return xavier(c.d_model, c.d_ff) if leaf == "kernel" else default(c.d_model)
    if layer == "wo":  # linear2
        return xavier(c.d_ff, c.d_model) if leaf == "kernel" else default(c.d_ff)
    if leaf == "bias":  # LayerNorm
        return ("zeros", 0.0)
    raise AssertionError(f"no torch initialisation known for {'/'.join(path)}")


@functools.cache  # compiling the initialisation takes seconds; each config is drawn once
def pooled_init(config: ModelConfig):
    """Parameters of SEEDS initialisations, stacked on a leading axis."""
    frames, tokens = jnp.zeros((1, 4, config.n_features)), jnp.zeros((1, 3), jnp.int32)
    init = lambda key: Transformer(config).init(key, frames, frames[..., 0] == 0, tokens)["params"]
    return jax.jit(jax.vmap(init))(jax.random.split(jax.random.key(0), SEEDS))


def init_mismatches(config: ModelConfig) -> dict[str, str]:
    """Parameters whose pooled initial values do not follow `torch_distribution`, with why."""
    wrong = {}
    for key_path, value in jax.tree_util.tree_leaves_with_path(pooled_init(config)):
        path = tuple(k.key for k in key_path)
        kind, scale = torch_distribution(path, config)
        x = np.asarray(value, np.float64)
        if kind in ("zeros", "ones"):
            if not np.all(x == scale):
                wrong["/".join(path)] = f"expected all {scale}, std {x.std():.3g}"
            continue
        expected_std = scale / np.sqrt(3) if kind == "uniform" else scale
        problems = []
        if abs(x.std() / expected_std - 1) > 0.1:
            problems.append(f"std {x.std():.4g} vs {expected_std:.4g}")
        if abs(x.mean()) > 0.1 * expected_std:
            problems.append(f"mean {x.mean():.3g}")
        if kind == "uniform" and not 0.9 * scale <= np.abs(x).max() <= scale * (1 + 1e-6):  # float32 bound
            problems.append(f"max |x| {np.abs(x).max():.4g} vs bound {scale:.4g}")
        if problems:
            wrong["/".join(path)] = ", ".join(problems)
    return wrong


def test_authors_presets_start_from_torch_initialisation():
    assert all(PRESETS[name].model.init == "torch" for name in ("gloss16", "gloss32", "gloss64", "text16"))


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_torch_init_draws_every_parameter_as_pytorch_does(kernel_size):
    assert init_mismatches(gloss16(kernel_size=kernel_size)) == {}


def test_flax_init_is_the_old_one_and_differs_where_torch_differs():
    """The check above can fail: Flax's defaults miss torch's spread exactly where issue 13 says."""
    wrong = init_mismatches(gloss16(init="flax"))
    mlp_biases = {f"{layer}/mlp/{dense}/bias" for layer in ("encoder_0", "decoder_0") for dense in ("wi", "wo")}
    qkv = {f"{layer}/{attn}/{part}/kernel" for layer, attn in
           (("encoder_0", "self_attn"), ("decoder_0", "self_attn"), ("decoder_0", "cross_attn"))
           for part in ("query", "key", "value")}
    outside = {f"{module}/{leaf}" for module in ("frame_convs_0", "frame_convs_1", "logits") for leaf in ("kernel", "bias")}
    assert set(wrong) == mlp_biases | qkv | outside
    # Flax's LeCun-normal convolutions are about sqrt(3) times wider than torch's uniform ones.
    conv = pooled_init(gloss16(init="flax"))["frame_convs_0"]["kernel"]
    torch_std = 1 / np.sqrt(3 * 150)  # of U(+-1/sqrt(150))
    assert np.std(conv) / torch_std == pytest.approx(np.sqrt(3), rel=0.1)


def test_torch_init_rejects_frames_of_another_width(params):
    frames, mask, tokens = inputs()
    with pytest.raises(ValueError, match="n_features"):  # the conv bounds were computed for n_features
        Transformer(dataclasses.replace(TINY, n_features=7)).init(jax.random.key(0), frames, mask, tokens)


@pytest.mark.skipif(torch is None, reason="comparing with the PyTorch twin needs torch (pip install -e .[bench]); "
                    "the analytic check above runs without it")
def test_torch_init_matches_the_pytorch_twin():
    """Our parameters, loaded into the twin, spread like a freshly built twin's, name by name."""
    c = gloss16()
    build = lambda: torch_twin.KeypointsTransformer(c.vocab_size, c.d_model, c.n_heads, c.d_ff, c.n_features,
                                                    c.frame_hidden)
    ours, theirs = {}, {}
    pooled = pooled_init(c)
    for seed in range(8):
        torch.manual_seed(seed)
        for name, value in build().named_parameters():
            theirs.setdefault(name, []).append(value.detach().numpy().ravel())
        twin = build()
        torch_twin.copy_flax_params(twin, jax.tree.map(lambda x: x[seed], pooled))
        for name, value in twin.named_parameters():
            ours.setdefault(name, []).append(value.detach().numpy().ravel())
    assert set(ours) == set(theirs)
    for name in theirs:
        a, b = np.concatenate(ours[name]), np.concatenate(theirs[name])
        if b.std() == 0:
            assert np.all(a == b[0]), name
        else:
            assert a.std() == pytest.approx(b.std(), rel=0.15), name
            assert np.abs(a).max() == pytest.approx(np.abs(b).max(), rel=0.15), name
