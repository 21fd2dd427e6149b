"""What the output depends on, beside what the model attends to: attributions and interventions.

Attributions, per target token y_s (teacher-forced: the references, or any tokens passed, e.g. a
greedy record's) and per frame, as `attribute(params, batch, method)` returns them:

  gradient_x_input      |x * d log p(y_s) / dx|, summed over each frame's features
  integrated_gradients  |(x - x0) * mean_a d log p(y_s) / dx (x0 + a (x - x0))|, summed likewise,
                        a at the midpoints of `steps` equal intervals of [0, 1]; x0 the padding
                        frame (zeros) under the same frame mask (Sundararajan et al. 2017)
  rollout               cross-attention (heads averaged) composed with the encoder's
                        self-attention and its residual, cross @ (A + I) / 2 (Abnar and Zuidema
                        2020; one encoder layer, so one factor)

Each is a distribution over the real frames per token (rows sum to 1, padding 0), the shape of a
head-averaged cross-attention record, so every alignment measure reads it unchanged. The gradient
methods also give each body part's share (`slt_jax.features.PARTS`).

Interventions, each scored by the teacher-forced log-probability of the reference tokens:

  sign_deletion         token k's own sign deleted, against an equally long window centred on
                        another sign of the sentence (the one closest in length)
  head_knockout         each cross-attention head's output zeroed in turn; also decoded greedily
  activation_patching   the encoder states of token k's sign replaced by those of another
                        sample's sign of another gloss (resampled to the same length): does the
                        prediction at k follow the donor's gloss?

Deleting frames marks them as padding (`faithfulness`). Axes: B batch, L target positions, T
frames, F features, P body parts, H heads, C items (one intervention each).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import struct

from slt_jax.analysis.faithfulness import in_chunks, item_log_probs, reference_log_probs
from slt_jax.analysis.record import in_row_groups, model_for, run_with_cache
from slt_jax.config import BOS, EOS, PAD
from slt_jax.decode import greedy_decode
from slt_jax.features import PARTS
from slt_jax.model import Transformer

METHODS = ("gradient_x_input", "integrated_gradients", "rollout")
IG_STEPS = 16  # integrated gradients' midpoints: on a trained gloss16 (raw coordinates), the sum of
# a token's attributions missed log p(x) - log p(x0) by a median 3.8% (8 steps: 5.5%, 32: 1.6%)
LIVE_MULTIPLE = 4  # `attribute` takes the target positions up to the longest sentence, rounded up


@struct.dataclass
class Attribution:
    """One method's attributions for a batch.

    Attributes:
      frames_BxLxT: relevance of each real frame to each target token, >= 0, summing to 1 over
        the real frames (0 for padding, and for positions whose target is PAD).
      parts_BxLxP: each body part's share of the relevance (gradient methods; NaN for rollout).
      signed_BxL: the signed attributions' sum: for integrated gradients about
        log p(y | x) - log p(y | x0) (completeness); NaN for rollout.
      target_BxL: the tokens attributed.
      method: one of METHODS.
    """

    frames_BxLxT: jax.Array
    parts_BxLxP: jax.Array
    signed_BxL: jax.Array
    target_BxL: jax.Array
    method: str = struct.field(pytree_node=False, default="integrated_gradients")


def input_gradients(model: Transformer, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL,
                    target_BxL) -> jax.Array:
    """d log p(target_l) / d frames for every position l, (B, L, T, F): one forward pass and L
    backward passes per sample."""
    def one(x_TxF, mask_T, fed_L, target_L):
        log_p = lambda x: reference_log_probs(model, params, x[None], mask_T[None], fed_L[None], target_L[None])[0]
        _, pullback = jax.vjp(log_p, x_TxF)
        return jax.vmap(pullback)(jnp.eye(target_L.shape[0]))[0]

    return jax.vmap(one)(frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL)


def signed_attributions(model: Transformer, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL,
                        method: str, steps: int = IG_STEPS) -> jax.Array:
    """Per position and input value, (B, L, T, F): x * gradient, or integrated gradients from zeros."""
    grads = functools.partial(input_gradients, model, params, frame_mask_BxT=frame_mask_BxT,
                              decoder_input_BxL=decoder_input_BxL, target_BxL=target_BxL)
    if method == "gradient_x_input":
        return frames_BxTxF[:, None] * grads(frames_BxTxF)
    alphas = (jnp.arange(steps) + 0.5) / steps
    total = jax.lax.fori_loop(0, steps, lambda i, acc: acc + grads(alphas[i] * frames_BxTxF),
                              jnp.zeros(target_BxL.shape[:2] + frames_BxTxF.shape[1:]))
    return frames_BxTxF[:, None] * total / steps


def relevance(signed_BxLxTxF, frame_mask_BxT, parts_F, target_BxL) -> tuple[jax.Array, jax.Array]:
    """|signed| reduced to (per-frame distribution (B, L, T), per-part shares (B, L, P))."""
    magnitude = jnp.abs(signed_BxLxTxF)
    live_BxLx1 = (target_BxL != PAD)[..., None]
    per_frame = jnp.where(frame_mask_BxT[:, None] & live_BxLx1, jnp.sum(magnitude, -1), 0.0)
    per_part = jnp.einsum("bltf,fp->blp", magnitude, jax.nn.one_hot(parts_F, len(PARTS), dtype=magnitude.dtype))
    share = lambda x: jnp.where(live_BxLx1, x / jnp.maximum(jnp.sum(x, -1, keepdims=True), 1e-30), 0.0)
    return share(per_frame), share(per_part)


def rollout(cross_LxT, encoder_TxT, frame_mask_T) -> jax.Array:
    """Cross-attention rows carried through the encoder: cross @ (A + I) / 2, rows renormalised
    over the real frames (each real frame keeps half of its own state through the residual)."""
    identity = jnp.diag(frame_mask_T.astype(encoder_TxT.dtype))
    carried_LxT = jnp.where(frame_mask_T, cross_LxT @ ((encoder_TxT + identity) / 2), 0.0)
    return carried_LxT / jnp.maximum(jnp.sum(carried_LxT, -1, keepdims=True), 1e-30)


@functools.partial(jax.jit, static_argnames=("model", "method", "steps"))
def _gradient_method(model, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL, parts_F,
                     method: str, steps: int):
    def rows(frames, mask, fed, target):
        signed = signed_attributions(model, params, frames, mask, fed, target, method, steps)
        return (*relevance(signed, mask, parts_F, target), jnp.sum(signed, (2, 3)))

    return in_row_groups(rows, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL)


def _shift_right(tokens_BxL) -> np.ndarray:
    tokens_BxL = np.asarray(tokens_BxL)
    fed = np.concatenate([np.full((len(tokens_BxL), 1), BOS, np.int32), tokens_BxL[:, :-1]], 1)
    return np.where(fed == EOS, PAD, fed).astype(np.int32)


def attribute(params, batch, method: str = "integrated_gradients", *, tokens_BxL=None, parts_F=None,
              steps: int = IG_STEPS, model: Transformer | None = None) -> Attribution:
    """Attributes each target token of a batch to the frames (and body parts) it depends on.

    Args:
      params: a trained model's parameters (architecture read off their shapes).
      batch: `frames`, `frame_mask`, and `target` with `decoder_input` (as `slt_jax.data`
        yields them) unless `tokens_BxL` is given.
      method: one of METHODS (see the module docstring).
      tokens_BxL: the tokens to attribute instead of the references, e.g. a greedy record's
        `tokens_BxS` (fed shifted right after <bos>, as in training).
      parts_F: each feature's body part (`slt_jax.features.feature_parts(config.data)`); default:
        every feature counted as "body" (pass it for meaningful part shares).
      steps: integrated gradients' number of interpolation points.
      model: the module to apply `params` with (default: the Transformer they were made for);
        gradient methods only, e.g. a constructed model in a test.

    Returns:
      An Attribution (a pytree of jax arrays).
    """
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose from {', '.join(METHODS)}")
    target = np.asarray(batch["target"] if tokens_BxL is None else tokens_BxL, np.int32)
    fed = np.asarray(batch["decoder_input"]) if tokens_BxL is None else _shift_right(target)
    frames, mask = jnp.asarray(batch["frames"]), jnp.asarray(batch["frame_mask"])
    b, length = target.shape
    if method == "rollout":
        _, cache = run_with_cache(params, {"frames": frames, "frame_mask": mask, "decoder_input": fed})
        cross_BxLxT = jnp.mean(cache["decoder_0/cross_attn/pattern"], 1)
        encoder_BxTxT = jnp.mean(cache["encoder_0/self_attn/pattern"], 1)
        carried = jax.vmap(rollout)(cross_BxLxT, encoder_BxTxT, mask)
        nan = jnp.full((b, length), jnp.nan)
        return Attribution(jnp.where((target != PAD)[..., None], carried, 0.0),
                           jnp.full((b, length, len(PARTS)), jnp.nan), nan, jnp.asarray(target), method)
    parts_F = np.zeros(frames.shape[-1], np.int32) if parts_F is None else np.asarray(parts_F, np.int32)
    model = model or model_for(params, batch, length, sow=False)
    # Each position costs a backward pass: only the live ones are taken (rounded up to a multiple
    # of LIVE_MULTIPLE, so that batches share compilations); PAD positions get zeros.
    live = min(length, -(-(int(np.max(np.sum(target != PAD, 1), initial=1))) // LIVE_MULTIPLE) * LIVE_MULTIPLE)
    per_frame, per_part, signed = _gradient_method(model, params, frames, mask, jnp.asarray(fed[:, :live]),
                                                   jnp.asarray(target[:, :live]), jnp.asarray(parts_F), method, steps)
    pad = lambda x: jnp.pad(x, [(0, 0), (0, length - live)] + [(0, 0)] * (x.ndim - 2))
    return Attribution(pad(per_frame), pad(per_part), pad(signed), jnp.asarray(target), method)


# Interventions -----------------------------------------------------------------------------------


def _known(spans_BxLx2) -> np.ndarray:
    return (spans_BxLx2[..., 0] >= 0) & (spans_BxLx2[..., 1] > spans_BxLx2[..., 0])


def control_window(spans_Lx2: np.ndarray, k: int, n_frames: int) -> tuple[int, int] | None:
    """An equally long window to delete instead of sign k's own: centred on the other known sign
    closest to it in length (ties: the nearer one in the sentence), moved inside [0, n_frames);
    None when there is no other sign or every such window overlaps sign k."""
    start, end = spans_Lx2[k]
    width = end - start
    others = [j for j in range(len(spans_Lx2)) if j != k and spans_Lx2[j, 1] > spans_Lx2[j, 0] >= 0]
    for j in sorted(others, key=lambda j: (abs(spans_Lx2[j, 1] - spans_Lx2[j, 0] - width), abs(j - k))):
        first = int(np.clip((spans_Lx2[j, 0] + spans_Lx2[j, 1] - width) // 2, 0, max(n_frames - width, 0)))
        if first + width <= start or first >= end:
            return first, first + width
    return None


def sign_deletion_masks(spans_BxLx2, frame_mask_BxT, rescore_BxL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each rescored (sample, position) with a known span: (own (B, L, T), control (B, L, T),
    has_control (B, L)); the windows are cut to the real frames."""
    spans, masks = np.asarray(spans_BxLx2), np.asarray(frame_mask_BxT)
    b, length, t = spans.shape[0], spans.shape[1], masks.shape[1]
    frame_T = np.arange(t)
    own, control, has_control = np.zeros((b, length, t), bool), np.zeros((b, length, t), bool), np.zeros((b, length), bool)
    for row, k in zip(*np.nonzero(np.asarray(rescore_BxL) & _known(spans))):
        own[row, k] = masks[row] & (frame_T >= spans[row, k, 0]) & (frame_T < spans[row, k, 1])
        window = control_window(spans[row], k, int(np.flatnonzero(masks[row]).max(initial=-1)) + 1)
        if window is not None:
            control[row, k] = masks[row] & (frame_T >= window[0]) & (frame_T < window[1])
            has_control[row, k] = True
    return own, control, has_control


def sign_deletion(params, batch, rescore_BxL=None, model: Transformer | None = None) -> dict[str, np.ndarray]:
    """log p of each reference token intact, with its own sign deleted, and with an equally long
    window of another sign deleted (`control_window`).

    Args:
      params: model parameters.
      batch: `frames`, `frame_mask`, `decoder_input`, `target` and `gloss_spans`.
      rescore_BxL: the (sample, position) pairs to score (default: every one with a known span).
      model: as in `attribute`.

    Returns:
      `intact`, `own`, `control` (B, L) log-probabilities, NaN where not scored (no known span,
      or no control window for `control`).
    """
    target = np.asarray(batch["target"])
    rescore = _known(np.asarray(batch["gloss_spans"])) if rescore_BxL is None else np.asarray(rescore_BxL)
    own, control, has_control = sign_deletion_masks(batch["gloss_spans"], batch["frame_mask"], rescore)
    pairs = np.flatnonzero(np.any(own, -1))
    out = np.full((3,) + target.shape, np.nan, np.float32)
    if len(pairs):
        b, length = target.shape
        t = own.shape[-1]
        deleted = np.concatenate([np.zeros((len(pairs), t), bool), own.reshape(-1, t)[pairs],
                                  control.reshape(-1, t)[pairs]])
        pair_I = np.tile(pairs, 3)
        model = model or model_for(params, batch, length, sow=False)
        args = [jnp.asarray(batch[k]) for k in ("frames", "frame_mask", "decoder_input", "target")]
        score = functools.partial(item_log_probs, model, params, *args)
        values = in_chunks(score, t, (pair_I // length).astype(np.int32), (pair_I % length).astype(np.int32), deleted)
        out.reshape(3, -1)[:, pairs] = values.reshape(3, len(pairs))
        out[2][~has_control] = np.nan
    return {"intact": out[0], "own": out[1], "control": out[2]}


def _knock_out(head):
    """A method interceptor: the decoder cross-attention's head `head` contributes nothing."""
    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if context.method_name == "__call__" and module.name == "out" and module.parent.name == "cross_attn":
            mixed_BxQxHxE = args[0]
            keep_H = jnp.arange(mixed_BxQxHxE.shape[2]) != head
            args = (jnp.where(keep_H[:, None], mixed_BxQxHxE, 0.0),) + args[1:]
        return next_fun(*args, **kwargs)

    return interceptor


@functools.partial(jax.jit, static_argnames=("model", "max_len"))
def _knockouts(model, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL, max_len: int):
    # The interceptor acts while tracing: it must run inside this jit, around un-jitted callees.
    def one(head):
        with nn.intercept_methods(_knock_out(head)):
            return (reference_log_probs(model, params, frames_BxTxF, frame_mask_BxT, decoder_input_BxL, target_BxL),
                    greedy_decode.__wrapped__(model, params, frames_BxTxF, frame_mask_BxT, max_len))

    return jax.lax.map(one, jnp.arange(model.config.n_heads))


_reference_log_probs = jax.jit(reference_log_probs, static_argnums=0)


def head_knockout(params, batch, model: Transformer | None = None) -> dict[str, np.ndarray]:
    """Each decoder cross-attention head zeroed in turn (its share of the output projection's
    input set to 0; the other heads unchanged).

    Returns:
      `intact` (B, L): log p of the references; `log_probs` (H, B, L): the same with head h
      knocked out; `tokens` (H, B, L): the greedy translation with head h knocked out.
    """
    length = batch["target"].shape[1]
    model = model or model_for(params, batch, length, sow=False)
    args = [jnp.asarray(batch[k]) for k in ("frames", "frame_mask", "decoder_input", "target")]
    intact = _reference_log_probs(model, params, *args)
    log_probs, tokens = _knockouts(model, params, *args, length)
    return {"intact": np.asarray(intact), "log_probs": np.asarray(log_probs), "tokens": np.asarray(tokens)}


def patch_pairs(target_BxL, spans_BxLx2, rows_B) -> np.ndarray:
    """Patching items (C, 4): (row, position, donor row, donor position). For every gloss with a
    known span in the real rows, the donor is the next real row (cyclically) holding a known sign
    of another token; its first such sign is swapped in."""
    target, known = np.asarray(target_BxL), _known(np.asarray(spans_BxLx2)) & (np.asarray(target_BxL) > EOS)
    rows = np.flatnonzero(rows_B)
    items = []
    for i, row in enumerate(rows):
        donors = np.roll(rows, -i)[1:]
        for k in np.flatnonzero(known[row]):
            for donor in donors:
                other = np.flatnonzero(known[donor] & (target[donor] != target[row, k]))
                if len(other):
                    items.append((row, k, donor, other[0]))
                    break
    return np.asarray(items, np.int32).reshape(-1, 4)


@functools.partial(jax.jit, static_argnames=("model",))
def _patched_log_probs(model, params, memory_BxTxD, frame_mask_BxT, decoder_input_BxL, row_C, position_C, source_CxT,
                       patched_CxT):
    """Per item: log-softmax at `position` of row's decoder, the memory of its `patched` frames
    taken from the flat (B*T) frame index `source`, (C, V)."""
    b, t, d = memory_BxTxD.shape
    memory_CxTxD = jnp.where(patched_CxT[..., None], memory_BxTxD.reshape(b * t, d)[source_CxT], memory_BxTxD[row_C])
    logits = model.apply({"params": params}, decoder_input_BxL[row_C], memory_CxTxD, frame_mask_BxT[row_C],
                         method=Transformer.decode)
    return jax.nn.log_softmax(jnp.take_along_axis(logits, position_C[:, None, None], 1)[:, 0])


def activation_patching(params, batch, items_Cx4=None, model: Transformer | None = None) -> dict[str, np.ndarray]:
    """Swaps the encoder states of one sign's frames for those of another sample's sign.

    Args:
      params: model parameters.
      batch: `frames`, `frame_mask`, `decoder_input`, `target`, `gloss_spans` (and
        `sample_mask`, to pick donors among the real rows).
      items_Cx4: (row, position, donor row, donor position) per patch; default `patch_pairs`.
      model: as in `attribute`.

    Returns:
      `items` (C, 4); teacher-forced log p at the row's position of its own token and of the
      donor's token, before (`own_before`, `donor_before`) and after the patch (`own_after`,
      `donor_after`); `predicted` (C,): the argmax token at that position after the patch, and
      `own_token`, `donor_token`.
    """
    target, spans = np.asarray(batch["target"]), np.asarray(batch["gloss_spans"])
    items = patch_pairs(target, spans, batch.get("sample_mask", np.ones(len(target), bool))) if items_Cx4 is None \
        else np.asarray(items_Cx4, np.int32).reshape(-1, 4)
    row, position, donor, donor_position = items.T
    own_token, donor_token = target[row, position], target[donor, donor_position]
    empty = np.zeros(0, np.float32)
    if not len(items):
        return {"items": items, "own_before": empty, "donor_before": empty, "own_after": empty, "donor_after": empty,
                "predicted": np.zeros(0, np.int32), "own_token": own_token, "donor_token": donor_token}
    length, t = target.shape[1], batch["frame_mask"].shape[1]
    model = model or model_for(params, batch, length, sow=False)
    memory = model.apply({"params": params}, jnp.asarray(batch["frames"]), jnp.asarray(batch["frame_mask"]),
                         method=Transformer.encode)
    frame_T = np.arange(t)
    start, end = spans[row, position, 0, None], spans[row, position, 1, None]
    d_start, d_end = spans[donor, donor_position, 0, None], spans[donor, donor_position, 1, None]
    patched = (frame_T >= start) & (frame_T < end)
    source = d_start + ((frame_T - start) * (d_end - d_start)) // np.maximum(end - start, 1)
    source = donor[:, None] * t + np.clip(source, 0, t - 1)
    args = (jnp.asarray(batch["frame_mask"]), jnp.asarray(batch["decoder_input"]))
    score = lambda r, p, s, m: _patched_log_probs(model, params, memory, *args, r, p, s, m)
    unpatched_then_patched = np.concatenate([np.zeros_like(patched), patched])
    log_p = in_chunks(score, t, np.tile(row, 2), np.tile(position, 2), np.tile(source, (2, 1)).astype(np.int32),
                      unpatched_then_patched)
    before, after = log_p[: len(items)], log_p[len(items):]
    pick = lambda lp, tok: np.take_along_axis(lp, tok[:, None], 1)[:, 0]
    return {"items": items, "own_before": pick(before, own_token), "donor_before": pick(before, donor_token),
            "own_after": pick(after, own_token), "donor_after": pick(after, donor_token),
            "predicted": np.argmax(after, -1).astype(np.int32), "own_token": own_token, "donor_token": donor_token}
