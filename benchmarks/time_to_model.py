"""Time to a trained model: slt-jax against the authors' PyTorch architecture, same corpus, same run.

    python -m benchmarks.time_to_model --corpus DIR [--config gloss16] [--seed 0] [--out FILE]
    python -m benchmarks.time_to_model --smoke   # a tiny corpus and config in seconds; figures meaningless

Every contestant trains one seed of the config to early stopping on the same batches (slt-jax's
batching and frame sampling, seeded alike), then decodes the unseen signer's test split greedily:

- `torch_authors`: the PyTorch twin (`benchmarks/torch_twin.py`, the `bench` extra) in a loop
  like the authors': Adam at their rate, patience on validation token accuracy, the parameters
  of the lowest validation loss kept, greedy decoding that re-runs the prefix.
- `jax_authors`, `jax_fast`, `jax_converge`: `slt-jax train` as the main job configures it, with
  each recipe (`slt_jax.config.RECIPES`), then `slt-jax evaluate`.

Wall time counts training with its per-epoch validation (compilation included) and the test
decoding. `jax_authors` against `torch_authors` is the speed of the code (same recipe);
the other recipes against `jax_authors` are the recipe's share. The contestants run one after
another, so the machine's load (recorded beside each) should stay the same throughout. Run again
with the same --out and the contestants already there are kept (an interrupted run resumes).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from slt_jax import data
from slt_jax.config import PAD, Config, run_config, with_recipe
from slt_jax.evaluate import evaluate
from slt_jax.hostmem import reuse_freed_memory
from slt_jax.layout import write_json
from slt_jax.metrics import exact_match
from slt_jax.runs import resolve
from slt_jax.train import Stopping, train

try:
    import torch
    from torch import nn

    from benchmarks import torch_twin
except ImportError:  # the `bench` extra is not installed: JAX only
    torch = None


def _tensors(batch: dict[str, np.ndarray]) -> dict:
    keys = ("frames", "frame_mask", "decoder_input", "target", "sample_mask")
    return {k: torch.tensor(batch[k], dtype=torch.long if batch[k].dtype == np.int32 else None) for k in keys}


def _validate(model, batches: list[dict]) -> dict[str, float]:
    """Mean loss and token accuracy over non-PAD targets, as `slt_jax.train.summarise`."""
    model.eval()
    loss = correct = tokens = 0.0
    with torch.no_grad():
        for b in batches:
            logits = model(b["frames"], b["frame_mask"], b["decoder_input"])
            weights = (b["target"] != PAD) & b["sample_mask"][:, None]
            losses = nn.functional.cross_entropy(logits.transpose(1, 2), b["target"], reduction="none")
            loss += float((losses * weights).sum())
            correct += float(((logits.argmax(-1) == b["target"]) & weights).sum())
            tokens += float(weights.sum())
    return {"val_loss": loss / tokens, "val_accuracy": correct / tokens}


def train_twin(config: Config, data_dir: Path) -> dict:
    """The twin trained to early stopping and scored on the test split's greedy translations."""
    torch.set_num_threads(os.cpu_count() or 1)
    tc = config.train
    torch.manual_seed(tc.seed)
    vocab = data.fit_vocab(data_dir, config.data)
    config = resolve(config, vocab)
    split = {s: data.load_examples(data_dir, s, config.data, vocab) for s in ("train", "val", "test")}
    c = config.model
    model = torch_twin.KeypointsTransformer(c.vocab_size, c.d_model, c.n_heads, c.d_ff, c.n_features, c.frame_hidden)
    optimizer = torch.optim.Adam(model.parameters(), tc.learning_rate)
    val_batches = [_tensors(b) for b in data.make_batches(split["val"], config.data, tc.batch_size)]
    stopping, best_state, epoch, steps = Stopping.start(1), None, 0, 0
    start = time.perf_counter()
    while epoch < tc.max_epochs and not stopping.stopped[0]:
        epoch += 1
        rng = np.random.default_rng([tc.seed, epoch])
        for batch in data.make_batches(split["train"], config.data, tc.batch_size, rng):
            torch_twin.train_step(model, optimizer, _tensors(batch))
            steps += 1
        record = {k: np.array([v]) for k, v in _validate(model, val_batches).items()}
        if stopping.update(epoch, record, tc)[0]:
            best_state = copy.deepcopy(model.state_dict())
    train_s = time.perf_counter() - start
    model.load_state_dict(best_state)
    hypotheses = [""] * len(split["test"])
    for batch in data.make_batches(split["test"], config.data, tc.batch_size):
        b = _tensors(batch)
        tokens = torch_twin.greedy_decode(model, b["frames"], b["frame_mask"], config.data.max_tokens)
        for row, index in zip(tokens.numpy(), batch["index"][batch["sample_mask"]]):
            hypotheses[index] = vocab.decode(row)
    return {"train_s": train_s, "wall_s": time.perf_counter() - start, "epochs": epoch, "updates": steps,
            "kept_epoch": int(stopping.best_epoch[0]),
            "test_exact_match": exact_match([ex.reference for ex in split["test"]], hypotheses)}


def train_jax(config: Config, data_dir: Path, workdir: Path) -> dict:
    start = time.perf_counter()
    result = train(config, data_dir, workdir, progress=False)
    train_s = time.perf_counter() - start
    scores = evaluate(workdir, "test", progress=False)
    return {"train_s": train_s, "wall_s": time.perf_counter() - start, "epochs": result["epoch"],
            "updates": result["step"], "kept_epoch": result["best_epoch"], "test_exact_match": scores["exact_match"]}


def contestants(name: str, seed: int, smoke: bool) -> dict[str, Config]:
    """The main job's config of `name` with each recipe (the twin takes the authors' fields)."""
    shrink = ["data.max_frames=64", "data.buckets=32,64", "model.d_ff=64", "train.max_epochs=3"] if smoke else []
    authors = run_config(name, "authors", seed, overrides=shrink)
    return {"torch_authors": authors} | {f"jax_{r}": with_recipe(authors, r) for r in ("authors", "fast", "converge")}


def run(corpus: Path, name: str, seed: int, smoke: bool, only: list[str] | None = None, out: Path | None = None) -> dict:
    """Trains and scores every contestant not yet in `out`, saving `out` after each."""
    results = {"corpus": str(corpus), "config": name, "seed": seed, "cores": os.cpu_count(), "contestants": {}}
    if out is not None and out.is_file():
        earlier = json.loads(out.read_text())
        setting = lambda r: [r.get(k) for k in ("corpus", "config", "seed")]
        if setting(earlier) != setting(results):
            raise SystemExit(f"{out} holds another corpus, config or seed; choose another --out")
        results["contestants"] = earlier["contestants"]
    with tempfile.TemporaryDirectory() as tmp:
        for key, config in contestants(name, seed, smoke).items():
            if ((only and key not in only) or (key.startswith("torch") and torch is None)
                    or key in results["contestants"]):
                continue
            load = os.getloadavg()[0]
            figures = (train_twin(config, corpus) if key.startswith("torch")
                       else train_jax(config, corpus, Path(tmp) / key))
            results["contestants"][key] = figures | {"load_before": load, "load_after": os.getloadavg()[0]}
            print(key, json.dumps(results["contestants"][key]), flush=True)
            if out is not None:
                write_json(out, results)
    results["ratios"] = ratios(results["contestants"])
    return results


def ratios(c: dict[str, dict]) -> dict[str, float | None]:
    """How much sooner slt-jax has a trained model, split into the code's and the recipe's shares."""
    ratio = lambda a, b, f: f(c[a]) / f(c[b]) if a in c and b in c else None
    per_update = lambda r: r["train_s"] / r["updates"]
    recipes = [k for k in c if k.startswith("jax_") and k != "jax_authors"]
    return ({f"wall_torch_authors_over_{k}": ratio("torch_authors", k, lambda r: r["wall_s"]) for k in c
             if k.startswith("jax_")}
            | {"seconds_per_update_torch_over_jax": ratio("torch_authors", "jax_authors", per_update)}
            | {f"updates_jax_authors_over_{k}": ratio("jax_authors", k, lambda r: r["updates"]) for k in recipes})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, help="a corpus in the converted layout (e.g. `slt-jax synth --preset small`)")
    p.add_argument("--config", default="gloss16", help="the preset to train (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="the one seed every contestant trains (default: %(default)s)")
    p.add_argument("--only", help="comma-separated contestants to run (default: all)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/time_to_model.json"),
                   help="where the figures go (default: %(default)s)")
    p.add_argument("--smoke", action="store_true", help="the tiny test corpus, 3 epochs: checks the code only")
    args = p.parse_args()
    reuse_freed_memory()
    if args.smoke:
        from slt_jax.synth.corpus import write_corpus
        from slt_jax.synth.presets import PRESETS
        corpus = Path(tempfile.mkdtemp()) / "corpus"
        write_corpus(corpus, PRESETS["tiny"], progress=False)
    elif args.corpus is None:
        p.error("--corpus is required (or --smoke)")
    else:
        corpus = args.corpus
    results = run(corpus, args.config, args.seed, args.smoke, args.only.split(",") if args.only else None, args.out)
    write_json(args.out, results)
    print(json.dumps(results["ratios"], indent=1))


if __name__ == "__main__":
    main()
