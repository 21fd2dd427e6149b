"""Attributions and interventions on constructed models whose answer is known."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from slt_jax.analysis import attribution as at
from slt_jax.config import BOS, EOS, ModelConfig
from slt_jax.features import PARTS
from slt_jax.model import Transformer

TINY = ModelConfig(vocab_size=9, n_features=4, frame_hidden=8, d_model=8, n_heads=2, d_ff=16)
B, T, L = 2, 12, 4
PARTS_F = np.array([PARTS.index(p) for p in ("body", "body", "left_hand", "right_hand")])


class OneFrame(Transformer):
    """A Transformer whose encoder passes on one frame alone: every position holds the state of
    frame `frame` (0 when that frame is deleted), so the output depends on that frame only."""

    frame: int = 0

    def encode(self, frames_BxTxF, frame_mask_BxT, deterministic: bool = True):
        x = frames_BxTxF[:, self.frame:self.frame + 1] * frame_mask_BxT[:, self.frame, None, None]
        for conv in self.frame_convs:
            x = nn.relu(conv(x))
        return jnp.broadcast_to(self.encoder_norm(x), (x.shape[0], frames_BxTxF.shape[1], x.shape[-1]))


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(B, T, TINY.n_features)).astype(np.float32)
    mask = np.array([[True] * 12, [True] * 10 + [False] * 2])
    frames[~mask] = 0.0
    target = np.array([[4, 5, EOS, 0], [6, 7, 8, EOS]], np.int32)
    spans = np.array([[[1, 4], [5, 9], [-1, -1], [-1, -1]], [[0, 3], [3, 5], [6, 9], [-1, -1]]], np.int32)
    decoder_input = np.concatenate([np.full((B, 1), BOS, np.int32), target[:, :-1]], axis=1)
    return {"frames": frames, "frame_mask": mask, "target": target, "decoder_input": decoder_input,
            "gloss_spans": spans, "sample_mask": np.ones(B, bool)}


@pytest.fixture(scope="module")
def params(batch):
    return Transformer(TINY).init(jax.random.key(0), batch["frames"], batch["frame_mask"],
                                  batch["decoder_input"])["params"]


def log_probs(params, batch, frames=None, mask=None, model=None):
    logits = (model or Transformer(TINY)).apply({"params": params}, batch["frames"] if frames is None else frames,
                                                batch["frame_mask"] if mask is None else mask, batch["decoder_input"])
    return np.take_along_axis(np.asarray(jax.nn.log_softmax(logits)), batch["target"][..., None], -1)[..., 0]


@pytest.mark.parametrize("method", at.METHODS)
def test_each_token_gets_a_distribution_over_its_real_frames(params, batch, method):
    a = at.attribute(params, batch, method, parts_F=PARTS_F)
    frames = np.asarray(a.frames_BxLxT)
    assert frames.shape == (B, L, T) and (frames >= 0).all()
    live = batch["target"] != 0
    np.testing.assert_allclose(frames.sum(-1)[live], 1.0, rtol=1e-5)
    assert not frames[~live].any() and not frames[1][:, ~batch["frame_mask"][1]].any()
    if method != "rollout":
        np.testing.assert_allclose(np.asarray(a.parts_BxLxP).sum(-1)[live], 1.0, rtol=1e-5)


def test_input_gradients_match_finite_differences(params, batch):
    grads = np.asarray(at.input_gradients(Transformer(TINY), params, *(jnp.asarray(batch[k]) for k in (
        "frames", "frame_mask", "decoder_input", "target"))))
    eps = 1e-2
    for b, s, t, f in [(0, 1, 3, 2), (1, 2, 7, 0)]:
        up, down = batch["frames"].copy(), batch["frames"].copy()
        up[b, t, f] += eps
        down[b, t, f] -= eps
        numeric = (log_probs(params, batch, up) - log_probs(params, batch, down))[b, s] / (2 * eps)
        np.testing.assert_allclose(grads[b, s, t, f], numeric, rtol=0.05, atol=1e-3)


def test_integrated_gradients_add_up_to_the_change_from_the_padding_frame(params, batch):
    a = at.attribute(params, batch, "integrated_gradients", steps=64)
    change = log_probs(params, batch) - log_probs(params, batch, np.zeros_like(batch["frames"]))
    live = batch["target"] != 0
    np.testing.assert_allclose(np.asarray(a.signed_BxL)[live], change[live], rtol=0.02, atol=2e-3)


@pytest.mark.parametrize("method", ["gradient_x_input", "integrated_gradients"])
def test_gradient_methods_find_the_one_frame_the_output_depends_on(params, batch, method):
    model = OneFrame(TINY, frame=6)
    a = at.attribute(params, batch, method, model=model)
    live = batch["target"] != 0
    np.testing.assert_allclose(np.asarray(a.frames_BxLxT)[live][:, 6], 1.0, rtol=1e-6)


@pytest.mark.parametrize("method", ["gradient_x_input", "integrated_gradients"])
def test_gradient_methods_find_the_one_body_part_the_output_depends_on(params, batch, method):
    kernel = params["frame_convs_0"]["kernel"]  # (K, F, hidden): only the right hand's feature reaches the model
    right_only = params | {"frame_convs_0": params["frame_convs_0"] | {"kernel": kernel.at[:, :3].set(0.0)}}
    a = at.attribute(right_only, batch, method, parts_F=PARTS_F)
    live = batch["target"] != 0
    np.testing.assert_allclose(np.asarray(a.parts_BxLxP)[live][:, PARTS.index("right_hand")], 1.0, rtol=1e-6)


def test_rollout_carries_cross_attention_through_the_encoder_residual():
    mask = np.array([True, True, True, False])
    encoder = np.zeros((4, 4), np.float32)
    encoder[0, 2] = encoder[1, 1] = encoder[2, 2] = encoder[3, 0] = 1.0  # frame 0 attends to frame 2
    cross = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]], np.float32)
    np.testing.assert_allclose(at.rollout(cross, encoder, mask), [[0.5, 0, 0.5, 0], [0, 1.0, 0, 0]])
    np.testing.assert_allclose(at.rollout(cross, np.eye(4, dtype=np.float32), mask), cross)


def test_control_window_is_as_long_as_the_sign_and_avoids_it():
    spans = np.array([[0, 4], [4, 6], [8, 12], [-1, -1]])
    assert at.control_window(spans, 0, 14) == (8, 12)  # sign 2 is as long as sign 0
    assert at.control_window(spans, 1, 14) == (1, 3)  # no other sign of 2 frames: ties go to the earlier one
    assert at.control_window(spans[:1], 0, 14) is None


def test_sign_deletion_hurts_only_through_the_frame_the_model_reads(params, batch):
    model = OneFrame(TINY, frame=6)  # inside row 0's second sign [5, 9) and row 1's third [6, 9)
    out = at.sign_deletion(params, batch, model=model)
    intact = log_probs(params, batch, model=model)
    known = batch["gloss_spans"][..., 0] >= 0
    np.testing.assert_allclose(out["intact"][known], intact[known], atol=1e-5)
    own_holds = np.zeros((B, L), bool)
    own_holds[0, 1] = own_holds[1, 2] = True
    assert np.all(np.abs(out["own"] - out["intact"])[own_holds] > 1e-4)
    np.testing.assert_allclose(out["own"][known & ~own_holds], out["intact"][known & ~own_holds], atol=1e-5)
    # Deleting an equally long window of another sign leaves what the model reads alone, unless
    # that window covers frame 6: the first signs' controls are [5, 8) and [6, 9).
    assert np.isnan(out["control"][~known]).all()
    controls_hit_6 = np.zeros((B, L), bool)
    controls_hit_6[0, 0] = controls_hit_6[1, 0] = True
    np.testing.assert_allclose(out["control"][known & ~controls_hit_6], out["intact"][known & ~controls_hit_6],
                               atol=1e-5)


def test_knocking_out_a_head_matters_only_for_the_head_that_carries_the_output(params, batch):
    out_kernel = params["decoder_0"]["cross_attn"]["out"]["kernel"]  # (H, E, D)
    head1_only = jax.tree.map(lambda x: x, params)
    head1_only["decoder_0"]["cross_attn"]["out"]["kernel"] = out_kernel.at[0].set(0.0)
    out = at.head_knockout(head1_only, batch)
    np.testing.assert_allclose(out["intact"], log_probs(head1_only, batch), atol=1e-5)
    np.testing.assert_allclose(out["log_probs"][0], out["intact"], atol=1e-6)
    assert np.abs(out["log_probs"][1] - out["intact"]).max() > 1e-3
    assert out["tokens"].shape == (TINY.n_heads, B, L)


def test_patching_a_sign_with_itself_changes_nothing_and_with_another_changes_it(params, batch):
    same = at.activation_patching(params, batch, [(0, 1, 0, 1)])
    np.testing.assert_allclose(same["own_after"], same["own_before"], atol=1e-6)
    np.testing.assert_allclose(same["own_before"], log_probs(params, batch)[0, 1], atol=1e-5)
    items = at.patch_pairs(batch["target"], batch["gloss_spans"], batch["sample_mask"])
    np.testing.assert_array_equal(items, [(0, 0, 1, 0), (0, 1, 1, 0), (1, 0, 0, 0), (1, 1, 0, 0), (1, 2, 0, 0)])
    out = at.activation_patching(params, batch)
    assert np.abs(out["own_after"] - out["own_before"]).max() > 1e-4
    np.testing.assert_array_equal(out["donor_token"], batch["target"][items[:, 2], items[:, 3]])
