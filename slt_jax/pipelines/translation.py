"""`slt-jax translate`: a trained run's translations of one's own clips.

Inputs are videos and folders of frames (MediaPipe Holistic keypoints extracted on the way, as
`slt-jax extract` does: the `extract` extra), `.pose` files (pose-format, `prepare pose`'s reader)
and `.npy` arrays (frames, people, 543, dims) as in the converted layout. Each becomes the
features the run was trained on (`data.select_features` with the run's DataConfig) and is decoded
within the run's length bound (`Run.length_bound`). `translate_to` writes into a folder

    translations.csv    id,hypothesis
    translations.json   the run and decoding settings, then per input: id, source, frames,
                        hypothesis, its tokens with their probabilities, and what stopped it
                        (<eos>, or the length bound)
    viewer.html         with `view`: the attention viewer page of the clips (no reference)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from slt_jax import data, extract
from slt_jax.analysis import viewer
from slt_jax.config import BOS, EOS, PAD, DataConfig
from slt_jax.decode import token_probabilities
from slt_jax.evaluate import decode_batches
from slt_jax.layout import LayoutError, read_pose_file, write_json, write_text
from slt_jax.prepare.pose_file import read_holistic
from slt_jax.runs import Run, load_run

POSE_FILES = (".npy", ".pose")
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Clip:
    """One input's keypoints, as read."""

    id: str
    source: str
    pose: np.ndarray  # (frames, people, 543, dims)
    fps: float | None  # None where the input does not say (.npy, frame folders)


@dataclasses.dataclass(frozen=True)
class Translation:
    """One input's translation."""

    id: str
    source: str
    frames: int
    hypothesis: str
    tokens: tuple[tuple[str, float], ...]  # each token and the probability the model gave it
    stopped_by: str  # "eos", or "length_bound" for a translation cut at the run's length bound


def find_inputs(paths: Sequence[str | Path]) -> list[extract.Source]:
    """The inputs named by paths, in their order: `.npy` and `.pose` files, and what
    `extract.find_sources` finds in the others (videos, images, folders of either).

    Raises:
      LayoutError: a path that does not exist or holds no input, or two inputs with one id.
    """
    sources = []
    for path in map(Path, paths):
        suffix = path.suffix.lower()
        if suffix not in POSE_FILES:
            sources += extract.find_sources(str(path))
        elif path.is_file():
            sources.append(extract.Source(path.stem, path, suffix[1:]))
        else:
            raise LayoutError(f"{path}: no such file")
    by_id: dict[str, extract.Source] = {}
    for s in sources:
        if s.id in by_id and by_id[s.id].path != s.path:
            raise LayoutError(f"{s.path} and {by_id[s.id].path} would both be translated as id {s.id!r}; rename one")
        by_id[s.id] = s
    return list(by_id.values())


def read_clip(source: extract.Source, tracker: extract.Tracker | None) -> Clip:
    """An input's keypoints: loaded from a pose file, or tracked in a video or frames."""
    if source.kind == "npy":
        return Clip(source.id, str(source.path), read_pose_file(source.path), None)
    if source.kind == "pose":
        return Clip(source.id, str(source.path), *read_holistic(source.path))
    try:
        return Clip(source.id, str(source.path), *extract.track(source, tracker))
    except ValueError as e:
        raise LayoutError(f"{source.path}: {e}") from None


def read_clips(sources: Sequence[extract.Source], model: str | None = None, progress: bool = False) -> list[Clip]:
    """Every input's keypoints, with one Holistic tracker for the videos and frames (made only if
    there are some; `model` as `extract.extract`'s)."""
    tracker = None
    if any(s.kind in ("video", "images") for s in sources):
        extract.resolve_backend(model)  # says how to install mediapipe where it is missing
        tracker = extract.Tracker(model)
    return [read_clip(s, tracker) for s in tqdm(sources, desc="read", unit="input", disable=not progress)]


def clip_example(clip: Clip, config: DataConfig) -> data.Example:
    """A clip as the features a run with `config` was trained on, without a target.

    Raises:
      LayoutError: coordinates the config needs are missing, or no keypoint of the config's
        groups was detected in any frame (nothing to translate).
    """
    try:
        frames = data.select_features(clip.pose, config)
    except ValueError as e:
        raise LayoutError(f"{clip.source}: {e}") from None
    if not frames.any():
        raise LayoutError(f"{clip.source}: no {', '.join(config.groups)} keypoints detected in any of its "
                          f"{len(frames)} frames; nothing to translate")
    return data.Example(clip.id, frames, np.zeros(0, np.int32), "", None)


def clip_examples(clips: Sequence[Clip], config: DataConfig) -> list[data.Example]:
    """`clip_example` of each clip; what batching changes (frames past `data.max_frames`) is logged."""
    examples = [clip_example(c, config) for c in clips]
    for message in data.batching_changes(examples, config):
        log.warning("%s", message)
    return examples


def _translation(clip: Clip, ids: np.ndarray, probabilities: np.ndarray, tokens: Sequence[str]) -> Translation:
    ended = EOS in ids
    length = list(ids).index(EOS) if ended else len(ids)
    kept = [(tokens[i], round(float(p), 4)) for i, p in zip(ids[:length], probabilities) if i not in (PAD, BOS)]
    return Translation(clip.id, clip.source, len(clip.pose), " ".join(t for t, _ in kept), tuple(kept),
                       "eos" if ended else "length_bound")


def translate_clips(run: Run, clips: Sequence[Clip], method: str = "greedy", beam: int = 32,
                    length_penalty: float = 0.0) -> list[Translation]:
    """Decodes clips with a run (greedy or beam, as `evaluate`); returns their translations in order."""
    translations: list[Translation | None] = [None] * len(clips)
    examples = clip_examples(clips, run.config.data)
    for batch, inputs, params, tokens in decode_batches(run, examples, method, beam, length_penalty):
        probabilities = token_probabilities(run.model, params, inputs["frames"], inputs["frame_mask"], tokens)
        real = batch["sample_mask"]
        for ids, p, index in zip(np.asarray(tokens)[real], np.asarray(probabilities)[real], batch["index"][real]):
            translations[index] = _translation(clips[index], ids, p, run.vocab.tokens)
    return translations


def translate(run: Run | str | Path, inputs: Sequence[str | Path], method: str = "greedy", beam: int = 32,
              length_penalty: float = 0.0, model: str | None = None, progress: bool = False) -> list[Translation]:
    """Translates one's own clips with a trained run.

    Args:
      run: a training workdir, or a `load_run` result.
      inputs: videos, folders of frames (or of videos), `.pose` and `.npy` files (`find_inputs`).
      method, beam, length_penalty: decoding settings, as `slt_jax.evaluate.evaluate`'s.
      model: a HolisticLandmarker .task bundle for the videos (default: mediapipe 0.10.21's own).
      progress: a progress bar over the inputs.

    Returns:
      One `Translation` per input, in the inputs' order.
    """
    run = run if isinstance(run, Run) else load_run(run)
    return translate_clips(run, read_clips(find_inputs(inputs), model, progress), method, beam, length_penalty)


def translations_csv(translations: Sequence[Translation]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "hypothesis"])
    writer.writerows([t.id, t.hypothesis] for t in translations)
    return buf.getvalue()


def translations_json(run: Run, translations: Sequence[Translation], method: str, beam: int,
                      length_penalty: float) -> dict:
    settings = {"beam": beam, "length_penalty": length_penalty} if method == "beam" else {}
    return {"run": str(run.workdir), "config": run.config.name, "epoch": run.epoch, "decode": method, **settings,
            "length_bound": run.length_bound,
            "translations": [dataclasses.asdict(t) | {"tokens": [{"token": w, "probability": p} for w, p in t.tokens]}
                             for t in translations]}


def write_view(run: Run, clips: Sequence[Clip], out: Path) -> Path:
    """Writes the attention viewer page of clips without a reference; returns its path."""
    poses = {c.id: c.pose for c in clips}
    fps = next((c.fps for c in clips if c.fps), 30.0)  # the page plays at one rate: the first clip's
    page = viewer.page_data(run, clip_examples(clips, run.config.data), poses.__getitem__, None,
                            split="clips", fps=fps, aspect=1.0)
    path = out / viewer.PAGE
    write_text(path, viewer.render(page))
    return path


def translate_to(out, workdir, inputs: Sequence[str | Path], method: str = "greedy", beam: int = 32,
                 length_penalty: float = 0.0, view: bool = False, model: str | None = None,
                 progress: bool = True) -> list[Translation]:
    """`slt-jax translate`: translates the inputs (see `translate`) and writes translations.csv,
    translations.json and, with `view`, viewer.html into `out`."""
    out, run = Path(out), load_run(workdir)
    clips = read_clips(find_inputs(inputs), model, progress)
    translations = translate_clips(run, clips, method, beam, length_penalty)
    write_text(out / "translations.csv", translations_csv(translations))
    write_json(out / "translations.json", translations_json(run, translations, method, beam, length_penalty))
    if view:
        write_view(run, clips, out)
    return translations
