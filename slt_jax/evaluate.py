"""Translating a split with a trained run, scoring it and writing the results."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

import numpy as np

from slt_jax import data
from slt_jax.decode import beam_search, greedy_decode
from slt_jax.layout import write_json, write_text
from slt_jax.metrics import translation_metrics
from slt_jax.runs import Run, load_run
from slt_jax.train import batch_sharding, model_inputs, replicated


def decode_batches(run: Run, examples: list[data.Example], method: str = "greedy", beam: int = 32,
                   length_penalty: float = 0.0, batch_size: int | None = None,
                   max_len: int | None = None) -> Iterator[tuple]:
    """Decodes the examples batch by batch, each translation at most `max_len` tokens (default:
    `run.length_bound`).

    Yields:
      (the batch, its model inputs, the replicated parameters, tokens (B, max_len)) per batch;
      `batch["index"][batch["sample_mask"]]` are the rows' positions in `examples`.
    """
    config = run.config
    batch_size = batch_size or config.train.batch_size
    sharding = batch_sharding(batch_size)
    params, bound = replicated(sharding, run.params), max_len or run.length_bound
    for batch in data.make_batches(examples, config.data, batch_size):
        inputs = model_inputs(batch, sharding)
        args = (run.model, params, inputs["frames"], inputs["frame_mask"], bound)
        if method == "greedy":
            tokens = greedy_decode(*args)
        elif method == "beam":
            tokens = beam_search(*args, beam=beam, length_penalty=length_penalty)
        else:
            raise ValueError(f"unknown decoding method {method!r} (greedy or beam)")
        yield batch, inputs, params, tokens


def translate(run: Run, examples: list[data.Example], method: str = "greedy", beam: int = 32,
              length_penalty: float = 0.0, batch_size: int | None = None) -> list[str]:
    """Decodes every example; returns hypotheses in the examples' order."""
    hypotheses = [""] * len(examples)
    for batch, _, _, tokens in decode_batches(run, examples, method, beam, length_penalty, batch_size):
        for row, index in zip(np.asarray(tokens), batch["index"][batch["sample_mask"]]):
            hypotheses[index] = run.vocab.decode(row)
    return hypotheses


def evaluate(workdir, split: str = "test", data_dir=None, method: str = "greedy", beam: int = 32,
             length_penalty: float = 0.0, progress: bool = True) -> dict:
    """Scores a run on a split and writes eval_<split>.json and translations_<split>.csv
    (eval_<split>_beam.json and translations_<split>_beam.csv for beam search).

    Args:
      workdir: a training workdir (config, vocabulary and checkpoints).
      split: train, val or test.
      data_dir: the corpus; defaults to the one the run was trained on.
      method, beam, length_penalty: decoding settings.
    """
    workdir = Path(workdir)
    run = load_run(workdir)
    data_dir = data_dir or run.data_dir
    examples = data.load_examples(data_dir, split, run.config.data, run.vocab, progress)
    hypotheses = translate(run, examples, method, beam, length_penalty)
    references = [ex.reference for ex in examples]
    scores = translation_metrics(references, hypotheses)
    scores |= {"split": split, "decode": method, "config": run.config.name, "epoch": run.epoch,
               "length_bound": run.length_bound}
    if method == "beam":
        scores |= {"beam": beam, "length_penalty": length_penalty}
    name = split if method == "greedy" else f"{split}_{method}"  # greedy scores feed sweeps and reports
    write_json(workdir / f"eval_{name}.json", scores)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "reference", "hypothesis", "correct"])
    for ex, hyp in zip(examples, hypotheses):
        writer.writerow([ex.id, ex.reference, hyp, int(ex.reference.split() == hyp.split())])
    write_text(workdir / f"translations_{name}.csv", buf.getvalue())
    return scores
