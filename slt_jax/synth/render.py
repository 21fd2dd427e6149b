"""Stick-figure drawings of pose sequences: a strip of frames (PNG) or an animation (GIF).

Works on any (frames, people, 543, dims) MediaPipe Holistic array with x, y normalised to the
image, synthetic or real. A missing hand is drawn as a small cross at the body's wrist.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap

import numpy as np

from slt_jax.layout import LANDMARK_GROUPS
from slt_jax.synth import landmarks as lm

_COLOURS = {"body": "#555555", "face": "#8a8a8a", "left_hand": "#1f77b4", "right_hand": "#d62728"}


@dataclasses.dataclass(frozen=True)
class Sequence:
    """A pose sequence to draw.

    Attributes:
      pose: (frames, people, 543, dims); the first person is drawn.
      size: the image's (width, height) in pixels, to restore its aspect ratio.
      captions: one caption per frame (e.g. the gloss being signed), or None.
      title: shown above the sequence.
    """

    pose: np.ndarray
    size: tuple[int, int]
    captions: list[str] | None = None
    title: str = ""

    def pixels(self) -> np.ndarray:
        """(frames, 543, 2) pixel coordinates of the first person."""
        return self.pose[:, 0, :, :2] * np.asarray(self.size, float)


def captions_from_spans(frames: int, glosses: list[str], spans) -> list[str]:
    """The gloss signed at each frame, '' between signs."""
    out = [""] * frames
    for gloss, (start, end) in zip(glosses, spans):
        out[start:min(end, frames)] = [gloss] * (min(end, frames) - start)
    return out


def _view(seq: Sequence) -> tuple[float, float, float, float]:
    """The box (x0, x1, y0, y1) framing the signer from above the head to below the waist.

    It is measured in shoulder widths from the shoulders' median position, so that real and
    synthetic signers of any size come out framed alike.
    """
    shoulders = seq.pixels()[:, [lm.LEFT_SHOULDER, lm.RIGHT_SHOULDER]]
    (x, y), width = np.nanmedian(shoulders.mean(1), 0), np.nanmedian(np.abs(np.diff(shoulders[..., 0], axis=1)))
    return x - 1.5 * width, x + 1.5 * width, y - 1.35 * width, y + 1.6 * width


def _lines(points: np.ndarray, edges, offset: int = 0) -> np.ndarray:
    """Segments (n, 2, 2) for the edges, dropping any with a missing end."""
    seg = np.stack([points[[offset + a for a, _ in edges]], points[[offset + b for _, b in edges]]], 1)
    return seg[~np.isnan(seg).any(axis=(1, 2))]


def draw_frame(ax, xy: np.ndarray, caption: str = "") -> None:
    """Draws one frame's (543, 2) pixel landmarks on a matplotlib axis (y down)."""
    from matplotlib.collections import LineCollection  # matplotlib: drawing only, not corpus generation

    face = LANDMARK_GROUPS["face"][0]
    ax.add_collection(LineCollection(_lines(xy, lm.BODY_EDGES), colors=_COLOURS["body"], linewidths=2.5))
    face_edges = [(a, b) for run in lm.FACE_CONTOURS for a, b in zip(run, run[1:])]
    ax.add_collection(LineCollection(_lines(xy, face_edges, face), colors=_COLOURS["face"], linewidths=1))
    for part, wrist in (("left_hand", lm.LEFT_WRIST), ("right_hand", lm.RIGHT_WRIST)):
        start = LANDMARK_GROUPS[part][0]
        if np.isnan(xy[start]).any():
            ax.plot(*xy[wrist], marker="x", color=_COLOURS[part], markersize=6, alpha=0.6)
            continue
        ax.add_collection(LineCollection(_lines(xy, lm.HAND_EDGES, start), colors=_COLOURS[part], linewidths=1.3))
    if caption:
        ax.set_title(caption, fontsize=9)


def _frame_axes(ax, view) -> None:
    x0, x1, y0, y1 = view
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#dddddd")


def strip(rows: list[Sequence], out: str | os.PathLike, frames: int = 8, dpi: int = 100) -> None:
    """Saves a PNG with one row of evenly spaced frames per sequence."""
    import matplotlib  # deferred: drawing only, and the backend must be chosen before pyplot loads

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panel = 1.6  # inches per frame
    height = panel * 2.95 / 3.0 + 0.55  # a view is 2.95 shoulder widths tall by 3 wide, plus captions
    fig, axes = plt.subplots(len(rows), frames, figsize=(panel * frames, height * len(rows)), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.04, top=0.9, wspace=0.04, hspace=0.45)
    for seq, row in zip(rows, axes):
        view, xy = _view(seq), seq.pixels()
        for ax, t in zip(row, np.linspace(0, len(xy) - 1, frames).round().astype(int)):
            _frame_axes(ax, view)
            draw_frame(ax, xy[t], (seq.captions[t] if seq.captions else "") or " ")
            ax.set_xlabel(f"frame {t}", fontsize=7)
        if seq.title:
            row[0].text(0.0, 1.18, seq.title, transform=row[0].transAxes, fontsize=10, weight="bold")
    fig.savefig(out, dpi=dpi)
    plt.close(fig)


def animation(seq: Sequence, out: str | os.PathLike, fps: float = 30.0, dpi: int = 80) -> None:
    """Saves an animated GIF of the sequence: the current caption above the figure, or the
    title where the sequence has no captions."""
    import matplotlib  # deferred: drawing only, and the backend must be chosen before pyplot loads

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    view, xy = _view(seq), seq.pixels()
    fig, ax = plt.subplots(figsize=(3.2, 3.2 * (view[3] - view[2]) / (view[1] - view[0])))

    title = textwrap.fill(seq.title, 45)

    def update(t):
        ax.clear()
        _frame_axes(ax, view)
        draw_frame(ax, xy[t], (seq.captions[t] if seq.captions else title) or " ")
        ax.set_xlabel(f"frame {t}", fontsize=7)

    FuncAnimation(fig, update, frames=len(xy)).save(out, writer=PillowWriter(fps=fps), dpi=dpi)
    plt.close(fig)
