"""Speed benchmarks of the JAX model on this machine: `python -m benchmarks.run [--out FILE]`.

Each figure is the median over repeats after a warm-up call (compilation excluded), on the
authors' benchmark shape: batch 64, 74 frames after 1-in-3 sampling, 20 target tokens.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from slt_jax.config import get_config
from slt_jax.decode import beam_search, greedy_decode
from slt_jax.model import Transformer
from slt_jax.train import TrainState, init_params, make_train_step

BATCH, FRAMES, TOKENS, VOCAB = 64, 74, 20, 314


def median_seconds(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # warm-up: compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def synthetic_batch(n_features: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return jax.device_put({
        "frames": rng.normal(size=(BATCH, FRAMES, n_features)).astype(np.float32),
        "frame_mask": np.ones((BATCH, FRAMES), bool),
        "decoder_input": rng.integers(4, VOCAB, (BATCH, TOKENS)).astype(np.int32),
        "target": rng.integers(4, VOCAB, (BATCH, TOKENS)).astype(np.int32),
        "sample_mask": np.ones((BATCH,), bool),
    })


def bench_config(name: str, repeats: int) -> dict:
    config = get_config(name)
    config = config.replace(model=dataclasses.replace(config.model, vocab_size=VOCAB))
    model, optimizer = Transformer(config.model), optax.adam(config.train.learning_rate)
    params = init_params(config, jax.random.key(0))
    batch = synthetic_batch(config.model.n_features)
    step = make_train_step(model, optimizer)
    holder = [TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))]

    def train_once():
        holder[0], sums = step(holder[0], batch, jax.random.key(1))
        return sums

    train_s = median_seconds(train_once, repeats)
    params = holder[0].params  # the original buffers were donated to the train step
    greedy_s = median_seconds(lambda: greedy_decode(model, params, batch["frames"], batch["frame_mask"], TOKENS),
                              repeats)
    beam_s = median_seconds(lambda: beam_search(model, params, batch["frames"], batch["frame_mask"], TOKENS,
                                                beam=32), max(3, repeats // 3))
    return {"config": name, "train_step_ms": 1e3 * train_s, "train_samples_per_s": BATCH / train_s,
            "greedy_ms": 1e3 * greedy_s, "greedy_sentences_per_s": BATCH / greedy_s,
            "beam32_ms": 1e3 * beam_s, "beam32_sentences_per_s": BATCH / beam_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="gloss16,gloss64")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    results = {"machine": f"{platform.processor() or platform.machine()}, {jax.device_count()} "
                          f"{jax.devices()[0].platform} device(s), jax {jax.__version__}",
               "runs": [bench_config(name, args.repeats) for name in args.configs.split(",")]}
    print(json.dumps(results, indent=2))
    if args.out:
        from slt_jax.layout import write_json

        write_json(args.out, results)


if __name__ == "__main__":
    main()
