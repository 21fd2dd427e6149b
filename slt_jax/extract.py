"""MediaPipe Holistic keypoints from videos and folders of frames.

`slt-jax extract --videos DIR_OR_GLOB --out DIR` writes, for each input,

    DIR/poses/<id>.npy   float32 (frames, 1, 543, 3): x, y, z as MediaPipe gives them (x, y
                         normalised to the image), body 33, face 468, left hand 21, right hand 21,
                         NaN where a part was not detected
    DIR/manifest.json    per input: source, status (ok|error), error, fps, frames, detection rate
                         per part, milliseconds per frame

An input is a video (.mp4, .avi, ...), a folder of frame images (GSL ships jpg folders; frames in
natural name order), or a single image. Its id is its path relative to the given folder (or to
the glob's fixed prefix) without extension. Inputs run in parallel processes; a finished input is
skipped when the command is run again (also one that a killed run wrote but had not yet recorded
in the manifest), and every file is written atomically.

Several machines: `--shard K/N` takes every N-th input in id order from the K-th and records it in
DIR/manifest.shard-K-of-N.json, so N shards can write into one DIR at once; `--merge` then folds
the finished shards' manifests into DIR/manifest.json, the manifest one run over all inputs writes.

Two backends: mediapipe==0.10.21's `solutions.holistic` with its bundled models
(model_complexity=1; the other complexities download models at run time and are not used), or,
with `--model FILE.task`, the Tasks API's HolisticLandmarker (newer mediapipe releases ship no
models). Nothing is ever downloaded.

This module never imports jax: it runs in the `extract` extra's environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from slt_jax.cli_args import add_quiet, add_workers, examples
from slt_jax.layout import LANDMARK_GROUPS, N_LANDMARKS, LayoutError, load_pose, pose_path, save_pose, write_json

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
MANIFEST = "manifest.json"
SAVE_EVERY_S = 10.0  # the manifest is rewritten at most this often while a run goes on

# Result fields, the same in the Solutions and the Tasks API, by landmark group.
RESULT_FIELDS = {
    "body": "pose_landmarks",
    "face": "face_landmarks",
    "left_hand": "left_hand_landmarks",
    "right_hand": "right_hand_landmarks",
}
INSTALL_HINT = (
    "install mediapipe==0.10.21 with its bundled Holistic models (pip install 'slt-jax[extract]'; "
    "it needs numpy<2), or pass --model FILE.task, a MediaPipe HolisticLandmarker bundle you "
    "downloaded yourself; slt-jax never downloads models"
)


@dataclasses.dataclass(frozen=True)
class Source:
    """One input: a video file, or a sequence of images (a folder of frames or one image)."""

    id: str
    path: Path
    kind: str  # "video" or "images"


# --- finding inputs --------------------------------------------------------------------------


def _natural_key(name: str) -> list:
    """frame2 before frame10, whatever the zero padding."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _relative_id(path: Path, base: Path) -> str:
    rel = path.relative_to(base).as_posix()
    return base.resolve().name if rel == "." else rel


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _glob_base(pattern: str) -> Path:
    """The folders before a glob's first wildcard; ids are relative to them."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if _is_glob(part)), len(parts))
    return Path(*parts[:fixed]) if fixed else Path(".")


def _walk(folder: Path, base: Path) -> Iterator[Source]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        here = Path(dirpath)
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in filenames):
            yield Source(_relative_id(here, base), here, "images")
        for f in sorted(filenames):
            if f.lower().endswith(VIDEO_EXTENSIONS):
                yield Source(_relative_id(here / Path(f).stem, base), here / f, "video")


def find_sources(spec: str) -> list[Source]:
    """Lists the inputs named by a folder, a file or a glob, sorted by id.

    Args:
      spec: a folder (searched recursively: each video is an input, each folder holding images
        is one input), a video or image file, or a glob of those (quote it in the shell).

    Raises:
      LayoutError: nothing found, or two inputs share an id (e.g. a.mp4 and a.avi).
    """
    if _is_glob(spec):
        base, matches = _glob_base(spec), sorted(glob.glob(spec, recursive=True))
    elif os.path.exists(spec):
        base, matches = (Path(spec) if os.path.isdir(spec) else Path(spec).parent), [spec]
    else:
        raise LayoutError(f"{spec}: no such file or folder")
    sources = []
    for match in map(Path, matches):
        suffix = match.suffix.lower()
        if match.is_dir():
            sources += _walk(match, base)
        elif suffix in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS:
            kind = "video" if suffix in VIDEO_EXTENSIONS else "images"
            sources.append(Source(_relative_id(match.with_suffix(""), base), match, kind))
    if not sources:
        raise LayoutError(
            f"{spec}: no videos ({', '.join(VIDEO_EXTENSIONS)}) or images "
            f"({', '.join(IMAGE_EXTENSIONS)}) found"
        )
    by_id: dict[str, Source] = {}
    for s in sources:
        if s.id in by_id and by_id[s.id].path != s.path:
            raise LayoutError(f"{s.path} and {by_id[s.id].path} would both be written as id {s.id!r}")
        by_id[s.id] = s
    return sorted(by_id.values(), key=lambda s: s.id)


# --- reading frames --------------------------------------------------------------------------


def _image_paths(source: Source) -> list[Path]:
    if source.path.is_file():
        return [source.path]
    names = [p for p in source.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(names, key=lambda p: _natural_key(p.name))


def read_frames(source: Source) -> tuple[Iterator[np.ndarray], float | None]:
    """Returns an iterator over the RGB uint8 frames and the frame rate (None for images).

    Raises:
      ValueError: a video that cannot be opened; an image that cannot be decoded (when reached).
    """
    import cv2

    if source.kind == "images":

        def images():
            for path in _image_paths(source):
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise ValueError(f"{path.name}: unreadable image")
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

        return images(), None

    capture = cv2.VideoCapture(str(source.path))
    if not capture.isOpened():
        raise ValueError("cannot open as a video (corrupt, truncated or not a video)")
    fps = capture.get(cv2.CAP_PROP_FPS)

    def video():
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    return video(), (fps if fps > 0 else None)


# --- MediaPipe -------------------------------------------------------------------------------


def landmarks_to_array(parts: Mapping[str, Sequence | None]) -> np.ndarray:
    """Landmark lists by group -> (543, 3) float32 in Holistic order, NaN for a missing part.

    Args:
      parts: group name (see layout.LANDMARK_GROUPS) -> landmarks with .x .y .z, or None/empty
        when the part was not detected. Extra points (the Tasks face mesh's 10 iris points) are
        dropped so the layout stays the 468-point mesh.
    """
    out = np.full((N_LANDMARKS, 3), np.nan, np.float32)
    for group, landmarks in parts.items():
        if landmarks:
            start, stop = LANDMARK_GROUPS[group]
            out[start:stop] = [(p.x, p.y, p.z) for p in list(landmarks)[: stop - start]]
    return out


def result_parts(result) -> dict[str, Sequence | None]:
    """The landmark lists of a Solutions or a Tasks Holistic result, by group."""
    # Solutions wrap each list in a proto (`.landmark`) or give None; Tasks give a plain list.
    return {g: getattr(getattr(result, f), "landmark", getattr(result, f)) for g, f in RESULT_FIELDS.items()}


def resolve_backend(model: str | None) -> str:
    """Checks that a backend can run offline and describes it.

    Raises:
      LayoutError: mediapipe missing, no bundled models and no --model, or --model not a file
        that loads as a HolisticLandmarker.
    """
    try:
        import mediapipe as mp
    except ImportError:
        raise LayoutError(f"mediapipe is not importable: {INSTALL_HINT}") from None
    if model is not None:
        if not os.path.isfile(model):
            raise LayoutError(f"{model}: model file not found (expected a HolisticLandmarker .task bundle)")
        vision = getattr(mp.tasks, "vision", None)
        if not hasattr(vision, "HolisticLandmarker"):
            raise LayoutError(f"mediapipe {mp.__version__} has no HolisticLandmarker: {INSTALL_HINT}")
        try:  # load it once here, so a bad bundle stops the run instead of failing every file
            vision.HolisticLandmarker.create_from_model_path(model).close()
        except Exception as e:
            raise LayoutError(f"{model}: not a usable HolisticLandmarker bundle ({type(e).__name__}: {e})") from None
        return f"mediapipe {mp.__version__} tasks HolisticLandmarker ({os.path.abspath(model)})"
    if not hasattr(mp, "solutions"):
        raise LayoutError(f"mediapipe {mp.__version__} ships no Holistic models: {INSTALL_HINT}")
    return f"mediapipe {mp.__version__} solutions Holistic (model_complexity=1, bundled models)"


class Tracker:
    """A Holistic tracker in video mode, restarted for each input so no state leaks across files."""

    def __init__(self, model: str | None = None):
        import mediapipe as mp

        self._mp, self._model, self._task = mp, model, None
        self._solution = None
        if model is None:
            self._solution = mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1)

    def start(self) -> None:
        """Forgets the previous input (the Tasks API also needs timestamps to restart)."""
        if self._solution is not None:
            self._solution.reset()
            return
        if self._task is not None:
            self._task.close()
        vision = self._mp.tasks.vision
        options = vision.HolisticLandmarkerOptions(
            base_options=self._mp.tasks.BaseOptions(model_asset_path=self._model),
            running_mode=vision.RunningMode.VIDEO,
        )
        self._task = vision.HolisticLandmarker.create_from_options(options)

    def __call__(self, rgb: np.ndarray, timestamp_ms: int) -> np.ndarray:
        """One RGB frame -> (543, 3) float32."""
        if self._solution is not None:
            result = self._solution.process(rgb)
        else:
            image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
            result = self._task.detect_for_video(image, timestamp_ms)
        return landmarks_to_array(result_parts(result))


def detection_rates(pose: np.ndarray) -> dict[str, float]:
    """Fraction of frames in which each part was detected, from a (frames, 1, 543, 3) array."""
    return {g: float(np.mean(~np.isnan(pose[:, 0, start, 0]))) for g, (start, _) in LANDMARK_GROUPS.items()}


def track(source: Source, tracker: Tracker) -> tuple[np.ndarray, float | None]:
    """Runs the tracker over one input: its pose, float32 (frames, 1, 543, 3), and frame rate.

    Raises:
      ValueError: an unreadable video or image, or no frames.
    """
    frames, fps = read_frames(source)
    tracker.start()
    # Timestamps only need to increase; image sequences carry no rate, so assume 30 fps.
    step_ms = 1000.0 / (fps or 30.0)
    poses = [tracker(rgb, int(i * step_ms)) for i, rgb in enumerate(frames)]
    if not poses:
        raise ValueError("no frames decoded")
    return np.stack(poses)[:, None], fps


def extract_source(source: Source, out: Path, tracker: Tracker) -> dict:
    """Runs the tracker over one input and writes its pose; returns its manifest entry.

    Any failure (unreadable video or image, no frames) is returned as an error entry, not raised,
    so one bad file never stops a run.
    """
    entry: dict = {"source": str(source.path)}
    try:
        start = time.perf_counter()
        pose, fps = track(source, tracker)
        save_pose(out, source.id, pose)
        elapsed = time.perf_counter() - start
    except Exception as e:  # reported in the manifest; the run goes on with the other files
        return entry | {"status": "error", "error": f"{type(e).__name__}: {e}"}
    return entry | {
        "status": "ok",
        "fps": fps,
        "frames": len(pose),
        "detected": detection_rates(pose),
        "ms_per_frame": round(1000 * elapsed / len(pose), 2),
    }


_TRACKER: Tracker | None = None  # one per worker process


def _init_worker(model: str | None) -> None:
    global _TRACKER
    _TRACKER = Tracker(model)


def _extract_in_worker(source: Source, out: Path) -> tuple[str, dict]:
    return source.id, extract_source(source, out, _TRACKER)


# --- a run -----------------------------------------------------------------------------------


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


def _write_manifest(out: Path, manifest: dict) -> None:
    """Writes a run's manifest, or a shard's own if the manifest says it is one."""
    manifest["files"] = dict(sorted(manifest["files"].items()))
    shard = manifest.get("shard")
    write_json(out / (shard_manifest_name((shard["index"], shard["count"])) if shard else MANIFEST), manifest)


def is_done(out: Path, manifest: dict, source: Source) -> bool:
    entry = manifest["files"].get(source.id, {})
    return entry.get("status") == "ok" and pose_path(out, source.id).is_file()


def recovered_entry(source: Source, out: Path) -> dict:
    """The manifest entry of a pose that a killed run wrote but did not record.

    Poses are written atomically, so one that exists is complete; only its timing is lost.
    """
    pose = load_pose(out, source.id)
    fps = read_frames(source)[1]
    return {"source": str(source.path), "status": "ok", "fps": fps, "frames": len(pose),
            "detected": detection_rates(pose), "ms_per_frame": None}


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
    manifest = {"backend": backend, "files": read_manifest(out)["files"]}
    if shard is not None:
        sources = shard_sources(sources, shard)
        mine = {s.id for s in sources}  # what a merged manifest already says of them, then the shard's own
        files = {k: e for k, e in manifest["files"].items() if k in mine}
        manifest = {"backend": backend, "shard": {"index": shard[0], "count": shard[1], "inputs": len(sources)},
                    "files": files | read_manifest(out, shard_manifest_name(shard))["files"]}
    # The manifest is saved every SAVE_EVERY_S: a killed run leaves poses it did not record.
    recovered = [s for s in sources if not is_done(out, manifest, s) and pose_path(out, s.id).is_file()]
    for s in recovered:
        manifest["files"][s.id] = recovered_entry(s, out)
    todo = [s for s in sources if not is_done(out, manifest, s)]
    if not todo:
        if recovered or shard is not None:  # a shard with nothing to do still reports that it finished
            _write_manifest(out, manifest)
        return manifest
    from tqdm import tqdm

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
                    _write_manifest(out, manifest)
                    last_save = time.monotonic()
        finally:
            for future in futures:
                future.cancel()
            _write_manifest(out, manifest)
    return manifest


# --- shards: several machines, one output folder --------------------------------------------


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


def shard_manifest_name(shard: tuple[int, int]) -> str:
    return f"manifest.shard-{shard[0]}-of-{shard[1]}.json"


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
    _write_manifest(out, manifest)
    for p in paths:
        p.unlink()
    return manifest


# --- command line ----------------------------------------------------------------------------


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
