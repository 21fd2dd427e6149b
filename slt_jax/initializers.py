"""How each kind of parameter starts (`model.init`): as in the authors' PyTorch model, or Flax's
defaults.

torch.nn.Transformer applies xavier_uniform_ to its matrices, q/k/v drawn as slices of one fused
(3D, D) in_proj_weight; the Conv1d frame embeddings and the output Linear keep PyTorch's default
U(+-1/sqrt(fan_in)) weights and biases, as do the feed-forward's biases. Flax draws LeCun-normal
kernels outside the Transformer, xavier over each (D, D) q/k/v, and zero biases.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn

Initializer = nn.initializers.Initializer


def _uniform(bound: float, fan_in: int | None = None) -> Initializer:
    """U(-bound, bound). With `fan_in`, a kernel (more than one axis, inputs before the last)
    must have that many inputs: the bound was computed for it."""

    def init(key, shape, dtype=jnp.float32):
        if fan_in is not None and len(shape) > 1 and math.prod(shape[:-1]) != fan_in:
            raise ValueError(f"a kernel of shape {shape} initialised for fan_in {fan_in} "
                             "(does model.n_features match the frames?)")
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_default(fan_in: int) -> Initializer:
    """PyTorch's default for the weight and bias of nn.Linear and nn.Conv1d (fan_in = inputs x
    kernel size): kaiming_uniform_(a=sqrt(5)) gives U(+-1/sqrt(fan_in)), and so does the bias."""
    return _uniform(1.0 / math.sqrt(fan_in), fan_in)


def fused_qkv_xavier(d_model: int) -> Initializer:
    """One of q, k, v as a slice of torch's fused (3D, D) in_proj_weight under xavier_uniform_:
    the bound is sqrt(6 / (D + 3D)), not the sqrt(6 / (D + D)) of a (D, D) matrix."""
    return _uniform(math.sqrt(6.0 / (4 * d_model)))


class Initializers(NamedTuple):
    """The initialiser of each kind of parameter; those that depend on a size take it."""

    qkv_kernel: Callable[[int], Initializer]  # d_model -> the q, k, v projections' kernels
    ff_bias: Callable[[int], Initializer]  # fan_in -> the feed-forward's biases
    outside_kernel: Callable[[int], Initializer]  # fan_in -> the frame Conv1d and output Linear
    outside_bias: Callable[[int], Initializer]  # ... and their biases
    kernel: Initializer = nn.initializers.xavier_uniform()  # the Transformer's other matrices
    embedding: Initializer = nn.initializers.normal(1.0)  # the token embedding (nn.Embedding's)


# model.init (its allowed values: config.INITS) -> the initialisers.
INITIALIZERS = {
    "torch": Initializers(qkv_kernel=fused_qkv_xavier, ff_bias=torch_default, outside_kernel=torch_default,
                          outside_bias=torch_default),
    "flax": Initializers(qkv_kernel=lambda d_model: nn.initializers.xavier_uniform(),
                         ff_bias=lambda fan_in: nn.initializers.zeros,
                         outside_kernel=lambda fan_in: nn.initializers.lecun_normal(),
                         outside_bias=lambda fan_in: nn.initializers.zeros),
}
