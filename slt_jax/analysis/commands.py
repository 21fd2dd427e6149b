"""The `analyze` sub-command: the paper's figures and the alignment/faithfulness scores of a run."""

from __future__ import annotations

import json


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="attention figures and alignment/faithfulness scores of a trained run",
        description="Translate a split greedily while recording attention, then write the paper's "
        "figures (2a, 2b, 3a/3b, 4, 5, 6; 7a-d for a text model), the alignment and deletion figures "
        "and analysis.json (keys documented in slt_jax/analysis/report.py and docs/interpretability.md).")
    p.add_argument("--workdir", required=True, help="a workdir written by `slt-jax train`")
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="split to analyse (default: %(default)s)")
    p.add_argument("--out", help="output folder (default: <workdir>/analysis_<split>)")
    p.add_argument("--sample", help="sample id for Figures 2a/2b (default: a correct 3-gloss one if any)")
    p.add_argument("--data", help="corpus folder (default: the one the run was trained on)")
    p.add_argument("--fractions", default="0.05,0.1,0.2,0.3,0.5",
                   help="shares of real frames to delete in the faithfulness tests (default: %(default)s)")
    p.add_argument("--tolerance", type=float, default=2.0,
                   help="sign-boundary F1 tolerance in sampled frames (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random deletions (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_analyze)


def _analyze(args) -> None:
    from slt_jax.analysis.report import analyze

    fractions = tuple(float(f) for f in args.fractions.split(",") if f)
    results = analyze(args.workdir, args.split, args.out, args.sample, args.data, fractions, args.tolerance,
                      args.seed, progress=not args.quiet)
    print(json.dumps(results, indent=2, ensure_ascii=False))
