"""The pipelines' sub-commands: translate, sweep, reproduce, ablate and study."""

from __future__ import annotations

import os
from pathlib import Path

from slt_jax.cli_args import (SCORED_SPLITS, add_configs, add_data, add_decoding, add_epochs, add_overrides,
                              add_quiet, add_recipe, add_seed, add_seeds, add_split, add_workdir, examples)
from slt_jax.config import PRESETS, STUDY_RECIPE, run_config
from slt_jax.pipelines.designs import (CELLS_BY_NAME, MAIN_JOB_CONFIGS, MAIN_JOB_SEEDS, VARIANT_HELP, cell_config,
                                       variant_config)


def add_commands(subparsers) -> None:
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
    p.set_defaults(run=_sweep, resolve_configs=lambda args: [run_config(name, args.recipe, None, args.epochs, args.overrides)
                                                      for name in args.configs.split(",")])

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
    add_seeds(p, default=MAIN_JOB_SEEDS)
    add_configs(p, ",".join(MAIN_JOB_CONFIGS), "presets, a -normalised suffix for normalised features")
    add_epochs(p)
    add_seed(p, help="seed of the corpus and first model (default: %(default)s)")
    add_recipe(p)
    add_quiet(p)
    p.set_defaults(run=_reproduce, resolve_configs=_main_job_configs)

    p = subparsers.add_parser(
        "ablate", help="compare input-feature variants, seeds vmapped per variant; write ablation.md",
        description="Train each feature variant (the base config with those options; docs/features.md) "
        "for --seeds seeds as one vmapped program, score every seed, and write ablation.md / "
        "ablation.csv: WER, exact match and teacher-forced alignment scores, mean ± std over seeds. "
        "Options, joined by '+' within a variant: "
        + "; ".join(f"{name} ({text})" for name, text in VARIANT_HELP.items()) + ".",
        **examples("slt-jax ablate --data corpus/ --workdir ablation/ --variants raw,body,body+hands --seeds 3"))
    add_data(p)
    p.add_argument("--base", default="gloss16", choices=sorted(PRESETS), help="base preset (default: %(default)s)")
    p.add_argument("--variants", default="raw,body,body+hands,body+hands+velocity",
                   help="comma-separated variants (default: %(default)s)")
    add_seeds(p, per="variant")
    add_workdir(p, help="where the runs and the table go")
    add_split(p, "score", SCORED_SPLITS)
    add_epochs(p)
    add_recipe(p)
    add_overrides(p, help="override a field of the base config; the variant decides the feature fields")
    add_quiet(p)
    p.set_defaults(run=_ablate, resolve_configs=lambda args: [variant_config(_base(args), v) for v in args.variants.split(",")])

    p = subparsers.add_parser(
        "study", help="when does attention align? positive/negative controls and one-factor changes, with seeds",
        description="Train and analyse the study's cells (docs/findings.md): the paper's setting on the "
        "repeated-sentence corpus, one factor changed at a time (training length, hidden size, target, "
        "features), and the positive control (`novel`: no held-out sentence occurs in training). Writes "
        "OUT/study.md, study.json and study.png after each cell; run it again to reuse finished cells. "
        f"Cells, in order: {', '.join(CELLS_BY_NAME)}.",
        **examples("slt-jax study --out out/study", "slt-jax study --out out/study --cells small-gloss16,novel-gloss16 --seeds 2"))
    p.add_argument("--out", required=True, help="the study's folder (give `reproduce --out`'s OUT/study to "
                   "add the study to that report)")
    p.add_argument("--cells", default=",".join(CELLS_BY_NAME), help="comma-separated cells (default: all)")
    add_seeds(p, per="cell")
    add_recipe(p, default=STUDY_RECIPE, why=", with hash dropout masks, not the other commands' converge with "
               "philox: docs/findings.md's figures were measured so")
    add_seed(p, help="seed of the corpora and of each cell's first model (default: %(default)s)")
    add_quiet(p)
    p.set_defaults(run=_study, resolve_configs=lambda args: [cell_config(CELLS_BY_NAME[c], args.recipe, args.seed)
                                                      for c in args.cells.split(",")])


def _main_job_configs(args):
    from slt_jax.pipelines.reproduce import main_job_configs

    return main_job_configs(args.configs.split(","), args.recipe, args.seed, args.epochs)


def _base(args):
    """Ablation's base config: the preset, its recipe, `--set`, then `--epochs`."""
    return run_config(args.base, args.recipe, None, args.epochs, args.overrides)


def _translate(args) -> None:
    from slt_jax.pipelines.translation import translate_to

    translations = translate_to(args.out, args.workdir, args.inputs, args.decode, args.beam, args.length_penalty,
                                args.view, args.model, progress=not args.quiet)
    for t in translations:
        print(f"{t.id}: {t.hypothesis}" + (" [cut at the length bound]" if t.stopped_by == "length_bound" else ""))
    print(f"translations: {args.out}/translations.csv, {args.out}/translations.json")


def _sweep(args) -> None:
    from slt_jax.pipelines.sweep import sweep

    sweep(args.resolve_configs(args), args.data, args.workdir, args.seeds, args.split, progress=not args.quiet)
    print((Path(args.workdir) / "table1.md").read_text(encoding="utf-8"))


def _reproduce(args) -> None:
    from slt_jax.pipelines.page import render_markdown
    from slt_jax.pipelines.reproduce import reproduce

    summary = reproduce(args.out, args.corpus, args.seeds, args.configs.split(","), args.epochs, args.seed,
                        args.recipe, progress=not args.quiet)
    print(render_markdown(summary))
    print(f"report: {args.out}/index.html")


def _ablate(args) -> None:
    from slt_jax.pipelines.ablate import ablate

    ablate(_base(args), args.variants.split(","), args.data, args.workdir, args.seeds, args.split, progress=not args.quiet)
    print((Path(args.workdir) / "ablation.md").read_text(encoding="utf-8"))


def _study(args) -> None:
    from slt_jax.pipelines.study import render_markdown, study

    unknown = [c for c in args.cells.split(",") if c not in CELLS_BY_NAME]
    if unknown:
        raise SystemExit(f"slt-jax study: unknown cell(s) {', '.join(unknown)}; choose from {', '.join(CELLS_BY_NAME)}")
    summary = study(args.out, [CELLS_BY_NAME[c] for c in args.cells.split(",")], args.seeds, args.recipe, args.seed, progress=not args.quiet)
    print(render_markdown(summary))
    print(f"study: {os.path.join(args.out, 'study.md')}")
