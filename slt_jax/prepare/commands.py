"""`slt-jax prepare csv|gsl|phoenix|pose`: a user's table, released corpora or `.pose` files -> the converted layout."""

from __future__ import annotations

from pathlib import Path

from slt_jax.cli_args import add_quiet, add_seed, examples
from slt_jax.prepare.corpus import REPORT


def add_commands(subparsers) -> None:
    prepare = subparsers.add_parser(
        "prepare", help="your CSV and keypoint files, a released corpus or .pose files -> a corpus",
        description="Write a corpus folder (annotations.csv, metadata.json, poses/<id>.npy) that "
        "`slt-jax train` reads. Inputs left out (missing keypoints, duplicate or malformed rows) are "
        f"printed and listed in OUT/{REPORT}. OUT must be new or empty; it appears only when complete.",
        **examples("slt-jax prepare csv --annotations clips.csv --keypoints keypoints/ --out corpus/"))
    sources = prepare.add_subparsers(title="sources", metavar="SOURCE", required=True)

    p = sources.add_parser(
        "csv", help="your own table of clips (CSV, or an ELAN-like export) and their keypoint files",
        description="Read a table with a header row (comma, tab, semicolon or |): columns id (the keypoint "
        "file's name without extension), signer, text and/or gloss, optional split (train, val/dev, test) "
        "and optional gloss_start/gloss_end (one per gloss, space-separated). One row per clip, or one row per "
        "gloss annotation (consecutive rows of one id are one clip). Without a split column, whole signers "
        "go to test, then val, until each holds at least 10% of the clips (seeded order); the rest train. "
        "Keypoints: .npy files (`slt-jax extract`'s output) or MediaPipe Holistic .pose files. "
        "docs/own-data.md has the details.",
        **examples("slt-jax prepare csv --annotations clips.csv --keypoints keypoints/ --out corpus/",
                   "slt-jax prepare csv --annotations elan.tsv --keypoints keypoints/ --out corpus/ "
                   "--span-unit seconds --fps 25"))
    p.add_argument("--annotations", required=True, metavar="FILE", help="the table of clips")
    p.add_argument("--keypoints", required=True, metavar="DIR",
                   help="a folder of <id>.npy / <id>.pose files, or an `slt-jax extract` output folder")
    p.add_argument("--out", required=True, metavar="DIR", help="corpus folder to create")
    p.add_argument("--span-unit", default="frames", choices=("frames", "seconds"),
                   help="unit of gloss_start/gloss_end; seconds are rounded to the nearest frame (default: %(default)s)")
    p.add_argument("--fps", type=float,
                   help="frame rate of keypoint files that carry none (frame folders, bare .npy); .pose headers "
                   "and `extract`'s manifest give their own")
    add_seed(p, help="seed of the order in which signers are held out, without a split column (default: %(default)s)")
    p.add_argument("--allow-partial", action="store_true",
                   help="accept reduced Holistic .pose layouts; their missing points become NaN")
    add_quiet(p, "bar")
    p.set_defaults(run=_csv)

    p = sources.add_parser(
        "gsl", help="the Greek Sign Language dataset, as released",
        description="GSL continuous: the release's |-separated annotations.csv and split files, "
        "matched with keypoints that `slt-jax extract` wrote for the sentence frame folders. "
        "The release's dev split becomes val.",
        **examples("slt-jax prepare gsl --annotations GSL_continuous/ --keypoints gsl_keypoints/ --out gsl_si/"))
    p.add_argument("--annotations", required=True, metavar="GSL_continuous/",
                   help="folder with annotations.csv and the split files")
    p.add_argument("--keypoints", required=True, metavar="DIR", help="an `slt-jax extract` output folder")
    p.add_argument("--out", required=True, metavar="DIR", help="corpus folder to create")
    p.add_argument("--protocol", default="si", choices=("si", "sd"),
                   help="si: signer-independent gsl_split_SI_*.csv (the paper's); "
                   "sd: signer-dependent GSL_SD_*.csv (default: %(default)s)")
    add_quiet(p, "bar")
    p.set_defaults(run=_gsl)

    p = sources.add_parser(
        "phoenix", help="RWTH-PHOENIX-Weather 2014 T, as released",
        description="PHOENIX-2014-T: the release's |-separated PHOENIX-2014-T.{train,dev,test}.corpus.csv "
        "(name, speaker, orth, translation), matched on name with keypoints that `slt-jax extract` wrote "
        "for the frame folders features/fullFrame-210x260px/<split>/<name>/. Glosses are orth, text is "
        "translation, 25 fps; the release's dev split becomes val.",
        **examples("slt-jax extract --videos PHOENIX-2014-T/features/fullFrame-210x260px/ --out phoenix_keypoints/",
                   "slt-jax prepare phoenix --annotations PHOENIX-2014-T/annotations/manual/ "
                   "--keypoints phoenix_keypoints/ --out phoenix/"))
    p.add_argument("--annotations", required=True, metavar="DIR",
                   help="folder with PHOENIX-2014-T.{train,dev,test}.corpus.csv (the release's annotations/manual/)")
    p.add_argument("--keypoints", required=True, metavar="DIR", help="an `slt-jax extract` output folder")
    p.add_argument("--out", required=True, metavar="DIR", help="corpus folder to create")
    add_quiet(p, "bar")
    p.set_defaults(run=_phoenix)

    p = sources.add_parser(
        "pose", help=".pose files (pose-format) of MediaPipe Holistic",
        description="Read MediaPipe Holistic .pose files (543 points, or the 553/576/586-point "
        "variants with refined face or world landmarks) with pose-format, rescale pixel x, y to "
        "MediaPipe's normalised coordinates with the header's width and height, and set points "
        "of confidence 0 to NaN. Other layouts (e.g. OpenPose) are refused.",
        **examples("slt-jax prepare pose --poses poses/ --annotations phoenix.csv --out phoenix_corpus/"))
    p.add_argument("--poses", required=True, metavar="DIR", help="folder of <id>.pose files")
    p.add_argument("--annotations", required=True, metavar="FILE",
                   help="CSV with columns id,text,gloss,signer,split (split: train, val or test)")
    p.add_argument("--out", required=True, metavar="DIR", help="corpus folder to create")
    p.add_argument("--allow-partial", action="store_true",
                   help="accept reduced Holistic layouts (e.g. 178 points); their missing points become NaN")
    add_quiet(p, "bar")
    p.set_defaults(run=_pose)


def _finish(report, out: str) -> None:
    print(report.summary())
    print(f"corpus: {out} (report: {Path(out) / REPORT})")


def _csv(args) -> None:
    from slt_jax.prepare.table import prepare_csv

    _finish(prepare_csv(args.annotations, args.keypoints, args.out, args.span_unit, args.fps, args.seed,
                        args.allow_partial, not args.quiet), args.out)


def _phoenix(args) -> None:
    from slt_jax.prepare.phoenix import prepare_phoenix

    _finish(prepare_phoenix(args.annotations, args.keypoints, args.out, not args.quiet), args.out)


def _gsl(args) -> None:
    from slt_jax.prepare.gsl import prepare_gsl

    _finish(prepare_gsl(args.annotations, args.keypoints, args.out, args.protocol, not args.quiet), args.out)


def _pose(args) -> None:
    from slt_jax.prepare.pose import prepare_pose

    _finish(prepare_pose(args.poses, args.annotations, args.out, args.allow_partial, not args.quiet), args.out)
