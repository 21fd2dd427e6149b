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

The package never imports jax: it runs in the `extract` extra's environment. One module per job:

  inputs     the videos, frame folders and images a folder, file or glob names, and their ids
  frames     an input's RGB frames and frame rate (cv2)
  holistic   the two MediaPipe backends, their results as (543, 3) arrays, one input's pose
  manifest   reading and writing the manifest, its entries, and resuming a killed run
  shards     several machines: each shard's inputs, and merging the shards' manifests
  driver     a run: every input not yet done, in worker processes, recorded as it goes
  commands   `slt-jax extract`
"""

from slt_jax.extract.driver import extract
from slt_jax.extract.frames import read_frames
from slt_jax.extract.holistic import Tracker, resolve_backend, track
from slt_jax.extract.inputs import Source, find_sources
from slt_jax.extract.manifest import read_manifest
from slt_jax.extract.shards import merge_shards

__all__ = [
    "Source", "Tracker", "extract", "find_sources", "merge_shards", "read_frames", "read_manifest",
    "resolve_backend", "track",
]
