"""Several machines, one output folder: each shard's inputs, and merging the shards' manifests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from slt_jax.extract.inputs import Source
from slt_jax.extract.manifest import read_manifest, write_manifest
from slt_jax.layout import LayoutError


def parse_shard(text: str) -> tuple[int, int]:
    """"K/N" -> (K, N), shard K (0 to N-1) of N."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"{text!r}: expected K/N, e.g. 0/8") from None
    if not 0 <= k < n:
        raise ValueError(f"{text!r}: K must be 0 to N-1")
    return k, n


def shard_sources(sources: Sequence[Source], shard: tuple[int, int]) -> list[Source]:
    """The inputs shard K of N takes: every N-th in id order, from the K-th.

    Every machine lists the same inputs, so the N shares are disjoint, cover them all, and
    differ in size by one at most (inputs of similar length take similar time).
    """
    k, n = shard
    return sorted(sources, key=lambda s: s.id)[k::n]


def merge_shards(out: str | os.PathLike) -> dict:
    """Folds the shard manifests in `out` into `out/manifest.json` and deletes them.

    The result is what one run over every input writes (timings aside). Entries already in
    manifest.json stay unless a shard has newer ones.

    Raises:
      LayoutError: no shard manifests, shards of different N, a shard missing, or a shard that has
        not recorded every input it took (still running, or killed: run it again, it resumes).
    """
    out = Path(out)
    paths = sorted(out.glob("manifest.shard-*-of-*.json"))
    if not paths:
        raise LayoutError(f"{out}: no shard manifests (manifest.shard-K-of-N.json) to merge")
    shards = [read_manifest(out, p.name) for p in paths]
    counts = {s["shard"]["count"] for s in shards}
    if len(counts) > 1:
        raise LayoutError(f"{out}: shards of different splits ({', '.join(p.name for p in paths)}); "
                          "delete the stale ones")
    n = counts.pop()
    missing = sorted(set(range(n)) - {s["shard"]["index"] for s in shards})
    if missing:
        raise LayoutError(f"{out}: no manifest from shard {', '.join(f'{k}/{n}' for k in missing)}; run it first")
    for s in shards:
        info = s["shard"]
        if len(s["files"]) < info["inputs"]:
            raise LayoutError(f"{out}: shard {info['index']}/{n} has recorded {len(s['files'])} of its "
                              f"{info['inputs']} inputs; run it again (it resumes), then merge")
    backends = {s["backend"] for s in shards}
    if len(backends) > 1:
        raise LayoutError(f"{out}: the shards ran different backends ({'; '.join(sorted(backends))})")
    manifest = {"backend": backends.pop(), "files": read_manifest(out)["files"]}
    for s in shards:
        manifest["files"].update(s["files"])
    write_manifest(out, manifest)
    for p in paths:
        p.unlink()
    return manifest
