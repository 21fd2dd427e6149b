"""The `analyze` sub-command: the paper's figures and the alignment/faithfulness scores of a run."""

from __future__ import annotations

import json

from slt_jax.cli_args import add_data, add_quiet, add_seed, add_split, add_workdir, examples


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="attention figures and alignment/faithfulness scores of a trained run",
        description="Translate a split greedily while recording attention, then write the paper's "
        "figures (2a, 2b, 3a/3b, 4, 5, 6; 7a-d for a text model), the alignment and deletion figures "
        "and analysis.json (keys documented in slt_jax/analysis/report.py and docs/interpretability.md).",
        **examples("slt-jax analyze --workdir runs/gloss16 --split test"))
    add_workdir(p)
    add_split(p, "analyse")
    p.add_argument("--out", help="output folder (default: <workdir>/analysis_<split>)")
    p.add_argument("--sample", help="sample id for Figures 2a/2b (default: a correct 3-gloss one if any)")
    add_data(p, required=False)
    p.add_argument("--fractions", default="0.05,0.1,0.2,0.3,0.5",
                   help="shares of real frames to delete in the faithfulness tests (default: %(default)s)")
    p.add_argument("--tolerance", type=float, default=2.0,
                   help="sign-boundary F1 tolerance in sampled frames (default: %(default)s)")
    add_seed(p, help="seed of the random deletions (default: %(default)s)")
    add_quiet(p)
    p.set_defaults(run=_analyze)

    p = subparsers.add_parser(
        "view", help="an interactive page: the signer's poses, the translation and its attention",
        description="Translate a split greedily while recording attention and write one static HTML page "
        "(no server, no network; open it from disk): pick a sample, play its poses as a stick figure, "
        "click a decoded token to see its cross-attention over the frames beside the true sign spans, "
        "its self-vs-cross share, and the encoder attention of the frame under the cursor (docs/viewer.md).",
        **examples("slt-jax view --workdir runs/gloss16 --split test"))
    add_workdir(p)
    add_split(p, "show")
    p.add_argument("--out", help="output folder for viewer.html (default: <workdir>/view_<split>)")
    add_data(p, required=False)
    p.add_argument("--mode", default="causal", choices=("causal", "paper"),
                   help="decoding recorded: causal (as trained) or the authors' paper mode (default: %(default)s)")
    p.set_defaults(run=_view)


def _analyze(args) -> None:
    from slt_jax.analysis.report import analyze

    fractions = tuple(float(f) for f in args.fractions.split(",") if f)
    results = analyze(args.workdir, args.split, args.out, args.sample, args.data, fractions, args.tolerance,
                      args.seed, progress=not args.quiet)
    print(json.dumps(results, indent=2, ensure_ascii=False))


def _view(args) -> None:
    from slt_jax.analysis.viewer import write_viewer

    path = write_viewer(args.workdir, args.split, args.out, args.data, args.mode)
    print(f"viewer: {path.resolve().as_uri()}")
