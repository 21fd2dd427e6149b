"""MediaPipe Holistic's two backends (Solutions, Tasks), their results as arrays, and one input's pose."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from slt_jax.extract.frames import read_frames
from slt_jax.extract.inputs import Source
from slt_jax.layout import LANDMARK_GROUPS, N_LANDMARKS, LayoutError

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
        import mediapipe as mp  # heavy optional dependency: the `extract` extra's
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
        import mediapipe as mp  # heavy optional dependency: the `extract` extra's

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
