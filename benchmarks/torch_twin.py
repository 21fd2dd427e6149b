"""The authors' PyTorch architecture (REFERENCE §1), rebuilt to time against on the same inputs.

Kernel-1 Conv1d frame embedding 150 -> 128 -> d with a ReLU after each, sinusoidal positions
with dropout 0.1 on source and target, token embedding * sqrt(d), `torch.nn.Transformer` with
one encoder and one decoder layer and its defaults (8 heads, feed-forward 2048, dropout 0.2,
post-LayerNorm), then a linear layer to the vocabulary. Greedy decoding re-runs the decoder
over the whole prefix at every step, without a causal mask, as the authors' `predict_proba`.
Needs the `bench` extra (`pip install -e .[bench]`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from slt_jax.config import BOS, PAD


class PositionalEncoding(nn.Module):
    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 512):
        super().__init__()
        position = torch.arange(max_len)[:, None]
        rate = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * rate)
        table[:, 1::2] = torch.cos(position * rate)
        self.register_buffer("table", table)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x_BxLxD: torch.Tensor) -> torch.Tensor:
        return self.dropout(x_BxLxD + self.table[: x_BxLxD.shape[1]])


class KeypointsTransformer(nn.Module):
    """Frames (B, T, F) and target prefix (B, L) -> logits (B, L, V). The defaults are the
    authors' (`nn.Transformer`'s own for heads and feed-forward width); tests shrink them."""

    def __init__(self, vocab_size: int, d_model: int = 16, n_heads: int = 8, d_ff: int = 2048,
                 n_features: int = 150, frame_hidden: int = 128):
        super().__init__()
        self.d_model = d_model
        self.frame_embed = nn.Sequential(nn.Conv1d(n_features, frame_hidden, 1), nn.ReLU(),
                                         nn.Conv1d(frame_hidden, d_model, 1), nn.ReLU())
        self.token_embed = nn.Embedding(vocab_size, d_model)
        self.positions = PositionalEncoding(d_model)
        self.transformer = nn.Transformer(d_model, nhead=n_heads, num_encoder_layers=1, num_decoder_layers=1,
                                          dim_feedforward=d_ff, dropout=0.2, batch_first=True)
        self.generator = nn.Linear(d_model, vocab_size)

    def encode(self, frames_BxTxF, padding_BxT) -> torch.Tensor:
        x = self.frame_embed(frames_BxTxF.transpose(1, 2)).transpose(1, 2)
        return self.transformer.encoder(self.positions(x), src_key_padding_mask=padding_BxT)

    def decode(self, tokens_BxL, memory_BxTxD, padding_BxT, causal: bool = True) -> torch.Tensor:
        y = self.positions(self.token_embed(tokens_BxL) * math.sqrt(self.d_model))
        length = tokens_BxL.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length) if causal else None
        y = self.transformer.decoder(y, memory_BxTxD, tgt_mask=mask, tgt_is_causal=causal,
                                     memory_key_padding_mask=padding_BxT)
        return self.generator(y)

    def forward(self, frames_BxTxF, frame_mask_BxT, tokens_BxL) -> torch.Tensor:
        padding = ~frame_mask_BxT
        return self.decode(tokens_BxL, self.encode(frames_BxTxF, padding), padding)


def _attention(attn: nn.MultiheadAttention, p) -> dict:
    dense = lambda name: np.asarray(p[name]["kernel"]).reshape(attn.embed_dim, -1).T  # (out, in)
    return {"in_proj_weight": np.concatenate([dense(n) for n in ("query", "key", "value")]),
            "in_proj_bias": np.concatenate([np.ravel(p[n]["bias"]) for n in ("query", "key", "value")]),
            "out_proj.weight": np.asarray(p["out"]["kernel"]).reshape(-1, attn.embed_dim).T,
            "out_proj.bias": p["out"]["bias"]}


def _mlp_and_norms(p, norms: tuple[str, ...]) -> dict:
    weights = {"linear1.weight": np.asarray(p["mlp"]["wi"]["kernel"]).T, "linear1.bias": p["mlp"]["wi"]["bias"],
               "linear2.weight": np.asarray(p["mlp"]["wo"]["kernel"]).T, "linear2.bias": p["mlp"]["wo"]["bias"]}
    for i, name in enumerate(norms):
        weights |= {f"norm{i + 1}.weight": p[name]["scale"], f"norm{i + 1}.bias": p[name]["bias"]}
    return weights


def copy_flax_params(model: KeypointsTransformer, params) -> None:
    """Loads the parameters of a one-layer `slt_jax.model.Transformer` into `model`, so both
    compute the same function (and the same greedy tokens) on the same inputs."""
    conv = lambda p: {"weight": np.asarray(p["kernel"]).transpose(2, 1, 0), "bias": p["bias"]}
    t = model.transformer
    parts = {
        "frame_embed.0": conv(params["frame_convs_0"]), "frame_embed.2": conv(params["frame_convs_1"]),
        "token_embed": {"weight": params["token_embed"]["embedding"]},
        "transformer.encoder.layers.0.self_attn": _attention(t.encoder.layers[0].self_attn,
                                                             params["encoder_0"]["self_attn"]),
        "transformer.encoder.layers.0": _mlp_and_norms(params["encoder_0"], ("LayerNorm_0", "LayerNorm_1")),
        "transformer.encoder.norm": {"weight": params["encoder_norm"]["scale"], "bias": params["encoder_norm"]["bias"]},
        "transformer.decoder.layers.0.self_attn": _attention(t.decoder.layers[0].self_attn,
                                                             params["decoder_0"]["self_attn"]),
        "transformer.decoder.layers.0.multihead_attn": _attention(t.decoder.layers[0].multihead_attn,
                                                                  params["decoder_0"]["cross_attn"]),
        "transformer.decoder.layers.0": _mlp_and_norms(params["decoder_0"], ("norms_0", "norms_1", "norms_2")),
        "transformer.decoder.norm": {"weight": params["decoder_norm"]["scale"], "bias": params["decoder_norm"]["bias"]},
        "generator": {"weight": np.asarray(params["logits"]["kernel"]).T, "bias": params["logits"]["bias"]},
    }
    state = {f"{prefix}.{name}": torch.tensor(np.array(value, np.float32))
             for prefix, weights in parts.items() for name, value in weights.items()}
    state["positions.table"] = model.positions.table
    model.load_state_dict(state, strict=True)


def train_step(model: KeypointsTransformer, optimizer: torch.optim.Optimizer, batch: dict) -> torch.Tensor:
    """One Adam step on the cross-entropy over non-PAD targets; returns the loss."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    logits = model(batch["frames"], batch["frame_mask"], batch["decoder_input"])
    loss = nn.functional.cross_entropy(logits.flatten(0, 1), batch["target"].flatten(), ignore_index=PAD)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def greedy_decode(model: KeypointsTransformer, frames_BxTxF, frame_mask_BxT, max_len: int) -> torch.Tensor:
    """The authors' greedy loop: encode once, then re-run the whole prefix each step (no cache,
    no causal mask) and append its newest argmax; (B, max_len) tokens without the <bos>."""
    model.eval()
    padding = ~frame_mask_BxT
    memory = model.encode(frames_BxTxF, padding)
    tokens = torch.full((frames_BxTxF.shape[0], 1), BOS, dtype=torch.long)
    for _ in range(max_len):
        logits = model.decode(tokens, memory, padding, causal=False)
        tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tokens[:, 1:]
