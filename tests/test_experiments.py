"""The experiments/ scripts run as a user would run them, on the toy corpus with capped epochs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
QUICK = ["--set", "train.max_epochs=2", "--set", "model.d_ff=32"]


def run(script: str, *args) -> str:
    done = subprocess.run([sys.executable, str(EXPERIMENTS / script), *map(str, args)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def table1(corpus_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("table1")
    return workdir, run("table1.py", "--data", corpus_dir, "--workdir", workdir, "--seeds", 2,
                        "--configs", "gloss16", *QUICK)


def test_table1_sweeps_the_seeds_and_prints_the_table(table1):
    workdir, printed = table1
    assert printed == (workdir / "table1.md").read_text() + "\n"
    wers = [json.loads((workdir / "gloss16" / f"seed_{k}" / "eval_test.json").read_text())["wer"] for k in (0, 1)]
    assert f"| gloss16 | 2 | {sum(wers) / 2:.3f}" in printed


def test_figures_analyses_the_median_seed(table1, tmp_path):
    workdir, _ = table1
    printed = run("figures.py", "--workdir", workdir, "--out", tmp_path, "--seeds", 2, "--configs", "gloss16")
    results = json.loads((tmp_path / "gloss16" / "analysis.json").read_text())
    assert printed.startswith("gloss16 (seed_") and f'"wer": {results["wer"]}' in printed
    assert (tmp_path / "gloss16" / "fig2a_cross_attention_sample.png").is_file()
    seeds = tmp_path / "seeds"  # the same analysis twice: the table's interval over seeds is a point
    for k in (0, 1):
        (seeds / f"seed_{k}").mkdir(parents=True)
        (seeds / f"seed_{k}" / "analysis.json").write_text((tmp_path / "gloss16" / "analysis.json").read_text())
    table = run("attribution_table.py", f"gloss16={seeds}")
    own = results["attribution"]["lenses"]["attention"]["own_sign"]
    assert f"| gloss16 | attention | {own:.2f} [{own:.2f}, {own:.2f}] |" in table


def test_length_bound_decodes_each_run_three_ways(table1, tmp_path):
    workdir, _ = table1
    printed = run("length_bound.py", "--runs", workdir, "--beam", 2, "--out", tmp_path / "table.md")
    assert printed == (tmp_path / "table.md").read_text() + "\n"
    for k in (0, 1):  # greedy to the bound is what `evaluate` scored
        scores = json.loads((workdir / "gloss16" / f"seed_{k}" / "eval_test.json").read_text())
        (row,) = [line for line in printed.splitlines() if line.startswith(f"| gloss16 seed {k} |")]
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == f"{scores['length_bound']} / 20"
        assert cells[4].startswith(f"{scores['wer']:.3f} / {scores['exact_match']:.3f} / ")


def test_text_model_scores_greedy_and_beam(corpus_dir, tmp_path):
    printed = run("text_model.py", "--data", corpus_dir, "--workdir", tmp_path, *QUICK)
    greedy, beam = (json.loads((tmp_path / name).read_text()) for name in ("eval_test.json", "eval_test_beam.json"))
    assert f"greedy: BLEU-1..4 {greedy['bleu1']:.2f}" in printed and f"beam: BLEU-1..4 {beam['bleu1']:.2f}" in printed
    assert beam["beam"] == 32 and (tmp_path / "analysis_test" / "fig7a_cross_attention_1-5.png").is_file()
