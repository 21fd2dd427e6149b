"""The feed-forward on row blocks that fit the cache, against the model's (issue 25).

    python -m benchmarks.blocked_ff [--repeats 15] [--blocks 128 296 592 1184]

The model's FeedForward makes a (rows, 2048) hidden (4,736 rows at the benchmark shape: 39 MB)
and passes over it in memory several times per step. Here every block of rows is computed,
masked and consumed inside a `lax.scan`, the backward recomputing each block's hidden (remat,
or a hand-written VJP that accumulates the weight gradients block by block). The dropout mask
is `philox_keep_mask`'s, bit for bit: element i of the flat hidden takes word i // n of Philox
call i % n (n = size / 4), so with rows divisible by 4 word q covers the q-th quarter of the rows
and call s * 2048 + j feeds column j of row s of every quarter. A block is therefore R rows from
each of the four quarters (4R rows, R dividing rows / 4), and one Philox call per element of a
(R, 2048) tile makes its whole mask: 128, 296, 592 and 1,184 rows divide the benchmark's 4,736.

Timed interleaved (medians): the feed-forward alone, forward + backward, train mode (d_model 16
and 64); the gloss16 training step with every FeedForward blocked; the encoder pass in eval
mode. Each variant's outputs and gradients are compared with today's.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import time
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from benchmarks.run import Shape, bench_config, initial_state, synthetic_batch
from slt_jax import model as model_module
from slt_jax.dropout import _threshold32, philox4x32, philox_keep_mask
from slt_jax.hostmem import reuse_freed_memory
from slt_jax.initializers import INITIALIZERS
from slt_jax.model import FeedForward, Transformer
from slt_jax.runs import init_params
from slt_jax.train import TrainState, make_train_step, train_step_fn


def quarter_rows(rows: int, block_rows: int) -> int:
    """R, the rows each block takes from each quarter: the largest divisor of rows / 4 that is at
    most block_rows / 4."""
    if rows % 4:
        raise ValueError(f"{rows} rows: the Philox word of a row is its quarter, rows must divide by 4")
    return max(r for r in range(1, min(block_rows // 4, rows // 4) + 1) if (rows // 4) % r == 0)


def block_mask_bits(k0, k1, block, r: int, d_ff: int, keep_prob: float) -> jax.Array:
    """Block `block`'s keep bits, packed (R, d_ff) uint8: bit q for the block's rows of quarter q."""
    counters = block.astype(jnp.uint32) * jnp.uint32(r * d_ff) + jax.lax.iota(jnp.uint32, r * d_ff)
    zeros = jnp.zeros_like(counters)
    words = philox4x32(k0, k1, counters, zeros, zeros, zeros)
    packed = sum((w < _threshold32(keep_prob)).astype(jnp.uint8) << i for i, w in enumerate(words))
    # As in philox_keep_mask: the remainder keeps XLA from rerunning the rounds for every word.
    return jax.lax.rem(packed, jnp.maximum(k0 >> 28, 16).astype(jnp.uint8)).reshape(r, d_ff)


def unpack_mask(bits_RxF: jax.Array) -> jax.Array:
    """Packed bits -> the block's (4R, d_ff) keep mask: `philox_keep_mask`'s for its rows."""
    r, d_ff = bits_RxF.shape
    return ((bits_RxF >> jnp.arange(4, dtype=jnp.uint8)[:, None, None]) & 1).reshape(4 * r, d_ff).astype(bool)


def _dense(x, kernel, bias):
    """nn.Dense's arithmetic: a dot over the last axis, then the bias."""
    y = jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))
    return y + bias


def _hidden(x, wi, bi, keep, keep_prob):
    """The block's masked hidden, as FeedForward and Dropout compute it; `keep` None: eval."""
    h = nn.relu(_dense(x, wi, bi))
    return h if keep is None else jnp.where(keep, h / keep_prob, jnp.zeros_like(h))


def to_blocks(x_NxD: jax.Array, r: int) -> jax.Array:
    """(N, D) rows -> (N / 4R, 4R, D): block b holds rows b*R .. b*R+R-1 of each quarter in turn."""
    n, d = x_NxD.shape
    return x_NxD.reshape(4, n // (4 * r), r, d).transpose(1, 0, 2, 3).reshape(n // (4 * r), 4 * r, d)


def from_blocks(y_blocks: jax.Array) -> jax.Array:
    blocks, rows, d = y_blocks.shape
    return y_blocks.reshape(blocks, 4, rows // 4, d).transpose(1, 0, 2, 3).reshape(-1, d)


def _block_keep(key_words, block, r: int, d_ff: int, keep_prob: float):
    """The block's (4R, d_ff) keep mask; None in eval mode."""
    return None if key_words is None else unpack_mask(block_mask_bits(*key_words, block, r, d_ff, keep_prob))


def remat_feed_forward(x_NxD, wi, bi, wo, bo, key_words, keep_prob, r):
    """Blocks in a scan, each a `jax.checkpoint`: its hidden is recomputed in the backward."""

    @jax.checkpoint
    def block_out(block, x):
        keep = _block_keep(key_words, block, r, wi.shape[1], keep_prob)
        return _dense(_hidden(x, wi, bi, keep, keep_prob), wo, bo)

    x_blocks = to_blocks(x_NxD, r)
    blocks = jnp.arange(x_blocks.shape[0])
    _, y_blocks = jax.lax.scan(lambda c, xs: (c, block_out(*xs)), None, (blocks, x_blocks))
    return from_blocks(y_blocks)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7, 8))
def vjp_feed_forward(x_NxD, wi, bi, wo, bo, key_words, keep_prob, r, keep_bits):
    """Blocks in a scan; the backward a second scan that recomputes each block's hidden and
    accumulates the weight gradients in its carry. With `keep_bits` the forward keeps each
    block's packed mask bits (N / 4 bytes per hidden column) and the backward reuses them."""
    return _vjp_forward(x_NxD, wi, bi, wo, bo, key_words, keep_prob, r, keep_bits)[0]


def _vjp_forward(x_NxD, wi, bi, wo, bo, key_words, keep_prob, r, keep_bits):
    def block_out(_, xs):
        block, x = xs
        bits = block_mask_bits(*key_words, block, r, wi.shape[1], keep_prob)
        return None, (_dense(_hidden(x, wi, bi, unpack_mask(bits), keep_prob), wo, bo), bits if keep_bits else None)

    x_blocks = to_blocks(x_NxD, r)
    _, (y_blocks, bits) = jax.lax.scan(block_out, None, (jnp.arange(x_blocks.shape[0]), x_blocks))
    return from_blocks(y_blocks), (x_NxD, wi, bi, wo, bo, key_words, bits)


def _vjp_backward(keep_prob, r, keep_bits, residuals, dy_NxD):
    x_NxD, wi, bi, wo, bo, key_words, bits = residuals
    # Every dot reads its (4R, d_ff) operand untransposed: XLA:CPU would copy it transposed (as
    # it does for h in x.T-style weight gradients), so wo's gradient is summed transposed.
    wi_T, wo_T = wi.T, wo.T

    def block_grads(sums, xs):
        block, x, dy, block_bits = xs
        if block_bits is None:
            block_bits = block_mask_bits(*key_words, block, r, wi.shape[1], keep_prob)
        keep = unpack_mask(block_bits)
        pre = _dense(x, wi, bi)
        h = jnp.where(keep, nn.relu(pre) / keep_prob, jnp.zeros_like(pre))
        dpre = jnp.where(pre > 0, jnp.where(keep, dy @ wo_T, jnp.zeros_like(pre)) / keep_prob, jnp.zeros_like(pre))
        dwi, dbi, dwo_T, dbo = sums
        sums = dwi + x.T @ dpre, dbi + dpre.sum(0), dwo_T + dy.T @ h, dbo + dy.sum(0)
        return sums, dpre @ wi_T

    x_blocks, dy_blocks = to_blocks(x_NxD, r), to_blocks(dy_NxD, r)
    zeros = tuple(jnp.zeros_like(p) for p in (wi, bi, wo_T, bo))
    (dwi, dbi, dwo_T, dbo), dx_blocks = jax.lax.scan(
        block_grads, zeros, (jnp.arange(x_blocks.shape[0]), x_blocks, dy_blocks, bits))
    key_cotangent = tuple(np.zeros(k.shape, jax.dtypes.float0) for k in key_words)
    return from_blocks(dx_blocks), dwi, dbi, dwo_T.T, dbo, key_cotangent


vjp_feed_forward.defvjp(_vjp_forward, _vjp_backward)


class _DropoutKey(nn.Module):
    """The key FeedForward's Dropout draws, got by the same name and call."""

    @nn.compact
    def __call__(self):
        return self.make_rng("dropout")


class _DenseParams(nn.Module):
    """nn.Dense's parameters, by its names and initialisers, without applying them."""

    features: int
    kernel_init: nn.initializers.Initializer
    bias_init: nn.initializers.Initializer

    @nn.compact
    def __call__(self, in_features: int):
        return (self.param("kernel", self.kernel_init, (in_features, self.features)),
                self.param("bias", self.bias_init, (self.features,)))


class BlockedFeedForward(nn.Module):
    """FeedForward's parameters, rng and results, computed on row blocks; a drop-in for it.
    `backward`: "remat" (jax.checkpoint), "vjp" (`vjp_feed_forward`, masks drawn again) or
    "vjp_bits" (the forward's mask bits kept)."""

    config: model_module.ModelConfig
    block_rows: int = 296
    backward: str = "remat"

    @nn.compact
    def __call__(self, x_BxQxD, deterministic: bool) -> jax.Array:
        c, inits = self.config, INITIALIZERS[self.config.init]
        x = x_BxQxD.reshape(-1, x_BxQxD.shape[-1])
        wi, bi = _DenseParams(c.d_ff, inits.kernel, inits.ff_bias(c.d_model), name="wi")(c.d_model)
        wo, bo = _DenseParams(c.d_model, inits.kernel, inits.ff_bias(c.d_ff), name="wo")(c.d_ff)
        r = quarter_rows(x.shape[0], self.block_rows)
        train = not deterministic and c.dropout > 0.0
        if train and (c.dropout_rng != "philox" or c.dropout == 1.0):
            raise ValueError("blocked masks are philox_keep_mask's only")
        key_words = tuple(jax.random.bits(_DropoutKey(name="Dropout_0")(), (2,), jnp.uint32)) if train else None
        keep_prob = 1.0 - c.dropout
        if train and self.backward != "remat":
            y = vjp_feed_forward(x, wi, bi, wo, bo, key_words, keep_prob, r, self.backward == "vjp_bits")
        else:
            y = remat_feed_forward(x, wi, bi, wo, bo, key_words, keep_prob, r)
        return y.reshape(x_BxQxD.shape)


def differences(a, b) -> dict[str, object]:
    """The largest absolute difference between two pytrees, that over the largest magnitude of
    its leaf in `b` (the rounding scale), and the leaves (key paths) that differ at all."""
    pairs = [(jax.tree_util.keystr(path, simple=True, separator="/"), np.asarray(x, np.float64), np.asarray(y, np.float64))
             for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b))]
    return {"max_abs": max(float(np.max(np.abs(x - y))) for _, x, y in pairs),
            "max_abs_over_scale": max(float(np.max(np.abs(x - y)) / np.max(np.abs(y))) for _, x, y in pairs),
            "differ": [name for name, x, y in pairs if not np.array_equal(x, y)]}


def describe(diff: dict) -> str:
    if not diff["differ"]:
        return "bit-identical"
    names = ", ".join(diff["differ"]) if len(diff["differ"]) <= 6 else f"{len(diff['differ'])} leaves"
    return f"max abs difference {diff['max_abs']:.2g} ({diff['max_abs_over_scale']:.1g} of the leaf's largest value) in {names}"


def masks_match(rows: int, block_rows: int, d_ff: int = 2048, keep_prob: float = 0.8) -> bool:
    """Whether the blocks' masks, put back in row order, are `philox_keep_mask`'s."""
    key = jax.random.key(7)
    k0, k1 = jax.random.bits(key, (2,), jnp.uint32)
    r = quarter_rows(rows, block_rows)
    blocks = jax.vmap(lambda b: _block_keep((k0, k1), b, r, d_ff, keep_prob))(jnp.arange(rows // (4 * r)))
    return bool(jnp.array_equal(from_blocks(blocks), philox_keep_mask(key, (rows, d_ff), keep_prob)))


def interleaved_wall_and_cpu(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """As benchmarks.run.interleaved_medians, with the process's CPU time per call beside the
    wall time (ms, medians): on the shared 2-core machine CPU time moves less with the load."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    times = collections.defaultdict(list)
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn())
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {name: tuple(1e3 * float(m) for m in np.median(t, axis=0)) for name, t in times.items()}


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def variants(blocks: list[int]) -> dict[str, dict]:
    """Name -> BlockedFeedForward fields; "today" is the model's FeedForward."""
    out = {"today": {}}
    for rows in blocks:
        out |= {f"{backward}{rows}": {"block_rows": rows, "backward": backward}
                for backward in ("remat", "vjp", "vjp_bits")}
    return out


def feed_forward_alone(d_model: int, shape: Shape, blocks: list[int], repeats: int) -> tuple[dict, dict]:
    """ms of forward + backward of each variant, and each one's differences from today's."""
    config = bench_config("gloss16", shape, (f"model.d_model={d_model}",)).model
    x = jax.random.normal(jax.random.key(0), (shape.batch, shape.frames, d_model))
    dy = jax.random.normal(jax.random.key(1), x.shape)
    params = FeedForward(config).init({"params": jax.random.key(2)}, x, True)["params"]
    rng = jax.random.key(3)

    def grads_of(module):
        def loss(p, x):
            y = module.apply({"params": p}, x, False, rngs={"dropout": rng})
            return jnp.sum(y * dy), y
        return jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))

    fns = {name: grads_of(BlockedFeedForward(config, **f) if f else FeedForward(config))
           for name, f in variants(blocks).items()}
    reference = jax.device_get(fns["today"](params, x))
    diffs = {name: differences(jax.device_get(fn(params, x)), reference) for name, fn in fns.items() if name != "today"}
    return interleaved_wall_and_cpu({k: functools.partial(fn, params, x) for k, fn in fns.items()}, repeats), diffs


@contextlib.contextmanager
def model_feed_forward(fields: dict):
    """The model's FeedForward replaced by BlockedFeedForward(**fields) (nothing when empty)."""
    if not fields:
        yield
        return
    with mock.patch.object(model_module, "FeedForward", functools.partial(BlockedFeedForward, **fields)):
        yield


def first_gradients(config, params, batch, root) -> tuple:
    """The first training step's gradients and sums, as the step computes them: an optimiser
    whose state is the last gradient (`optax.trace` without decay)."""
    step = jax.jit(train_step_fn(Transformer(config.model), optax.trace(decay=0.0)))
    state, sums = step(TrainState(jnp.zeros((), jnp.int32), params, optax.trace(decay=0.0).init(params)), batch, root)
    return jax.device_get((state.opt_state.trace, sums))


def training_step(fields: dict, shape: Shape, repeats: int) -> tuple[dict, dict]:
    """ms per gloss16 training step (Adam), today's and blocked, and the differences of their
    first step's gradients and loss sums."""
    config = bench_config("gloss16", shape)
    params = init_params(config, jax.random.key(0))
    batch = jax.device_put(synthetic_batch(shape, config.model.n_features))
    runs, firsts = {}, {}
    for name, f in {"today": {}, "blocked": fields}.items():
        step = make_train_step(Transformer(config.model), optax.adam(config.train.learning_rate))
        state, root = initial_state(config, params)
        with model_feed_forward(f):  # traced and compiled here, under the patch
            firsts[name] = first_gradients(config, params, batch, root)
            state, _ = step(state, batch, root)

        def run(step=step, box=[state, root]):
            box[0], sums = step(box[0], batch, box[1])
            return sums

        runs[name] = run
    return interleaved_wall_and_cpu(runs, repeats), differences(firsts["blocked"], firsts["today"])


def encoder_pass(block_sizes: list[int], shape: Shape, repeats: int) -> tuple[dict, dict]:
    """ms of `Transformer.encode` in eval mode, today's and blocked at each block size, and each
    blocked output's differences from today's."""
    config = bench_config("gloss16", shape)
    params = init_params(config, jax.random.key(0))
    batch = jax.device_put(synthetic_batch(shape, config.model.n_features))
    fns, outs = {}, {}
    for name, f in ({"today": {}} | {f"blocked{rows}": {"block_rows": rows} for rows in block_sizes}).items():
        encode = jax.jit(functools.partial(Transformer(config.model).apply, method=Transformer.encode))
        with model_feed_forward(f):
            outs[name] = jax.device_get(encode({"params": params}, batch["frames"], batch["frame_mask"]))
        fns[name] = functools.partial(encode, {"params": params}, batch["frames"], batch["frame_mask"])
    diffs = {name: differences(out, outs["today"]) for name, out in outs.items() if name != "today"}
    return interleaved_wall_and_cpu(fns, repeats), diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--blocks", type=int, nargs="+", default=[128, 296, 592, 1184])
    args = parser.parse_args()
    reuse_freed_memory()
    shape = Shape()
    rows = shape.batch * shape.frames
    print(f"blocked masks equal philox_keep_mask's: {all(masks_match(rows, b) for b in args.blocks)}")
    print(f"feed-forward alone, forward + backward, train mode, {rows} rows")
    best = {}
    for d_model in (16, 64):
        print(f"  {load()}")
        ms, diffs = feed_forward_alone(d_model, shape, args.blocks, args.repeats)
        for name, (wall, cpu) in ms.items():
            print(f"  d_model {d_model} {name:>12}: {wall:6.1f} ms wall {cpu:6.1f} ms CPU  {describe(diffs.get(name, {'differ': []}))}")
        print(f"  {load()}")
        if d_model == 16:
            best = variants(args.blocks)[min((k for k in ms if k != "today"), key=lambda k: ms[k][1])]
    print(f"least CPU time at d_model 16: {best}")
    print(f"gloss16 training step: {load()}")
    ms, diff = training_step(best, shape, args.repeats)
    print("  " + ", ".join(f"{k} {wall:.1f} ms wall {cpu:.1f} ms CPU" for k, (wall, cpu) in ms.items())
          + f"; first step's gradients and sums against today's: {describe(diff)}; {load()}")
    print(f"encoder pass, eval mode: {load()}")
    ms, diffs = encoder_pass(args.blocks, shape, args.repeats)
    for name, (wall, cpu) in ms.items():
        print(f"  {name:>12}: {wall:6.1f} ms wall {cpu:6.1f} ms CPU  {describe(diffs.get(name, {'differ': []}))}")
    print(f"  {load()}")


if __name__ == "__main__":
    main()
