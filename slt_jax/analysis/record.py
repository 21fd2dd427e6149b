"""What a trained model attends to while it translates a batch, as one pytree of arrays.

`extract_attention(params, batch)` runs jit-compiled greedy decoding (or teacher forcing) and
records, for every sample and decoding step, the attention weights and the attention blocks'
outputs; `run_with_cache(params, batch)` returns a teacher-forced pass's logits with every sown
tensor. Both need nothing but the parameters and a batch: the architecture is read off the
parameter shapes (`config_from_params`).

Axes: B batch, S decoding steps (= max decoding length), Q prefix rows (query positions, Q = S),
H heads, T frames, D d_model, F input features.

Modes (REFERENCE §2; the model file's `decode` and `decode_step`):
  paper   the authors' greedy loop: at step s the whole prefix <bos> y1 .. ys is re-run through
          the decoder WITHOUT a causal mask, so every prefix row sees every other one. The block
          outputs are kept for all prefix rows, so the authors' signed mean over rows and
          dimensions can be taken. With one decoder layer the newest row, hence the logits and the
          greedy tokens, are the same as in causal mode; the other prefix rows differ.
  causal  the clean one: incremental decoding with a key/value cache under the causal mask the
          model was trained with. Prefix row q at step s is the newest row of step q (causally
          decoded rows never change), so both modes fill the same fields.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct, traverse_util

from slt_jax import data
from slt_jax.config import BOS, EOS, PAD, ModelConfig
from slt_jax.decode import most_probable
from slt_jax.model import Transformer

MODES = ("paper", "causal")
GROUP_FRAMES = 1024  # rows x frames the compiled analyses process at a time (`in_row_groups`)
VOCAB_MULTIPLE = 64  # `pad_vocab`


@struct.dataclass
class AttentionRecord:
    """Everything one greedy (or teacher-forced) translation of a batch attended to.

    Step s feeds <bos> y1 .. ys and produces y(s+1); steps at or after `length_B` ran on padding
    and hold meaningless values (`step_mask_BxS` marks the real ones). Attention weights are
    per head, after the mask and softmax; padded frames and not-yet-decoded positions get exactly
    zero. Block outputs are the decoder's self- and cross-attention branches after the output
    projection, before the residual add and LayerNorm (the model's `attn_out`, `cross_attn_out`).

    Attributes:
      tokens_BxS: the token of each step (greedy argmax, or the reference when teacher-forced);
        <eos> then PAD after the end, like `greedy_decode`.
      length_B: decoding calls made, <eos> step included (number of glosses + 1 when <eos> came).
      log_probs_BxS: log-probability the model gave `tokens_BxS` at each step (0 after the end).
      cross_pattern_BxSxHxT: decoder cross-attention of the newest position at each step.
      self_pattern_BxSxHxS: decoder self-attention of the newest position over the S positions.
      attn_out_BxSxQxD: self-attention block output of every prefix row q <= s at step s (0 after).
      cross_attn_out_BxSxQxD: cross-attention block output, likewise.
      encoder_pattern_BxHxTxT: encoder self-attention (queries x keys).
      frames_BxTxF, frame_mask_BxT: the batch's input and real-frame mask.
      target_BxS: the batch's references (y1 .. yn <eos> PAD ..., cut or PAD-extended to S).
      gloss_spans_BxSx2: [start, end) sampled frames of the sign each reference token renders, -1
        when unknown or for a word no gloss carries (`examples.target_spans`).
      index_B, sample_mask_B: the batch's sample positions and real-row mask.
      mode: "paper" or "causal" (see the module docstring).
      teacher_forced: whether the references were fed instead of the model's own tokens.
    """

    tokens_BxS: jax.Array
    length_B: jax.Array
    log_probs_BxS: jax.Array
    cross_pattern_BxSxHxT: jax.Array
    self_pattern_BxSxHxS: jax.Array
    attn_out_BxSxQxD: jax.Array
    cross_attn_out_BxSxQxD: jax.Array
    encoder_pattern_BxHxTxT: jax.Array
    frames_BxTxF: jax.Array
    frame_mask_BxT: jax.Array
    target_BxS: jax.Array
    gloss_spans_BxSx2: jax.Array
    index_B: jax.Array
    sample_mask_B: jax.Array
    mode: str = struct.field(pytree_node=False, default="paper")
    teacher_forced: bool = struct.field(pytree_node=False, default=False)

    @property
    def step_mask_BxS(self) -> jax.Array:
        return jnp.arange(self.tokens_BxS.shape[1]) < self.length_B[:, None]

    @property
    def correct_B(self) -> jax.Array:
        """The paper's "correctly translated": the tokens equal the reference exactly."""
        return jnp.all(self.tokens_BxS == self.target_BxS, axis=1) & self.sample_mask_B


def config_from_params(params, max_len: int = ModelConfig.max_len, sow: bool = True) -> ModelConfig:
    """The ModelConfig that `params` were made for, read off their shapes.

    Dropout rates are irrelevant at inference and `max_len` only bounds the positional table
    (its rows do not depend on its length), so the model computes what training computed.
    `sow` switches on every sown intermediate.
    """
    conv_in, conv_out = params["frame_convs_0"]["kernel"], params["frame_convs_1"]["kernel"]  # (K, in, out)
    count = lambda prefix: sum(name.startswith(prefix) and name[len(prefix):].isdigit() for name in params)
    return ModelConfig(
        vocab_size=params["token_embed"]["embedding"].shape[0],
        n_features=conv_in.shape[1],
        frame_hidden=conv_in.shape[2],
        kernel_size=conv_in.shape[0],
        d_model=conv_out.shape[2],
        n_heads=params["decoder_0"]["self_attn"]["query"]["kernel"].shape[1],  # (D, H, E)
        d_ff=params["decoder_0"]["mlp"]["wi"]["kernel"].shape[1],
        n_encoder_layers=count("encoder_"),
        n_decoder_layers=count("decoder_"),
        max_len=max_len,
        sow_patterns=sow,
        sow_residuals=sow,
    )


def model_for(params, batch, max_len: int, sow: bool = True) -> Transformer:
    """The Transformer of `params`, its positional table long enough for `batch` and `max_len` steps."""
    length = max(ModelConfig.max_len, batch["frames"].shape[1], max_len)
    return Transformer(config_from_params(params, length, sow))


def pad_vocab(params, multiple: int = VOCAB_MULTIPLE):
    """The parameters with the vocabulary padded to a multiple of `multiple` by tokens never fed
    and never predicted (logit -1e9: exp underflows to exactly 0), so every log-probability and
    argmax over the real tokens is what it was. Configs that differ only in their vocabulary
    (gloss16 and text16) then share every compiled program."""
    vocab = params["logits"]["bias"].shape[0]
    pad = -vocab % multiple
    if not pad:
        return params
    logits, embed = params["logits"], params["token_embed"]["embedding"]
    return params | jax.device_put({
        "logits": logits | {"kernel": np.pad(logits["kernel"], ((0, 0), (0, pad))),
                            "bias": np.pad(logits["bias"], (0, pad), constant_values=-1e9)},
        "token_embed": params["token_embed"] | {"embedding": np.pad(embed, ((0, pad), (0, 0)))},
    })


def pad_frames(batch: dict, length: int) -> dict:
    """The batch with its frame axis padded to `length` with masked zero frames.

    With pointwise frame convolutions (model.kernel_size 1, every preset) no record or analysis
    changes, so with every batch of a split padded to its longest bucket each compiled program
    serves the whole split (and every seed of a config), not one bucket; the random deletions stay
    the same too (`jax.random.uniform` of a longer row extends the shorter one's). Wider kernels
    see past the last real frame: the second convolution reads the first one's output on the
    padding, so a sample that filled its bucket would change.
    """
    pad = length - batch["frames"].shape[1]
    return batch | {"frames": np.pad(batch["frames"], ((0, 0), (0, pad), (0, 0))),
                    "frame_mask": np.pad(batch["frame_mask"], ((0, 0), (0, pad)))}


def split_length(examples, config) -> int:
    """The frame length to pad every batch of a split to (`pad_frames`): the split's longest length
    bucket when the frame convolutions are pointwise, else 0 (each batch keeps its own)."""
    if config.model.kernel_size != 1:
        return 0
    return max(data.bucket_length(len(ex.frames), config.data) for ex in examples)


def _fit(x_BxL, length: int, fill) -> np.ndarray:
    """Cuts or extends the second axis to `length` (in numpy: no per-shape compilation)."""
    x_BxL = np.asarray(x_BxL)[:, :length]
    pad = [(0, 0), (0, length - x_BxL.shape[1])] + [(0, 0)] * (x_BxL.ndim - 2)
    return np.pad(x_BxL, pad, constant_values=fill)


def extract_attention(params, batch, mode: str = "paper", *, max_len: int | None = None,
                      teacher_forced: bool = False, layer: int = 0) -> AttentionRecord:
    """Translates a batch and records what the model attended to at every step.

    Args:
      params: a trained model's parameters (e.g. `load_run(workdir).params`); the architecture
        is read off their shapes.
      batch: a dict as `slt_jax.data.make_batches` yields: `frames` (B, T, F), `frame_mask`
        (B, T) and `target` (B, L) are required; `gloss_spans`, `index` and `sample_mask` are
        passed through when present.
      mode: "paper" (the authors' non-causal prefix re-run) or "causal" (cached, causal); see
        the module docstring.
      max_len: decoding steps S; defaults to the references' length L.
      teacher_forced: feed the references instead of the greedy tokens.
      layer: which encoder and decoder layer to record (the authors' model has one of each).

    Returns:
      An AttentionRecord (a pytree of jax arrays; slice samples with `jax.tree.map`).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    max_len = max_len or batch["target"].shape[1]
    b = batch["frame_mask"].shape[0]
    passed = (
        _fit(batch["target"], max_len, PAD),
        _fit(batch.get("gloss_spans", np.full((b, max_len, 2), -1, np.int32)), max_len, -1),
        np.asarray(batch.get("index", np.arange(b, dtype=np.int32))),
        np.asarray(batch.get("sample_mask", np.ones(b, bool))),
    )
    # teacher_forced is traced, not static: greedy and teacher-forced records share one compilation.
    record = _extract(model_for(params, batch, max_len), params, jnp.asarray(batch["frames"]),
                      jnp.asarray(batch["frame_mask"]), *passed, jnp.asarray(teacher_forced), mode, max_len, layer)
    return record.replace(teacher_forced=bool(teacher_forced))


def _sown(state, name: str) -> jax.Array:
    """One sown value by its path (Flax keeps a tuple with one entry per call)."""
    return traverse_util.flatten_dict(state["intermediates"], sep="/")[name][0]


def in_row_groups(fn, frames_BxTxF, *xs_B):
    """`fn(frames_BxTxF, *xs_B)` for a row-wise `fn`, run on groups of rows at a time (a `lax.map`
    inside the caller's jit) and joined along the rows: the same values, with a working set of
    about GROUP_FRAMES frames. The programs here are bound by memory traffic more than arithmetic:
    on the 2-core VM, greedy decoding of 64 rows x 128 frames took 0.11 s of CPU in one piece and
    0.05 s in groups of 8 or 16 rows, for the same compilation time.
    """
    b, t = frames_BxTxF.shape[:2]
    rows = max(d for d in range(1, b + 1) if b % d == 0 and d * t <= max(GROUP_FRAMES, t))
    if rows == b:
        return fn(frames_BxTxF, *xs_B)
    grouped = [x.reshape((b // rows, rows) + x.shape[1:]) for x in (frames_BxTxF, *xs_B)]
    out = jax.lax.map(lambda g: fn(*g), grouped)
    return jax.tree.map(lambda y: y.reshape((b,) + y.shape[2:]), out)


@functools.partial(jax.jit, static_argnames=("model", "mode", "max_len", "layer"))
def _extract(model: Transformer, params, frames_BxTxF, frame_mask_BxT, target_BxS, gloss_spans_BxSx2,
             index_B, sample_mask_B, teacher_forced, mode: str, max_len: int, layer: int) -> AttentionRecord:
    record = functools.partial(_record, model, params, teacher_forced=teacher_forced, mode=mode, max_len=max_len,
                               layer=layer)
    return in_row_groups(record, frames_BxTxF, frame_mask_BxT, target_BxS, gloss_spans_BxSx2, index_B, sample_mask_B)


def _record(model: Transformer, params, frames_BxTxF, frame_mask_BxT, target_BxS, gloss_spans_BxSx2,
            index_B, sample_mask_B, teacher_forced, mode: str, max_len: int, layer: int) -> AttentionRecord:
    variables = {"params": params}
    apply = functools.partial(model.apply, variables, mutable=["intermediates"])
    memory_BxTxD, state = apply(frames_BxTxF, frame_mask_BxT, method=Transformer.encode)
    encoder_pattern_BxHxTxT = _sown(state, f"encoder_{layer}/self_attn/pattern")
    b, rows = frames_BxTxF.shape[0], jnp.arange(max_len)
    names = ("self_attn/pattern", "cross_attn/pattern", "attn_out", "cross_attn_out")

    def paper_step(fed_BxS, cache, position):
        logits_BxSxV, state = apply(fed_BxS, memory_BxTxD, frame_mask_BxT, causal=False,
                                    prefix_length=position + 1, method=Transformer.decode)
        self_p, cross_p, attn_out, cross_out = (_sown(state, f"decoder_{layer}/{n}") for n in names)
        prefix = lambda x_BxQxD: jnp.where((rows <= position)[:, None], x_BxQxD, 0.0)
        return logits_BxSxV[:, position], cache, (self_p[:, :, position], cross_p[:, :, position],
                                                  prefix(attn_out), prefix(cross_out))

    def causal_step(fed_BxS, cache, position):
        (logits_BxV, cache), state = apply(fed_BxS[:, position], position, cache, frame_mask_BxT,
                                           method=Transformer.decode_step)
        self_p, cross_p, attn_out, cross_out = (_sown(state, f"decoder_{layer}/{n}") for n in names)
        return logits_BxV, cache, (self_p[:, :, 0], cross_p[:, :, 0], attn_out[:, 0], cross_out[:, 0])

    def step(carry, position):
        fed_BxS, cache, done_B = carry
        logits_BxV, cache, sown = (paper_step if mode == "paper" else causal_step)(fed_BxS, cache, position)
        chosen_B = jnp.where(teacher_forced, target_BxS[:, position], most_probable(logits_BxV))
        token_B = jnp.where(done_B, PAD, chosen_B.astype(jnp.int32))
        log_prob_B = jnp.take_along_axis(jax.nn.log_softmax(logits_BxV), token_B[:, None], axis=1)[:, 0]
        fed_BxS = fed_BxS.at[:, position + 1].set(token_B, mode="drop")
        return (fed_BxS, cache, done_B | (token_B == EOS)), (token_B, jnp.where(done_B, 0.0, log_prob_B), sown)

    fed_BxS = jnp.full((b, max_len), PAD, jnp.int32).at[:, 0].set(BOS)
    cache = model.apply(variables, memory_BxTxD, max_len, method=Transformer.init_cache) if mode == "causal" else None
    _, (tokens_SxB, log_probs_SxB, sown) = jax.lax.scan(step, (fed_BxS, cache, jnp.zeros(b, bool)), rows)
    self_p, cross_p, attn_out, cross_out = (jnp.moveaxis(x, 0, 1) for x in sown)
    if mode == "causal":  # prefix row q at step s is the newest row of step q
        below_1xSxQx1 = (rows[None, :] <= rows[:, None])[None, :, :, None]
        attn_out, cross_out = (jnp.where(below_1xSxQx1, x_BxQxD[:, None], 0.0) for x_BxQxD in (attn_out, cross_out))
    tokens_BxS = tokens_SxB.T
    ended_B = jnp.any(tokens_BxS == EOS, axis=1)
    return AttentionRecord(
        tokens_BxS=tokens_BxS,
        length_B=jnp.where(ended_B, jnp.argmax(tokens_BxS == EOS, axis=1) + 1, max_len).astype(jnp.int32),
        log_probs_BxS=log_probs_SxB.T,
        cross_pattern_BxSxHxT=cross_p,
        self_pattern_BxSxHxS=self_p,
        attn_out_BxSxQxD=attn_out,
        cross_attn_out_BxSxQxD=cross_out,
        encoder_pattern_BxHxTxT=encoder_pattern_BxHxTxT,
        frames_BxTxF=frames_BxTxF,
        frame_mask_BxT=frame_mask_BxT,
        target_BxS=target_BxS,
        gloss_spans_BxSx2=gloss_spans_BxSx2,
        index_B=index_B,
        sample_mask_B=sample_mask_B,
        mode=mode,
    )


def run_with_cache(params, batch, causal: bool = True) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A teacher-forced pass on `batch["decoder_input"]` with every intermediate recorded.

    Args:
      params: a model's parameters (architecture read off their shapes).
      batch: needs `frames`, `frame_mask` and `decoder_input`.
      causal: False runs the target without a causal mask, as the authors' decoding did.

    Returns:
      (logits (B, L, V), cache): `cache` maps the sown names of `slt_jax.model`, e.g.
      "encoder_0/self_attn/pattern" (B, H, T, T), "decoder_0/cross_attn/pattern" (B, H, L, T),
      "decoder_0/attn_out" (B, L, D), to arrays.
    """
    model = model_for(params, batch, batch["decoder_input"].shape[1])
    return _run_with_cache(model, params, jnp.asarray(batch["frames"]), jnp.asarray(batch["frame_mask"]),
                           jnp.asarray(batch["decoder_input"]), causal)


@functools.partial(jax.jit, static_argnames=("model", "causal"))
def _run_with_cache(model: Transformer, params, frames_BxTxF, frame_mask_BxT, tokens_BxL, causal: bool):
    def forward(module: Transformer):
        memory_BxTxD = module.encode(frames_BxTxF, frame_mask_BxT)
        return module.decode(tokens_BxL, memory_BxTxD, frame_mask_BxT, causal=causal)

    logits_BxLxV, state = model.apply({"params": params}, mutable=["intermediates"], method=forward)
    return logits_BxLxV, {name: values[0] for name, values in
                          traverse_util.flatten_dict(state["intermediates"], sep="/").items()}
