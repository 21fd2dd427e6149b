"""`slt-jax extract`: MediaPipe Holistic keypoints from videos or folders of frames, on one machine or N."""

from __future__ import annotations

import argparse
from pathlib import Path

from slt_jax.cli_args import add_quiet, add_workers, examples
from slt_jax.extract.driver import extract
from slt_jax.extract.manifest import MANIFEST, shard_manifest_name
from slt_jax.extract.shards import merge_shards, parse_shard
from slt_jax.layout import LayoutError


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "extract", help="MediaPipe Holistic keypoints from videos or folders of frames (the `extract` extra)",
        description="Run MediaPipe Holistic on videos (.mp4, .avi, ...), folders of frame images "
        "(as GSL ships them) or single images, and write OUT/poses/<id>.npy (frames, 1, 543, 3) "
        "with NaN where a part was not found, plus OUT/manifest.json (fps, frames, detection "
        "rates, errors). Run it again to resume: finished inputs are skipped, failed ones retried. "
        "On N machines: --shard K/N on each into one OUT, then --merge once. Needs the `extract` extra "
        "(mediapipe 0.10.21 with its bundled models, numpy<2), best in its own environment: "
        "python3 -m venv .venv-extract && .venv-extract/bin/pip install -e '.[extract]' (BUILD.md).",
        **examples(".venv-extract/bin/slt-jax extract --videos clips/ --out keypoints/ --workers 4",
                   ".venv-extract/bin/slt-jax extract --videos 'clips/*.mp4' --out keypoints/ --shard 0/8"))
    p.add_argument("--videos", metavar="DIR_OR_GLOB",
                   help="a folder (searched recursively), a file, or a quoted glob such as 'clips/*.mp4' "
                   "(required unless --merge)")
    p.add_argument("--out", required=True, help="output folder (poses/ and manifest.json)")
    add_workers(p)
    p.add_argument("--model", metavar="FILE.task",
                   help="a HolisticLandmarker .task bundle, for mediapipe releases without bundled "
                   "Holistic models (default: mediapipe 0.10.21's bundled models)")
    p.add_argument("--shard", type=_shard_arg, metavar="K/N",
                   help="take share K (0 to N-1) of N: every N-th input in id order from the K-th, recorded in "
                   "OUT/manifest.shard-K-of-N.json; run the N shares (e.g. a cluster's array job) into one OUT")
    p.add_argument("--merge", action="store_true",
                   help="once every shard has finished: fold OUT's shard manifests into OUT/manifest.json "
                   "(deleting them) and extract nothing")
    add_quiet(p, "bar")
    p.set_defaults(run=_run)


def _shard_arg(text: str) -> tuple[int, int]:
    try:
        return parse_shard(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _run(args) -> int:
    if args.merge:
        if args.videos or args.shard:
            raise LayoutError("--merge takes only --out: merge once every shard has finished")
        manifest = merge_shards(args.out)
    elif not args.videos:
        raise LayoutError("--videos is required (unless --merge)")
    else:
        manifest = extract(args.videos, args.out, args.workers, args.model, progress=not args.quiet, shard=args.shard)
    written = shard_manifest_name(args.shard) if args.shard else MANIFEST
    entries = manifest["files"].values()
    ok = [e for e in entries if e["status"] == "ok"]
    failed = {k: e for k, e in manifest["files"].items() if e["status"] != "ok"}
    frames = sum(e["frames"] for e in ok)
    print(f"{len(ok)} inputs extracted ({frames} frames), {len(failed)} failed; "
          f"manifest: {Path(args.out) / written}")
    for source_id, e in failed.items():
        print(f"  failed: {source_id}: {e['error']}")
    return 1 if failed else 0
