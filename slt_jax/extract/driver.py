"""A run: every input not yet done, extracted in worker processes and recorded as it goes."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from slt_jax.extract.holistic import Tracker, resolve_backend, track
from slt_jax.extract.inputs import Source, find_sources
from slt_jax.extract.manifest import (is_done, ok_entry, read_manifest, recovered_entry, shard_manifest_name,
                                      write_manifest)
from slt_jax.extract.shards import shard_sources
from slt_jax.layout import LayoutError, pose_path, save_pose

SAVE_EVERY_S = 10.0  # the manifest is rewritten at most this often while a run goes on


def extract_source(source: Source, out: Path, tracker: Tracker) -> dict:
    """Runs the tracker over one input and writes its pose; returns its manifest entry.

    Any failure (unreadable video or image, no frames) is returned as an error entry, not raised,
    so one bad file never stops a run.
    """
    try:
        start = time.perf_counter()
        pose, fps = track(source, tracker)
        save_pose(out, source.id, pose)
        elapsed = time.perf_counter() - start
    except Exception as e:  # reported in the manifest; the run goes on with the other files
        return {"source": str(source.path), "status": "error", "error": f"{type(e).__name__}: {e}"}
    return ok_entry(source, pose, fps, round(1000 * elapsed / len(pose), 2))


_TRACKER: Tracker | None = None  # one per worker process


def _init_worker(model: str | None) -> None:
    global _TRACKER
    _TRACKER = Tracker(model)


def _extract_in_worker(source: Source, out: Path) -> tuple[str, dict]:
    return source.id, extract_source(source, out, _TRACKER)


def recorded(out: Path, backend: str, sources: Sequence[Source], shard: tuple[int, int] | None) -> dict:
    """The manifest a run starts from: what `out` records, or for a shard, what the merged
    manifest says of the shard's inputs and then the shard's own manifest."""
    files = read_manifest(out)["files"]
    if shard is None:
        return {"backend": backend, "files": files}
    mine = {s.id for s in sources}
    files = {k: e for k, e in files.items() if k in mine}
    return {"backend": backend, "shard": {"index": shard[0], "count": shard[1], "inputs": len(sources)},
            "files": files | read_manifest(out, shard_manifest_name(shard))["files"]}


def _extract_all(todo: Sequence[Source], out: Path, manifest: dict, workers: int, model: str | None,
                 progress: bool) -> None:
    """Extracts `todo` in worker processes into `manifest`, saved every SAVE_EVERY_S and at the end."""
    # spawn: each worker builds its own MediaPipe graph; a forked copy of a parent's is unsafe.
    context = multiprocessing.get_context("spawn")
    last_save = time.monotonic()
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=context, initializer=_init_worker,
                             initargs=(model,)) as pool:
        futures = [pool.submit(_extract_in_worker, s, out) for s in todo]
        try:
            done = as_completed(futures)
            for future in tqdm(done, total=len(futures), desc="extract", unit="file", disable=not progress):
                source_id, entry = future.result()
                manifest["files"][source_id] = entry
                if time.monotonic() - last_save > SAVE_EVERY_S:
                    write_manifest(out, manifest)
                    last_save = time.monotonic()
        finally:
            for future in futures:
                future.cancel()
            write_manifest(out, manifest)


def extract(videos: str, out: str | os.PathLike, workers: int = 1, model: str | None = None,
            progress: bool = True, shard: tuple[int, int] | None = None) -> dict:
    """Extracts every input not already done; returns the manifest.

    Args:
      videos: a folder, file or glob (see find_sources).
      out: the output folder (poses/ and manifest.json); reused to resume.
      workers: processes, each with its own tracker.
      model: a HolisticLandmarker .task file for the Tasks backend; None for the bundled models.
      progress: show a progress bar.
      shard: (K, N): only the inputs `shard_sources` gives shard K of N, recorded in the shard's
        own manifest (`shard_manifest_name`); `merge_shards` makes manifest.json of all N.
    """
    if workers < 1:
        raise LayoutError(f"--workers must be at least 1, got {workers}")
    backend = resolve_backend(model)
    out = Path(out)
    sources = find_sources(videos)
    if shard is not None:
        sources = shard_sources(sources, shard)
    manifest = recorded(out, backend, sources, shard)
    # The manifest is saved every SAVE_EVERY_S: a killed run leaves poses it did not record.
    recovered = [s for s in sources if not is_done(out, manifest, s) and pose_path(out, s.id).is_file()]
    for s in recovered:
        manifest["files"][s.id] = recovered_entry(s, out)
    todo = [s for s in sources if not is_done(out, manifest, s)]
    if todo:
        _extract_all(todo, out, manifest, workers, model, progress)
    elif recovered or shard is not None:  # a shard with nothing to do still reports that it finished
        write_manifest(out, manifest)
    return manifest
