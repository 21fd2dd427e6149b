"""`slt-jax synth` (write a synthetic GSL-like corpus) and `slt-jax render` (draw a sample)."""

from __future__ import annotations

from slt_jax.cli_args import add_data, add_quiet, add_seed, add_workers, examples
from slt_jax.synth.presets import PRESETS


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="write a synthetic GSL-like corpus with ground-truth sign spans",
        description="Generate MediaPipe-Holistic-like keypoints of invented signers signing an "
        "invented sign language, in the converted layout (annotations.csv with gloss_spans, "
        "metadata.json, poses/<id>.npy). The same preset and seed always give the same corpus. "
        "Run it again on the same folder to finish an interrupted run.",
        **examples("slt-jax synth --out corpus_small/", "slt-jax synth --out corpus_novel/ --preset novel"))
    p.add_argument("--out", required=True, metavar="DIR", help="corpus folder: new, empty, or an unfinished run")
    p.add_argument("--preset", default="small", choices=list(PRESETS),
                   help="gsl: GSL's size and shape (10,290 samples); small: the same shape in 1,050 "
                   "samples, for quick training; novel: small's size, but every sample signs its own new "
                   "sentence, so no test sentence occurs in training (the study's positive control, "
                   "docs/findings.md); tiny: a few dozen short samples, for tests (default: %(default)s)")
    add_seed(p)
    add_workers(p, "processes generating poses")
    add_quiet(p, "bar")
    p.set_defaults(run=_synth)

    p = subparsers.add_parser(
        "render", help="draw a sample as a stick figure (animated GIF or PNG strip)",
        description="Draw one sample of a corpus in the converted layout: body, hands and face "
        "outline, with the gloss being signed as caption where the corpus has gloss_spans. A "
        "hand the tracker lost is a cross at the wrist.",
        **examples("slt-jax render --data corpus_small/ --id signer1_rep1_sentence0005 --out sample.gif"))
    add_data(p, metavar="DIR")
    p.add_argument("--id", required=True, help="sample id (a row of annotations.csv)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="FILE.gif (animation) or FILE.png (strip of frames)")
    p.add_argument("--frames", type=int, default=8, help="frames in a PNG strip (default: %(default)s)")
    p.set_defaults(run=_render)


def _synth(args) -> None:
    import collections
    import time

    from slt_jax.synth.corpus import write_corpus

    start = time.perf_counter()
    world = write_corpus(args.out, PRESETS[args.preset], args.seed, args.workers, progress=not args.quiet)
    splits = collections.Counter(item.split for item in world.plan)
    print(f"{args.out}: {len(world.plan)} samples ({', '.join(f'{k} {v}' for k, v in splits.items())}), "
          f"{len(world.glosses)} glosses, {len(world.sentences)} sentences, {len(world.signers)} signers, "
          f"in {time.perf_counter() - start:.1f} s")


def _render(args) -> None:
    from pathlib import Path

    from slt_jax import layout
    from slt_jax.synth import render

    suffix = Path(args.out).suffix.lower()
    if suffix not in (".gif", ".png"):
        raise layout.LayoutError(f"{args.out}: the output must end in .gif or .png")
    found = [s for s in layout.read_annotations(args.data) if s.id == args.id]
    if not found:
        raise layout.LayoutError(f"{args.data}: no sample with id {args.id!r} in annotations.csv")
    sample, meta = found[0], layout.read_metadata(args.data)
    pose = layout.load_pose(args.data, args.id)
    glosses = sample.gloss.split()
    captions = render.captions_from_spans(len(pose), glosses, sample.gloss_spans) if sample.gloss_spans else None
    seq = render.Sequence(pose, (meta.get("width", 1), meta.get("height", 1)), captions,
                          sample.id if captions else f"{sample.id}: {sample.gloss}")
    if suffix == ".gif":
        render.animation(seq, args.out, fps=meta.get("fps", 30))
    else:
        render.strip([seq], args.out, frames=args.frames)
    print(f"wrote {args.out}")
