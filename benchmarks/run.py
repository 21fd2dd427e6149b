"""Speed of slt-jax beside the authors' PyTorch architecture, on this machine, in one run.

    python -m benchmarks.run [--corpus DIR] [--out results.json] [--doc docs/benchmarks.md]
    python -m benchmarks.run --smoke [--out smoke.json]   # the same code in seconds; figures meaningless

Every figure is a median over repeats after a warm-up call (compilation excluded). Figures that
are compared with each other are timed in the same rounds, one call each in turn, so a change
in the machine's load hits them alike. Inputs are the authors' benchmark shape: batch 64, 74
frames after 1-in-3 sampling, 20 target tokens, a 314-token vocabulary; the PyTorch twin
(`benchmarks/torch_twin.py`, the `bench` extra) starts from the JAX model's weights.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import glob
import gzip
import json
import os
import platform
import re
import resource
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.report import torch_best, write_section
from slt_jax import data
from slt_jax.analysis.record import extract_attention
from slt_jax.config import DROPOUT_RNGS, Config, get_config
from slt_jax.decode import beam_search, greedy_decode
from slt_jax.hostmem import reuse_freed_memory
from slt_jax.model import Transformer
from slt_jax.runs import init_params, resolve
from slt_jax.train import TrainState, make_train_step, model_inputs, train_step_fn

try:
    import torch

    from benchmarks import torch_twin
except ImportError:  # the `bench` extra is not installed: JAX figures only
    torch = None

# Training is timed with each way of drawing dropout masks, named by its `model.dropout_rng`.
DROPOUT_VARIANTS = {rng: (f"model.dropout_rng={rng}",) for rng in DROPOUT_RNGS}


class Shape(NamedTuple):
    """The input's size; the defaults are the authors' benchmark shape."""

    batch: int = 64
    frames: int = 74
    tokens: int = 20
    vocab: int = 314


def interleaved_medians(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, over `repeats` rounds that call every function
    once in turn, after one warm-up call each."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    times = collections.defaultdict(list)
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())  # PyTorch on CPU returns when done: nothing to wait for
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def bench_config(name: str, shape: Shape, overrides: tuple[str, ...] = ()) -> Config:
    config = get_config(name, list(overrides))
    return config.replace(model=dataclasses.replace(config.model, vocab_size=shape.vocab))


def synthetic_batch(shape: Shape, n_features: int = 150, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(4, shape.vocab, (shape.batch, shape.tokens + 1)).astype(np.int32)
    return {"frames": rng.normal(size=(shape.batch, shape.frames, n_features)).astype(np.float32),
            "frame_mask": np.ones((shape.batch, shape.frames), bool),
            "decoder_input": tokens[:, :-1], "target": tokens[:, 1:],
            "sample_mask": np.ones((shape.batch,), bool)}


@functools.cache
def jitted_train_step(config: Config, seeds: int = 0) -> Callable:
    """The jitted train step of `config` (vmapped over a leading seed axis of the state and
    dropout keys when `seeds`, as `fit` runs a sweep), made once per config so that every figure
    taken with it shares its compilations."""
    model, optimizer = Transformer(config.model), optax.adam(config.train.learning_rate)
    if seeds:
        return jax.jit(jax.vmap(train_step_fn(model, optimizer), in_axes=(0, None, 0)), donate_argnums=0)
    return make_train_step(model, optimizer)


def initial_state(config: Config, params, seeds: int = 0) -> tuple[TrainState, jax.Array]:
    """A fresh training state (a copy: steps donate it) and dropout key(s), stacked per seed."""
    state = TrainState(jnp.zeros((), jnp.int32), params, optax.adam(config.train.learning_rate).init(params))
    if seeds:
        return jax.tree.map(lambda x: jnp.stack([x] * seeds), state), jax.random.split(jax.random.key(1), seeds)
    return jax.tree.map(jnp.copy, state), jax.random.key(1)


def jax_trainer(config: Config, params, seeds: int = 0) -> Callable[[dict], Any]:
    """A function of a batch running one training step on it, the state carried over."""
    step = jitted_train_step(config, seeds)
    state, root = initial_state(config, params, seeds)

    def run(batch):
        nonlocal state
        state, sums = step(state, batch, root)
        return sums

    return run


def torch_inputs(batch: dict[str, np.ndarray]) -> dict:
    return {k: torch.tensor(v, dtype=torch.long if v.dtype == np.int32 else None) for k, v in batch.items()}


def torch_twin_for(config: Config, params):
    c = config.model
    model = torch_twin.KeypointsTransformer(c.vocab_size, c.d_model, c.n_heads, c.d_ff, c.n_features, c.frame_hidden)
    torch_twin.copy_flax_params(model, params)
    return model


def torch_timings(fn: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
    """`fn` with PyTorch on every core and on one: OpenMP threads that wait for each other
    spin, so on a loaded machine one thread can be the faster; the faster one is the baseline."""
    def threads(n):
        def run():
            torch.set_num_threads(n)
            return fn()
        return run

    cores = os.cpu_count() or 1
    return {"torch": threads(cores)} | ({"torch_1_thread": threads(1)} if cores > 1 else {})


def train_figures(name: str, shape: Shape, repeats: int) -> dict[str, float]:
    """Training samples/s: JAX with each `model.dropout_rng` (DROPOUT_VARIANTS), the PyTorch twin."""
    config = bench_config(name, shape)
    params = init_params(config, jax.random.key(0))
    batch = jax.device_put(synthetic_batch(shape, config.model.n_features))
    trainers = {k: jax_trainer(bench_config(name, shape, o), params) for k, o in DROPOUT_VARIANTS.items()}
    fns = {k: functools.partial(trainer, batch) for k, trainer in trainers.items()}
    if torch is not None:
        model, inputs = torch_twin_for(config, params), torch_inputs(jax.device_get(batch))
        optimizer = torch.optim.Adam(model.parameters(), config.train.learning_rate)
        fns |= torch_timings(lambda: torch_twin.train_step(model, optimizer, inputs))
    seconds = interleaved_medians(fns, repeats)
    return {f"{k}_samples_per_s": shape.batch / s for k, s in seconds.items()}


def decode_figures(name: str, shape: Shape, repeats: int) -> dict[str, float]:
    """Sentences/s of greedy decoding (JAX, PyTorch twin), of its encoder pass alone (JAX), beam
    search k=32 and extract_attention."""
    config = bench_config(name, shape)
    params, model = init_params(config, jax.random.key(0)), Transformer(config.model)
    batch = jax.device_put(synthetic_batch(shape, config.model.n_features))
    frames, mask = batch["frames"], batch["frame_mask"]
    encode = jax.jit(functools.partial(model.apply, method=Transformer.encode))
    fns = {"jax_greedy": lambda: greedy_decode(model, params, frames, mask, shape.tokens),
           "jax_encoder_pass": lambda: encode({"params": params}, frames, mask),
           "jax_extract_attention": lambda: extract_attention(params, batch, max_len=shape.tokens)}
    if torch is not None:
        twin, inputs = torch_twin_for(config, params), torch_inputs(jax.device_get(batch))
        greedy = lambda: torch_twin.greedy_decode(twin, inputs["frames"], inputs["frame_mask"], shape.tokens)
        fns |= {f"{k}_greedy": fn for k, fn in torch_timings(greedy).items()}
    seconds = interleaved_medians(fns, repeats)
    seconds |= interleaved_medians(
        {"jax_beam32": lambda: beam_search(model, params, frames, mask, shape.tokens, beam=32)},
        max(1, repeats // 3))
    return {f"{k}_sentences_per_s": shape.batch / s for k, s in seconds.items()}


def sweep_figures(name: str, shape: Shape, repeats: int, seeds: int = 8) -> dict[str, float]:
    """One vmapped step of `seeds` seeds against `seeds` single-seed steps run one after another."""
    config = bench_config(name, shape)
    params = init_params(config, jax.random.key(0))
    batch = jax.device_put(synthetic_batch(shape, config.model.n_features))
    vmapped, singles = jax_trainer(config, params, seeds), [jax_trainer(config, params) for _ in range(seeds)]
    seconds = interleaved_medians({"vmapped": lambda: vmapped(batch),
                                   "sequential": lambda: [step(batch) for step in singles]}, repeats)
    return {"seeds": seeds, "vmapped_s": seconds["vmapped"], "sequential_s": seconds["sequential"]}


def epoch_figures(name: str, corpus: Path, overrides: tuple[str, ...] = ()) -> dict[str, float]:
    """One training epoch over a corpus's train split: reading it, batching, the steps."""
    config = get_config(name, list(overrides))
    vocab = data.fit_vocab(corpus, config.data)
    config = resolve(config, vocab)
    start = time.perf_counter()
    examples = data.load_examples(corpus, "train", config.data, vocab)
    load_s = time.perf_counter() - start
    batch_size = config.train.batch_size
    start = time.perf_counter()
    n_batches = sum(1 for _ in data.make_batches(examples, config.data, batch_size, np.random.default_rng(0)))
    batching_s = time.perf_counter() - start

    trainer = jax_trainer(config, init_params(config, jax.random.key(0)))
    first_per_bucket = {data.bucket_length(len(ex.frames), config.data): ex for ex in examples}
    for batch in data.make_batches(list(first_per_bucket.values()), config.data, batch_size):
        jax.block_until_ready(trainer(model_inputs(batch)))  # compile every bucket's shape beforehand
    start = time.perf_counter()
    for batch in data.make_batches(examples, config.data, batch_size, np.random.default_rng(1)):
        sums = trainer(model_inputs(batch))
    jax.block_until_ready(sums)
    epoch_s = time.perf_counter() - start
    return {"samples": len(examples), "batches": n_batches, "load_s": load_s, "batching_s": batching_s,
            "epoch_s": epoch_s, "samples_per_s": len(examples) / epoch_s}


def compiled_train_step(config: Config, shape: Shape):
    """The train step of `config` compiled for `shape` (shared with the timings), its inputs."""
    params = init_params(config, jax.random.key(0))
    batch = jax.device_put(synthetic_batch(shape, config.model.n_features))
    state, root = initial_state(config, params)
    return jitted_train_step(config).lower(state, batch, root).compile(), (state, batch, root)


def compiled_encoder(config: Config, params, batch: dict):
    """The encoder pass of greedy decoding, compiled for `batch`."""
    encode = jax.jit(functools.partial(Transformer(config.model).apply, method=Transformer.encode))
    return encode.lower({"params": params}, batch["frames"], batch["frame_mask"]).compile()


# Bytes per element of the HLO dtypes these programs use.
HLO_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2,
                   "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8}
# Ops that move no data: they name or regroup buffers.
HLO_FREE_OPS = {"parameter", "constant", "get-tuple-element", "bitcast", "tuple"}
HLO_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = (.+?) ([a-z\-]+)\((.*?)\)(.*)$")
OP_GROUPS = ("feed_forward", "attention", "dropout_masks", "optimiser", "other")


def hlo_shape_bytes(shape: str) -> int:
    """Bytes of an HLO shape, an array (`f32[64,74]{1,0}`) or a tuple of them."""
    return sum(HLO_DTYPE_BYTES[dtype] * int(np.prod([int(d) for d in dims.split(",") if d], dtype=np.int64))
               for dtype, dims in re.findall(r"\b([a-z]+\d*)\[([\d,]*)\]", shape) if dtype in HLO_DTYPE_BYTES)


def op_group(op_name: str) -> str:
    """The part of a training step an XLA op belongs to, by its metadata op_name: drawing the
    dropout masks (applying a mask, forward or backward, counts with the layer it masks), the
    feed-forward, attention, the optimiser (ops outside the differentiated model), or the rest
    (frame convolutions, embeddings, layer norms, residual dropout, the loss, unnamed ops)."""
    applies_mask = re.search(r"ropout(_\d+)?/(jit\(_where\)/select_n|div)$", op_name)
    if re.search(r"[Dd]ropout|philox|threefry|bernoulli", op_name) and not applies_mask:
        return "dropout_masks"
    if "/mlp/" in op_name:
        return "feed_forward"
    if "self_attn" in op_name or "cross_attn" in op_name:
        return "attention"
    if op_name.startswith("jit(") and "jvp(" not in op_name and "Transformer" not in op_name:
        return "optimiser"
    return "other"


def hlo_traffic(hlo_text: str) -> list[tuple[str, str, int]]:
    """(op, op group, bytes read + written) of each op that moves data in an optimised HLO
    module, counted as XLA's cost analysis counts them: every op of the entry computation reads
    its operands and writes its output (a fusion's intermediates stay in registers), and a
    `call` or `while` counts the ops of the computations it runs (a loop's body once). An op
    goes to its `op_group`, but a fusion with an op of the feed-forward or of attention in it
    to that layer (the feed-forward first): XLA names a fusion after its last op, which may be
    a layer norm after a feed-forward."""
    computations = dict(re.findall(r"^(?:ENTRY )?%([\w.\-]+) [^\n]*\{\n(.*?)\n\}", hlo_text, re.S | re.M))
    sizes, ops = {}, []

    def op_names(text: str) -> list[str]:  # of the ops in `text` and in the computations they fuse
        return re.findall(r'op_name="([^"]*)"', text) + [
            name for fused in re.findall(r"calls=%([\w.\-]+)", text) for name in op_names(computations[fused])]

    def walk(computation: str) -> None:
        for line in computations[computation].splitlines():
            name, shape, opcode, operands, attributes = HLO_INSTRUCTION.match(line).groups()
            sizes[name] = hlo_shape_bytes(shape)
            if opcode in ("call", "while"):
                for called in re.findall(r"(?:to_apply|condition|body)=%([\w.\-]+)", attributes):
                    walk(called)
            elif opcode not in HLO_FREE_OPS:
                own = re.search(r'op_name="([^"]*)"', attributes)
                layers = {op_group(n) for n in op_names(attributes)} & {"feed_forward", "attention"}
                group = min(layers, key=OP_GROUPS.index) if layers else op_group(own[1] if own else "")
                moved = sizes[name] + sum(sizes[operand] for operand in re.findall(r"%([\w.\-]+)", operands))
                ops.append((name, group, moved))

    walk(re.search(r"^ENTRY %([\w.\-]+)", hlo_text, re.M)[1])
    return ops


def bytes_by_group(hlo_text: str) -> dict[str, int]:
    """Bytes each op group moves in one call of an optimised HLO module (`hlo_traffic`)."""
    moved = dict.fromkeys(OP_GROUPS, 0)
    for _, group, n in hlo_traffic(hlo_text):
        moved[group] += n
    return moved


def memory_traffic(compiled) -> dict[str, Any]:
    """XLA's bytes accessed by one call of `compiled`, and the same split per op group."""
    return {"bytes_accessed_xla": compiled.cost_analysis()["bytes accessed"],
            "bytes_by_group": bytes_by_group(compiled.as_text())}


def bandwidth_figures(repeats: int, stream_mib: int = 256, cache_mib: tuple[int, ...] = (1, 4, 16)) -> dict:
    """GB/s read + written by a jitted in-place negation of a float32 array: streaming through
    main memory (`stream_mib`, far larger than the caches) and, for information, arrays that
    can stay in cache (`cache_mib`). A small array's call is repeated to move as many bytes as
    the streaming one, less the time of as many calls on 1 KiB (their dispatch)."""
    negate = jax.jit(jnp.negative, donate_argnums=0)
    sizes = {"stream": stream_mib * 2**20, "dispatch": 2**10} | {f"{mib} MiB": mib * 2**20 for mib in cache_mib}
    arrays = {key: jnp.ones(size // 4, jnp.float32) for key, size in sizes.items()}
    calls = {key: max(1, sizes["stream"] // size) for key, size in sizes.items()}
    calls["dispatch"] = max(calls.values())

    def passes(key):
        def run():
            for _ in range(calls[key]):
                arrays[key] = negate(arrays[key])
            return arrays[key]
        return run

    seconds = {key: s / calls[key] for key, s in interleaved_medians({k: passes(k) for k in arrays}, repeats).items()}
    in_cache = lambda key: 2 * sizes[key] / 1e9 / (seconds[key] - seconds["dispatch"])
    return {"stream_mib": stream_mib, "stream_gb_per_s": 2 * sizes["stream"] / 1e9 / seconds["stream"],
            "in_cache_gb_per_s": {key: in_cache(key) for key in sizes if key.endswith("MiB")},
            "dispatch_us": 1e6 * seconds["dispatch"]}


def floors_ms(traffic: dict[str, Any], gb_per_s: float) -> dict[str, float]:
    """Each op group's bytes, and the whole call's, at `gb_per_s`: time no schedule can beat
    while every byte goes through main memory once."""
    ms = lambda n: 1e3 * n / 1e9 / gb_per_s
    return {group: ms(n) for group, n in traffic["bytes_by_group"].items()} | {"all": ms(traffic["bytes_accessed_xla"])}


def memory_figures(name: str, shape: Shape, repeats: int, stream_mib: int = 256) -> dict[str, Any]:
    """The memory floor: bytes a training step (default masks) and the encoder pass move, per
    op group, over the streaming bandwidth measured here."""
    config = bench_config(name, shape)
    step, (state, batch, _) = compiled_train_step(config, shape)
    bandwidth = bandwidth_figures(repeats, stream_mib)
    figures = {"bandwidth": bandwidth}
    for key, compiled in (("train_step", step), ("encode", compiled_encoder(config, state.params, batch))):
        traffic = memory_traffic(compiled)
        figures[key] = traffic | {"floor_ms": floors_ms(traffic, bandwidth["stream_gb_per_s"])}
    return figures


def cost_figures(name: str, shape: Shape, repeats: int) -> dict[str, float]:
    """What bounds the step times from below: XLA's buffer plans (arguments + outputs +
    temporaries, less donated aliases) and FLOP counts of a training step and of the encoder
    (most of greedy decoding), and the float32 matmul throughput this machine reaches."""
    config = bench_config(name, shape)
    step, (state, batch, _) = compiled_train_step(config, shape)
    greedy = greedy_decode.lower(Transformer(config.model), state.params, batch["frames"], batch["frame_mask"],
                                 shape.tokens).compile()
    encode = compiled_encoder(config, state.params, batch)
    figures = {}
    for key, compiled in (("train_step", step), ("greedy", greedy)):
        m = compiled.memory_analysis()
        total = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes
        figures[f"{key}_mib"] = total / 2**20
    figures["train_step_gflop"] = step.cost_analysis()["flops"] / 1e9
    figures["encode_gflop"] = encode.cost_analysis()["flops"] / 1e9
    # A large square matmul, and the feed-forward's first one: (B*T, d_model) x (d_model, d_ff).
    square, rows, weights = (jnp.ones(s) for s in ((2048, 2048), (shape.batch * shape.frames, config.model.d_model),
                                                   (config.model.d_model, config.model.d_ff)))
    matmul = jax.jit(jnp.matmul)
    seconds = interleaved_medians({"square": lambda: matmul(square, square), "ff": lambda: matmul(rows, weights)},
                                  repeats)
    figures["matmul_gflop_per_s"] = 2 * square.size * square.shape[1] / 1e9 / seconds["square"]
    figures["ff_matmul_gflop_per_s"] = 2 * rows.size * weights.shape[1] / 1e9 / seconds["ff"]
    return figures


def profile_ops(name: str, shape: Shape, steps: int = 5, top: int | None = 12,
                overrides: tuple[str, ...] = ()) -> list[dict]:
    """The XLA ops that take the most time in a training step (jax.profiler trace, summed over
    threads; every named op when `top` is None), with their share of all op time and the model
    code they come from."""
    step, (state, batch, root) = compiled_train_step(bench_config(name, shape, overrides), shape)
    groups = {op: group for op, group, _ in hlo_traffic(step.as_text())}
    source = {m[1]: (m[2], m[3]) for m in re.finditer(r"%?([\w.\-]+) = (\S+) [^\n]*?op_name=\"([^\"]+)\"",
                                                      step.as_text())}
    state, sums = step(state, batch, root)  # warm-up
    jax.block_until_ready(sums)
    with tempfile.TemporaryDirectory() as logdir:
        jax.profiler.start_trace(logdir, create_perfetto_trace=True)
        for _ in range(steps):
            state, sums = step(state, batch, root)
            jax.block_until_ready(sums)
        jax.profiler.stop_trace()
        with gzip.open(glob.glob(f"{logdir}/**/*.json.gz", recursive=True)[0]) as f:
            events = json.load(f)["traceEvents"]
    durations = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e["name"] in source:
            durations[e["name"]] += e["dur"] / 1e3 / steps
    total = sum(durations.values())
    return [{"op": op, "ms": ms, "share": ms / total, "shape": source[op][0], "group": groups.get(op, "other"),
             "source": source[op][1].removeprefix("jit(train_step)/")}
            for op, ms in durations.most_common(top)]


def ms_by_group(ops: list[dict]) -> dict[str, float]:
    """The profile's op time (summed over threads) per op group (`hlo_traffic`)."""
    ms = dict.fromkeys(OP_GROUPS, 0.0)
    for op in ops:
        ms[op["group"]] += op["ms"]
    return ms


def machine() -> dict[str, Any]:
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), platform.machine())
    return {"cpu": cpu, "cores": os.cpu_count(), "jax": jax.__version__,
            "backend": f"{jax.default_backend()} ({jax.device_count()} device(s))",
            "torch": torch.__version__ if torch is not None else None,
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "python": platform.python_version()}


def ratios(results: dict) -> dict[str, float | None]:
    """JAX over the PyTorch twin (its faster thread count) and sequential over vmapped seeds."""
    out = {}
    for name in ("gloss16", "gloss64"):
        figures = results.get(f"train_{name}", {})
        torch_best_s = torch_best(figures, "_samples_per_s")
        for variant in DROPOUT_VARIANTS:
            jax_s = figures.get(f"{variant}_samples_per_s")
            out[f"train_{name}_{variant}"] = jax_s / torch_best_s if jax_s and torch_best_s else None
    decode = results.get("decode_gloss16", {})
    jax_s, torch_s = decode.get("jax_greedy_sentences_per_s"), torch_best(decode, "_greedy_sentences_per_s")
    out["greedy_gloss16"] = jax_s / torch_s if jax_s and torch_s else None
    sweep = results.get("sweep")
    out["sweep"] = sweep["sequential_s"] / sweep["vmapped_s"] if sweep else None
    return out


def run_all(shape: Shape, repeats: int, corpus: Path | None, profile: bool) -> dict[str, Any]:
    """Every figure, as the JSON that `--out` writes and `benchmarks.report` renders."""
    results: dict[str, Any] = {"machine": machine(), "shape": shape._asdict(), "repeats": repeats,
                               "load_average_before": os.getloadavg()[0]}
    for name in ("gloss16", "gloss64"):
        results[f"train_{name}"] = train_figures(name, shape, repeats)
    results["decode_gloss16"] = decode_figures("gloss16", shape, repeats)
    results["sweep"] = sweep_figures("gloss16", shape, max(3, repeats // 3))
    if corpus is not None:
        results["epoch_gloss16"] = epoch_figures("gloss16", corpus)
        results["epoch_gloss16_hash"] = epoch_figures("gloss16", corpus, DROPOUT_VARIANTS["hash"])
    results["costs_gloss16"] = cost_figures("gloss16", shape, repeats)
    results["memory_gloss16"] = memory_figures("gloss16", shape, repeats)
    if profile:
        ops = profile_ops("gloss16", shape, top=None)
        results["profile_gloss16"] = ops[:12]
        results["memory_gloss16"]["train_step"]["profile_ms"] = ms_by_group(ops)
        results["profile_gloss16_hash"] = profile_ops("gloss16", shape, overrides=DROPOUT_VARIANTS["hash"])
    results["load_average_after"] = os.getloadavg()[0]
    results["process_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["ratios"] = ratios(results)
    return results


SMOKE_SHAPE = Shape(batch=4, frames=8, tokens=4, vocab=12)


def smoke_run() -> dict[str, Any]:
    """Each kind of figure once, for the tiny config at a small shape, 2 seeds: checks that the
    benchmark runs (on a new backend, say) in seconds; its figures measure nothing."""
    shape = SMOKE_SHAPE
    return {"machine": machine(), "shape": shape._asdict(), "repeats": 1, "smoke": True,
            "train_tiny": train_figures("tiny", shape, 1), "decode_tiny": decode_figures("tiny", shape, 1),
            "sweep": sweep_figures("tiny", shape, 1, seeds=2), "costs_tiny": cost_figures("tiny", shape, 1),
            "memory_tiny": memory_figures("tiny", shape, 1, stream_mib=16)}


def ensure_corpus(corpus: Path, workers: int) -> Path:
    """The `gsl` synthetic corpus at `corpus`, written (or finished) first when incomplete."""
    from slt_jax.synth.corpus import write_corpus
    from slt_jax.synth.presets import PRESETS

    write_corpus(corpus, PRESETS["gsl"], 0, workers, progress=True)
    return corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per figure (default: %(default)s)")
    parser.add_argument("--corpus", type=Path, help="the `gsl` synthetic corpus (written there first if "
                        "missing or unfinished) for the epoch figures; without it they are left out")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the per-op profile")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--doc", type=Path, help="rewrite the generated section of this markdown file")
    parser.add_argument("--smoke", action="store_true", help="tiny config, small shape, one round, no corpus, "
                        "no profile: checks the code path in seconds (benchmarks/accelerator.sh --smoke)")
    args = parser.parse_args()
    if args.smoke and (args.doc or args.corpus):
        parser.error("--smoke takes no --doc or --corpus: its figures measure nothing")
    reuse_freed_memory()  # as `slt-jax` does, before the first JAX computation
    warnings.filterwarnings("ignore", message=".*nested tensors.*")  # the twin's eval fast path
    corpus = ensure_corpus(args.corpus, os.cpu_count() or 1) if args.corpus else None
    results = smoke_run() if args.smoke else run_all(Shape(), args.repeats, corpus, args.profile)
    print(json.dumps(results, indent=2))
    if args.out:
        from slt_jax.layout import write_json

        write_json(args.out, results)
    if args.doc:
        write_section(args.doc, results)


if __name__ == "__main__":
    main()
