"""Reading an input's RGB frames and frame rate with OpenCV."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

from slt_jax.extract.inputs import IMAGE_EXTENSIONS, Source


def _natural_key(name: str) -> list:
    """frame2 before frame10, whatever the zero padding."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


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
    import cv2  # heavy optional dependency: the `extract` extra's (mediapipe brings it)

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
