"""The core sub-commands: train, evaluate, translate, sweep and reproduce."""

from __future__ import annotations

import json

from slt_jax.cli_args import (MAIN_JOB_CONFIGS, SCORED_SPLITS, add_configs, add_data, add_decoding, add_epochs,
                              add_overrides, add_quiet, add_recipe, add_seed, add_seeds, add_split, add_workdir,
                              epoch_cap, examples)
from slt_jax.config import PRESETS


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
    p.set_defaults(run=_train, resolve_configs=lambda args: [_config(args.config, args)])

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

    p = subparsers.add_parser(
        "translate", help="translate your own videos, frame folders, .pose or .npy files with a trained run",
        description="Translate clips with a trained run: keypoints are read from .npy ((frames, people, 543, dims)) "
        "and .pose files, or extracted from videos and folders of frames with MediaPipe Holistic (the `extract` "
        "extra), then selected and normalised as the run was trained, and decoded up to the run's length bound. "
        "Writes OUT/translations.csv (id, hypothesis) and OUT/translations.json (per input: tokens with their "
        "probabilities, and whether <eos> or the length bound ended it).",
        **examples("slt-jax translate --workdir out/runs/gloss16/seed_0 --out mine --view clip.mp4 frames/ a.pose b.npy"))
    add_workdir(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a video, a folder of frames (or of videos), a .pose or a .npy file")
    add_decoding(p)
    p.add_argument("--view", action="store_true",
                   help="also write OUT/viewer.html: each clip's poses and greedy translation with its attention")
    p.add_argument("--model", metavar="FILE.task", help="a HolisticLandmarker bundle for the videos, as in extract")
    add_quiet(p, "bar")
    p.set_defaults(run=_translate)

    p = subparsers.add_parser(
        "sweep", help="train several seeds of each config as one vmapped program; write Table 1",
        description="For each config, train --seeds seeds in one jit-compiled program vmapped over "
        "seeds (each seed stops early and keeps its best parameters on its own), evaluate every "
        "seed, and write table1.md / table1.csv (mean ± std over seeds, the paper's WER beside). "
        "Seed k of config C is a normal run in WORKDIR/C/seed_k.",
        **examples("slt-jax sweep --data corpus/ --configs gloss16,gloss32 --seeds 3 --workdir runs/"))
    add_data(p)
    add_configs(p)
    add_seeds(p)
    add_workdir(p, help="where the runs and the table go")
    add_split(p, "score", SCORED_SPLITS)
    add_epochs(p)
    add_recipe(p)
    add_overrides(p, help="override a field of every config")
    add_quiet(p)
    p.set_defaults(run=_sweep, resolve_configs=lambda args: [_config(name, args) for name in args.configs.split(",")])

    p = subparsers.add_parser(
        "reproduce", help="the paper end to end: corpus, seed sweep, analyses, one HTML report",
        description="Make the embedded synthetic corpus (or use yours), train every config's seeds "
        "as one vmapped program each, evaluate, analyse every seed's attention, check the paper's "
        "six conclusions, and write OUT/index.html and OUT/report.md, rewritten after every config "
        "(a banner names those still training). Run it again to reuse finished steps.",
        **examples("slt-jax reproduce --out out", "slt-jax reproduce --out smoke --corpus tiny --configs tiny --epochs 1"))
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--corpus", default="small",
                   help="synthetic preset tiny|small|novel|gsl, or a corpus folder (default: %(default)s)")
    add_seeds(p, default=2)
    add_configs(p, MAIN_JOB_CONFIGS, "presets, a -normalised suffix for normalised features")
    add_epochs(p)
    add_seed(p, help="seed of the corpus and first model (default: %(default)s)")
    add_recipe(p)
    add_quiet(p)
    p.set_defaults(run=_reproduce, resolve_configs=_main_job_configs)


def _config(name: str, args):
    """A train or sweep config: the preset, its recipe, `--set`, then `--seed` and `--epochs`."""
    from slt_jax.config import get_config

    seed = getattr(args, "seed", None)  # sweep numbers its seeds from the preset's
    seed = [] if seed is None else [f"train.seed={seed}"]
    return get_config(name, [*args.overrides, *seed, *epoch_cap(args.epochs)], args.recipe)


def _main_job_configs(args):
    from slt_jax.pipelines.reproduce import main_job_configs

    return main_job_configs(args.configs.split(","), args.recipe, args.seed, args.epochs)


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


def _translate(args) -> None:
    from slt_jax.pipelines.translation import translate_to

    translations = translate_to(args.out, args.workdir, args.inputs, args.decode, args.beam, args.length_penalty,
                                args.view, args.model, progress=not args.quiet)
    for t in translations:
        print(f"{t.id}: {t.hypothesis}" + (" [cut at the length bound]" if t.stopped_by == "length_bound" else ""))
    print(f"translations: {args.out}/translations.csv, {args.out}/translations.json")


def _sweep(args) -> None:
    from pathlib import Path

    from slt_jax.pipelines.sweep import sweep

    sweep(args.resolve_configs(args), args.data, args.workdir, args.seeds, args.split, progress=not args.quiet)
    print((Path(args.workdir) / "table1.md").read_text(encoding="utf-8"))


def _reproduce(args) -> None:
    from slt_jax.pipelines.reproduce import reproduce, render_markdown

    summary = reproduce(args.out, args.corpus, args.seeds, args.configs.split(","), args.epochs, args.seed,
                        args.recipe, progress=not args.quiet)
    print(render_markdown(summary))
    print(f"report: {args.out}/index.html")
