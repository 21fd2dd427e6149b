"""The SignAttention Transformer in Flax linen, able to record what it attends to.

Axes: B batch, T source frames, L target positions, H heads, Q queries, K keys, D d_model,
F input features, E head size (D / H).

Architecture (the authors' PyTorch model, torch.nn.Transformer defaults made explicit): two
Conv1D + ReLU frame embeddings (F -> 128 -> D), sinusoidal positions, token embedding * sqrt(D),
post-LayerNorm encoder and decoder layers, a final LayerNorm after each stack, a linear output.
With `config.init="torch"` every parameter starts from the distribution PyTorch draws it from
(slt_jax.initializers); `config.dropout_rng` says how dropout masks are drawn (slt_jax.dropout).

Sown intermediates (collection 'intermediates', names after TransformerLens), only when the
config switches them on; with both switches off nothing is sown:
  sow_patterns   {encoder_0/self_attn, decoder_0/self_attn, decoder_0/cross_attn}/pattern
                   (B, H, Q, K): attention weights per head after the mask and softmax, before
                   attention dropout. Padded keys get exactly zero weight.
  sow_residuals  encoder_0/{attn_out, resid_mid, mlp_out, resid_post}
                 decoder_0/{attn_out, resid_mid, cross_attn_out, resid_cross, mlp_out, resid_post}
                   (B, Q, D): `*_out` is a residual branch after its output projection and
                   dropout, before the add; `resid_*` is the stream right after that add,
                   before its LayerNorm.
Flax stores each sown value as a tuple with one entry per call.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from slt_jax.config import ModelConfig
from slt_jax.dropout import Dropout
from slt_jax.initializers import INITIALIZERS

LAYER_NORM_EPS = 1e-5  # PyTorch's default


class KeysValues(NamedTuple):
    keys_BxKxHxE: jax.Array
    values_BxKxHxE: jax.Array


def sinusoidal_positions(max_len: int, d_model: int) -> np.ndarray:
    """The classic sin/cos table, (max_len, d_model): sin on even, cos on odd dimensions."""
    position = np.arange(max_len)[:, None]
    rate = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    table = np.zeros((max_len, d_model), np.float32)
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate)[:, : d_model // 2]
    return table


class Attention(nn.Module):
    """Multi-head dot-product attention whose keys/values can be computed once and reused."""

    config: ModelConfig

    def setup(self):
        c, inits = self.config, INITIALIZERS[self.config.init]
        heads, qkv_init = (c.n_heads, c.d_model // c.n_heads), inits.qkv_kernel(c.d_model)
        self.query = nn.DenseGeneral(heads, kernel_init=qkv_init)
        self.key = nn.DenseGeneral(heads, kernel_init=qkv_init)
        self.value = nn.DenseGeneral(heads, kernel_init=qkv_init)
        self.out = nn.DenseGeneral(c.d_model, axis=(-2, -1), kernel_init=inits.kernel)
        self.dropout = Dropout(c.dropout, c.dropout_rng)

    def keys_values(self, x_BxKxD: jax.Array) -> KeysValues:
        return KeysValues(self.key(x_BxKxD), self.value(x_BxKxD))

    def __call__(self, x_BxQxD, kv: KeysValues, mask, deterministic: bool) -> jax.Array:
        """Attends from x to precomputed keys/values; `mask` broadcasts to (B, H, Q, K)."""
        q_BxQxHxE = self.query(x_BxQxD)
        scale = 1.0 / math.sqrt(q_BxQxHxE.shape[-1])
        logits_BxHxQxK = jnp.einsum("bqhe,bkhe->bhqk", q_BxQxHxE * scale, kv.keys_BxKxHxE)
        logits_BxHxQxK = jnp.where(mask, logits_BxHxQxK, jnp.finfo(logits_BxHxQxK.dtype).min)
        pattern_BxHxQxK = jax.nn.softmax(logits_BxHxQxK, axis=-1)
        if self.config.sow_patterns:
            self.sow("intermediates", "pattern", pattern_BxHxQxK)
        weights = self.dropout(pattern_BxHxQxK, deterministic=deterministic)
        mixed_BxQxHxE = jnp.einsum("bhqk,bkhe->bqhe", weights, kv.values_BxKxHxE)
        return self.out(mixed_BxQxHxE)


class FeedForward(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x_BxQxD, deterministic: bool) -> jax.Array:
        c, inits = self.config, INITIALIZERS[self.config.init]
        # On rows (BQ, D): on (B, Q, D) XLA:CPU copies the hidden transposed for a weight gradient.
        x = x_BxQxD.reshape(-1, x_BxQxD.shape[-1])
        wi = nn.Dense(c.d_ff, kernel_init=inits.kernel, bias_init=inits.ff_bias(c.d_model), name="wi")
        h = Dropout(c.dropout, c.dropout_rng)(nn.relu(wi(x)), deterministic=deterministic)
        wo = nn.Dense(c.d_model, kernel_init=inits.kernel, bias_init=inits.ff_bias(c.d_ff), name="wo")
        return wo(h).reshape(x_BxQxD.shape)


def _add_branch(module: nn.Module, x, branch, branch_name: str, resid_name: str):
    """The residual add, recording the branch and the sum when residuals are sown."""
    total = x + branch
    if module.config.sow_residuals:
        module.sow("intermediates", branch_name, branch)
        module.sow("intermediates", resid_name, total)
    return total


class EncoderLayer(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x_BxTxD, mask, deterministic: bool) -> jax.Array:
        c = self.config
        drop = lambda h: Dropout(c.dropout, c.dropout_rng)(h, deterministic=deterministic)
        attn = Attention(c, name="self_attn")
        attn_out = drop(attn(x_BxTxD, attn.keys_values(x_BxTxD), mask, deterministic))
        x = nn.LayerNorm(LAYER_NORM_EPS)(_add_branch(self, x_BxTxD, attn_out, "attn_out", "resid_mid"))
        mlp_out = drop(FeedForward(c, name="mlp")(x, deterministic))
        return nn.LayerNorm(LAYER_NORM_EPS)(_add_branch(self, x, mlp_out, "mlp_out", "resid_post"))


class DecoderLayer(nn.Module):
    """Self-attention over the target prefix, cross-attention to the frames, feed-forward."""

    config: ModelConfig

    def setup(self):
        c = self.config
        self.self_attn = Attention(c)
        self.cross_attn = Attention(c)
        self.mlp = FeedForward(c)
        self.norms = [nn.LayerNorm(LAYER_NORM_EPS) for _ in range(3)]
        self.dropout = Dropout(c.dropout, c.dropout_rng)

    def __call__(self, y_BxLxD, self_kv, self_mask, memory_kv, cross_mask, deterministic: bool):
        """`self_kv` are the prefix's keys/values (from `y` itself, or a decoding cache)."""
        drop = lambda h: self.dropout(h, deterministic=deterministic)
        attn_out = drop(self.self_attn(y_BxLxD, self_kv, self_mask, deterministic))
        y = self.norms[0](_add_branch(self, y_BxLxD, attn_out, "attn_out", "resid_mid"))
        cross_out = drop(self.cross_attn(y, memory_kv, cross_mask, deterministic))
        y = self.norms[1](_add_branch(self, y, cross_out, "cross_attn_out", "resid_cross"))
        mlp_out = drop(self.mlp(y, deterministic))
        return self.norms[2](_add_branch(self, y, mlp_out, "mlp_out", "resid_post"))


class DecoderCache(NamedTuple):
    """What incremental decoding keeps per decoder layer: the prefix's keys/values, and the
    frames' keys/values transposed to (B, H, E, T), the layout the step's attention dot reads
    (kept as (B, T, H, E), they were transposed again at every step on XLA:CPU)."""

    self_kv: tuple[KeysValues, ...]
    memory_kv_BxHxExT: tuple[KeysValues, ...]


class Transformer(nn.Module):
    """Pose frames -> gloss/text tokens. `__call__` is the teacher-forced training pass."""

    config: ModelConfig

    def setup(self):
        c, inits = self.config, INITIALIZERS[self.config.init]
        outside = lambda fan_in: dict(kernel_init=inits.outside_kernel(fan_in), bias_init=inits.outside_bias(fan_in))
        conv = lambda inputs, features: nn.Conv(features, (c.kernel_size,), padding="SAME",
                                                **outside(inputs * c.kernel_size))
        self.frame_convs = [conv(c.n_features, c.frame_hidden), conv(c.frame_hidden, c.d_model)]
        self.token_embed = nn.Embed(c.vocab_size, c.d_model, embedding_init=inits.embedding)
        self.positions = sinusoidal_positions(c.max_len, c.d_model)
        self.pos_dropout = Dropout(c.pos_dropout, c.dropout_rng)
        self.encoder = [EncoderLayer(c, name=f"encoder_{i}") for i in range(c.n_encoder_layers)]
        self.encoder_norm = nn.LayerNorm(LAYER_NORM_EPS)
        self.decoder = [DecoderLayer(c, name=f"decoder_{i}") for i in range(c.n_decoder_layers)]
        self.decoder_norm = nn.LayerNorm(LAYER_NORM_EPS)
        self.logits = nn.Dense(c.vocab_size, **outside(c.d_model))

    def __call__(self, frames_BxTxF, frame_mask_BxT, tokens_BxL, deterministic: bool = True):
        memory_BxTxD = self.encode(frames_BxTxF, frame_mask_BxT, deterministic)
        return self.decode(tokens_BxL, memory_BxTxD, frame_mask_BxT, deterministic)

    def encode(self, frames_BxTxF, frame_mask_BxT, deterministic: bool = True) -> jax.Array:
        x = frames_BxTxF
        for conv in self.frame_convs:
            x = nn.relu(conv(x))
        x = self.pos_dropout(x + self.positions[: x.shape[1]], deterministic=deterministic)
        mask = frame_mask_BxT[:, None, None, :]
        for layer in self.encoder:
            x = layer(x, mask, deterministic)
        return self.encoder_norm(x)

    def embed_tokens(self, tokens_BxL, offset=0, deterministic: bool = True) -> jax.Array:
        y = self.token_embed(tokens_BxL) * math.sqrt(self.config.d_model)
        positions = jax.lax.dynamic_slice_in_dim(self.positions, offset, tokens_BxL.shape[1])
        return self.pos_dropout(y + positions, deterministic=deterministic)

    def decode(self, tokens_BxL, memory_BxTxD, frame_mask_BxT, deterministic: bool = True,
               causal: bool = True, prefix_length=None) -> jax.Array:
        """Logits (B, L, V) for a whole target prefix; `causal=False` lets every position see
        every other (what the authors' greedy re-run of the prefix did). With `prefix_length`
        (possibly traced) only the first `prefix_length` positions are keys, so a prefix padded to
        a static length decodes as if it stopped there."""
        y = self.embed_tokens(tokens_BxL, deterministic=deterministic)
        length = tokens_BxL.shape[1]
        self_mask = jnp.tril(jnp.ones((length, length), bool)) if causal else jnp.ones((length, length), bool)
        if prefix_length is not None:
            self_mask = self_mask & (jnp.arange(length) < prefix_length)
        cross_mask = frame_mask_BxT[:, None, None, :]
        for layer in self.decoder:
            y = layer(y, layer.self_attn.keys_values(y), self_mask, layer.cross_attn.keys_values(memory_BxTxD),
                      cross_mask, deterministic)
        return self.logits(self.decoder_norm(y))

    def init_cache(self, memory_BxTxD, max_len: int) -> DecoderCache:
        """An empty prefix cache of `max_len` positions and the frames' keys/values per layer."""
        c = self.config
        b = memory_BxTxD.shape[0]
        zeros = jnp.zeros((b, max_len, c.n_heads, c.d_model // c.n_heads), memory_BxTxD.dtype)
        transposed = lambda kv: KeysValues(*(x.transpose(0, 2, 3, 1) for x in kv))  # (B, T, H, E) -> (B, H, E, T)
        return DecoderCache(
            self_kv=tuple(KeysValues(zeros, zeros) for _ in self.decoder),
            memory_kv_BxHxExT=tuple(transposed(layer.cross_attn.keys_values(memory_BxTxD)) for layer in self.decoder),
        )

    def decode_step(self, token_B, position, cache: DecoderCache, frame_mask_BxT):
        """One decoding step at `position` for the newest token; returns (logits (B, V), cache)."""
        y = self.embed_tokens(token_B[:, None], offset=position)
        max_len = cache.self_kv[0].keys_BxKxHxE.shape[1]
        self_mask = (jnp.arange(max_len) <= position)[None, None, None, :]
        cross_mask = frame_mask_BxT[:, None, None, :]
        new_self_kv = []
        for layer, kv, memory_kv in zip(self.decoder, cache.self_kv, cache.memory_kv_BxHxExT):
            new = layer.self_attn.keys_values(y)
            kv = KeysValues(*(jax.lax.dynamic_update_slice_in_dim(old, n, position, axis=1)
                              for old, n in zip(kv, new)))
            new_self_kv.append(kv)
            memory_kv = KeysValues(*(x.transpose(0, 3, 1, 2) for x in memory_kv))  # folded into the dot
            y = layer(y, kv, self_mask, memory_kv, cross_mask, deterministic=True)
        logits_BxV = self.logits(self.decoder_norm(y))[:, 0]
        return logits_BxV, cache._replace(self_kv=tuple(new_self_kv))


def count_params(params) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))
