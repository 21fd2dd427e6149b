"""The core sub-commands: train and evaluate."""

from __future__ import annotations

import json

from slt_jax.cli_args import (add_data, add_decoding, add_epochs, add_overrides, add_quiet, add_recipe, add_seed,
                              add_split, add_workdir, examples)
from slt_jax.config import PRESETS, run_config


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on a corpus in the converted layout",
        description="Train a SignAttention Transformer. Resumes from the workdir's latest "
        "checkpoint when run again with the same settings.",
        **examples("slt-jax train --data corpus/ --config gloss16 --workdir runs/gloss16",
                   "slt-jax train --data corpus/ --config gloss16 --workdir runs/authors --recipe authors",
                   "slt-jax train --data corpus/ --config gloss16 --workdir runs/norm "
                   "--set data.body_norm=sequence --set data.hand_norm=true"))
    add_data(p, help="corpus folder (annotations.csv, metadata.json, poses/)")
    p.add_argument("--config", default="gloss16", choices=sorted(PRESETS),
                   help="preset: the authors' gloss16/32/64 and text16, or tiny for smoke runs "
                   "(default: %(default)s)")
    add_workdir(p, help="where config, vocabulary, checkpoints and metrics go")
    add_epochs(p)
    add_seed(p, default=None, help="random seed (default: the preset's)")
    add_recipe(p)
    add_overrides(p)
    add_quiet(p)
    g = p.add_argument_group(
        "several processes", "Start the same command on every host (or several on one machine), each with its "
        "--process-id; they train one model data-parallel over all their devices (BUILD.md).")
    g.add_argument("--coordinator", metavar="HOST:PORT",
                   help="process 0's address and a free port; every process passes the same")
    g.add_argument("--num-processes", type=int, metavar="N", help="how many processes take part")
    g.add_argument("--process-id", type=int, metavar="K", help="this process's number, 0 to N-1")
    g.add_argument("--distributed", action="store_true",
                   help="join JAX's distributed runtime even without the three options above: on Cloud TPU, "
                   "Slurm or Open MPI it finds them itself (implied by any of them)")
    p.set_defaults(run=_train, resolve_configs=lambda args: [run_config(args.config, args.recipe, args.seed, args.epochs,
                                                                        args.overrides)])

    p = subparsers.add_parser(
        "evaluate", help="decode a split with a trained run and score it",
        description="Translate a split with the run's best parameters; print the metrics and write "
        "<workdir>/eval_<split>.json and <workdir>/translations_<split>.csv (with a _beam suffix for beam "
        "search).",
        **examples("slt-jax evaluate --workdir runs/gloss16 --split test --decode beam --beam 8"))
    add_workdir(p)
    add_split(p, "translate")
    add_data(p, required=False)
    add_decoding(p)
    add_quiet(p)
    p.set_defaults(run=_evaluate)


def _join_processes(args) -> None:
    """Starts JAX's distributed runtime (before anything else touches jax) when asked to."""
    given = (args.coordinator, args.num_processes, args.process_id)
    if args.distributed or any(v is not None for v in given):
        import jax

        jax.distributed.initialize(*given)


def _train(args) -> None:
    _join_processes(args)
    from slt_jax.train import train

    (config,) = args.resolve_configs(args)
    result = train(config, args.data, args.workdir, progress=not args.quiet)
    print(json.dumps(result, indent=2))


def _evaluate(args) -> None:
    from slt_jax.evaluate import evaluate

    scores = evaluate(args.workdir, args.split, args.data, args.decode, args.beam, args.length_penalty,
                      progress=not args.quiet)
    print(json.dumps(scores, indent=2, ensure_ascii=False))

