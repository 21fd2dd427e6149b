"""`slt-jax prepare gsl|pose`: released corpora and `.pose` files -> the converted layout."""

from __future__ import annotations

from pathlib import Path

from slt_jax.cli_args import add_quiet
from slt_jax.prepare.corpus import REPORT


def add_commands(subparsers) -> None:
    prepare = subparsers.add_parser(
        "prepare", help="convert a released corpus or .pose files to the converted layout",
        description="Write a corpus folder (annotations.csv, metadata.json, poses/<id>.npy) that "
        "`slt-jax train` reads. Inputs left out (missing keypoints, duplicate or malformed rows) are "
        f"printed and listed in OUT/{REPORT}. OUT must be new or empty; it appears only when complete.")
    sources = prepare.add_subparsers(title="sources", metavar="SOURCE", required=True)

    p = sources.add_parser(
        "gsl", help="the Greek Sign Language dataset, as released",
        description="GSL continuous: the release's |-separated annotations.csv and split files, "
        "matched with keypoints that `slt-jax extract` wrote for the sentence frame folders. "
        "The release's dev split becomes val.")
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
        "pose", help=".pose files (pose-format) of MediaPipe Holistic",
        description="Read MediaPipe Holistic .pose files (543 points, or the 553/576/586-point "
        "variants with refined face or world landmarks) with pose-format, rescale pixel x, y to "
        "MediaPipe's normalised coordinates with the header's width and height, and set points "
        "of confidence 0 to NaN. Other layouts (e.g. OpenPose) are refused.")
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


def _gsl(args) -> None:
    from slt_jax.prepare.gsl import prepare_gsl

    _finish(prepare_gsl(args.annotations, args.keypoints, args.out, args.protocol, not args.quiet), args.out)


def _pose(args) -> None:
    from slt_jax.prepare.pose import prepare_pose

    _finish(prepare_pose(args.poses, args.annotations, args.out, args.allow_partial, not args.quiet), args.out)
