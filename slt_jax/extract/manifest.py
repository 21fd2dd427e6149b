"""The manifest of an extraction folder: reading, writing, its entries, and resuming a killed run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from slt_jax.extract.frames import read_frames
from slt_jax.extract.inputs import Source
from slt_jax.layout import LANDMARK_GROUPS, LayoutError, load_pose, pose_path, write_json

MANIFEST = "manifest.json"


def shard_manifest_name(shard: tuple[int, int]) -> str:
    return f"manifest.shard-{shard[0]}-of-{shard[1]}.json"


def read_manifest(out: str | os.PathLike, name: str = MANIFEST) -> dict:
    """The manifest of an extraction folder ({"backend": ..., "files": {id: entry}}), or of one of
    its shards (name: see shard_manifest_name; it also holds "shard": {index, count, inputs})."""
    path = Path(out) / name
    if not path.is_file():
        return {"files": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LayoutError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest.get("files"), dict):
        raise LayoutError(f"{path}: no 'files' mapping; is this an extraction folder?")
    return manifest


def write_manifest(out: Path, manifest: dict) -> None:
    """Writes a run's manifest, or a shard's own if the manifest says it is one."""
    manifest["files"] = dict(sorted(manifest["files"].items()))
    shard = manifest.get("shard")
    write_json(out / (shard_manifest_name((shard["index"], shard["count"])) if shard else MANIFEST), manifest)


def detection_rates(pose: np.ndarray) -> dict[str, float]:
    """Fraction of frames in which each part was detected, from a (frames, 1, 543, 3) array."""
    return {g: float(np.mean(~np.isnan(pose[:, 0, start, 0]))) for g, (start, _) in LANDMARK_GROUPS.items()}


def ok_entry(source: Source, pose: np.ndarray, fps: float | None, ms_per_frame: float | None) -> dict:
    """The manifest entry of an input whose pose was written."""
    return {"source": str(source.path), "status": "ok", "fps": fps, "frames": len(pose),
            "detected": detection_rates(pose), "ms_per_frame": ms_per_frame}


def is_done(out: Path, manifest: dict, source: Source) -> bool:
    entry = manifest["files"].get(source.id, {})
    return entry.get("status") == "ok" and pose_path(out, source.id).is_file()


def recovered_entry(source: Source, out: Path) -> dict:
    """The manifest entry of a pose that a killed run wrote but did not record.

    Poses are written atomically, so one that exists is complete; only its timing is lost.
    """
    return ok_entry(source, load_pose(out, source.id), read_frames(source)[1], None)
