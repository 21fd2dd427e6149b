"""Translations that do not stop: every run of a main-job folder decoded on its test split three
ways, greedy up to `data.max_tokens` (as before runs had a length bound), greedy up to the run's
length bound (`Run.length_bound`, today's default) and beam search with length normalisation up
to the bound; WER, exact match and how many outputs never emit <eos> within the limit (loops on
one gloss, cut there).

    python experiments/length_bound.py --runs out/runs [--beam 8] [--out table.md]

Reads the runs only (nothing is trained or written beside them); prints a markdown table
(docs/reproduce.md, "Decoding that stops").
"""

import argparse
from pathlib import Path

import numpy as np

from slt_jax import data
from slt_jax.config import EOS
from slt_jax.evaluate import decode_batches
from slt_jax.hostmem import reuse_freed_memory
from slt_jax.layout import write_text
from slt_jax.metrics import translation_metrics
from slt_jax.runs import load_run


def decode(run, examples, max_len: int, beam: int = 0) -> np.ndarray:
    """(N, max_len) tokens in the examples' order, greedy or (beam > 0) beam search with length
    normalisation (length_penalty 1: log-probability per token)."""
    tokens = np.zeros((len(examples), max_len), np.int32)
    method = "beam" if beam else "greedy"
    for batch, _, _, rows in decode_batches(run, examples, method, beam, length_penalty=1.0, max_len=max_len):
        tokens[batch["index"][batch["sample_mask"]]] = np.asarray(rows)[batch["sample_mask"]]
    return tokens


def scores(run, examples, tokens: np.ndarray) -> dict:
    hypotheses = [run.vocab.decode(row) for row in tokens]
    metrics = translation_metrics([ex.reference for ex in examples], hypotheses)
    return {"wer": metrics["wer"], "exact_match": metrics["exact_match"],
            "no_eos": int((~(tokens == EOS).any(1)).sum())}


def measure(run_dir: Path, beam: int) -> dict:
    run = load_run(run_dir)
    examples = data.load_examples(run.data_dir, "test", run.config.data, run.vocab, progress=False)
    bound = run.length_bound
    ways = {"unbounded": decode(run, examples, run.config.data.max_tokens),
            "bound": decode(run, examples, bound)}
    if beam:
        ways["beam"] = decode(run, examples, bound, beam)
    return {"n": len(examples), "length_bound": bound, "max_tokens": run.config.data.max_tokens,
            "ways": {way: scores(run, examples, tokens) for way, tokens in ways.items()}}


def table(results: dict[str, dict], beam: int) -> str:
    ways = ["unbounded", "bound"] + (["beam"] if beam else [])
    names = {"unbounded": "greedy to max_tokens", "bound": "greedy to the bound",
             "beam": f"beam {beam}, length-normalised, to the bound"}
    head = ["run", "test samples", "bound / max_tokens"] + [f"{names[w]}: WER / exact / no <eos>" for w in ways]
    rows = [head, ["---"] * len(head)]
    for name, r in results.items():
        cells = [f"{r['ways'][w]['wer']:.3f} / {r['ways'][w]['exact_match']:.3f} / {r['ways'][w]['no_eos']}"
                 for w in ways]
        rows.append([name, str(r["n"]), f"{r['length_bound']} / {r['max_tokens']}", *cells])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, type=Path, help="a main job's runs folder (RUNS/<config>/seed_<k>)")
    parser.add_argument("--beam", type=int, default=8, help="beam width for the third column; 0: no beam search")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    reuse_freed_memory()
    run_dirs = sorted(p.parent for p in args.runs.glob("*/seed_*/config.json"))
    results = {f"{d.parent.name} seed {d.name.split('_')[1]}": measure(d, args.beam) for d in run_dirs}
    text = table(results, args.beam)
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
