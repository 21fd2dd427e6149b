"""What MediaPipe Holistic would report: the camera's view, landmark jitter, lost hands.

x and y are normalised to the image (0..1, y down). z follows MediaPipe: body depth relative to
the hips' midpoint, hand depth relative to its wrist, face depth relative to the face's centre,
all in units of the image width. A part that is not detected is NaN.

Hands are lost in runs of frames, more readily when they move fast (motion blur), rest low by the
body, overlap each other, or leave the image; the face is lost when a hand covers it.
"""

from __future__ import annotations

import numpy as np

from slt_jax.layout import N_LANDMARKS
from slt_jax.synth import landmarks as lm
from slt_jax.synth.signal import drift
from slt_jax.synth.signer import IMAGE_SIZE, Signer

CAMERA_DISTANCE = 2.5  # metres from the camera to the shoulders, for perspective
# Jitter in pixels per body landmark: steady at the head, looser down the arms, loose off-image.
_BODY_JITTER = np.array([0.8] * 11 + [1.5, 1.5, 2.5, 2.5, 3.0, 3.0] + [3.5] * 6 + [4.0, 4.0] + [8.0] * 8)
_PARTS = {"left": lm.LEFT_HAND, "right": lm.RIGHT_HAND}


def project(points: np.ndarray, signer: Signer) -> tuple[np.ndarray, np.ndarray]:
    """The camera's view of body-frame points (T, P, 3).

    Returns:
      (pixels (T, P, 2), depth (T, P) in metres towards the back, same pixel scale as x).
    """
    c, s = np.cos(signer.yaw), np.sin(signer.yaw)
    x, y, z = np.moveaxis(points, -1, 0)
    x, z = c * x + s * z, -s * x + c * z  # the body turned about its vertical axis
    scale = signer.px_per_m * CAMERA_DISTANCE / (CAMERA_DISTANCE + z)
    pixels = np.stack([signer.centre_px[0] + scale * x, signer.centre_px[1] + scale * y], -1)
    return pixels, z * signer.px_per_m


def _lost_runs(hazard: np.ndarray, recover: float, rng: np.random.Generator) -> np.ndarray:
    """Frames a tracker misses: it loses a hand with probability `hazard` per frame and then
    stays lost until it recovers (probability `recover` per frame)."""
    lost = np.zeros(len(hazard), bool)
    draws = rng.random(len(hazard))
    for t in range(len(hazard)):
        lost[t] = draws[t] < (1 - recover if t and lost[t - 1] else hazard[t])
    return lost


def observe(points: np.ndarray, signer: Signer, rng: np.random.Generator) -> np.ndarray:
    """MediaPipe-like landmarks from body-frame points (T, 543, 3): (T, 1, 543, 3) float32."""
    frames = len(points)
    width, height = IMAGE_SIZE
    pixels, depth = project(points, signer)
    body = slice(lm.BODY, lm.BODY + lm.N_BODY)
    face = slice(lm.FACE, lm.FACE + lm.N_FACE)
    # Landmark jitter: a slowly wandering part plus frame-to-frame noise.
    pixels[:, body] += _BODY_JITTER[:, None] * (0.85 * _wander(rng, frames, lm.N_BODY, 2.0)
                                                + 0.5 * rng.standard_normal((frames, lm.N_BODY, 2)))
    pixels[:, face] += 0.8 * _wander(rng, frames, 1, 3.0) + 0.35 * rng.standard_normal((frames, lm.N_FACE, 2))
    z = np.empty((frames, N_LANDMARKS))
    hips = depth[:, [lm.LEFT_HIP, lm.RIGHT_HIP]].mean(1, keepdims=True)
    z[:, body] = depth[:, body] - hips + 8.0 * rng.standard_normal((frames, lm.N_BODY))
    z[:, face] = depth[:, face] - depth[:, face].mean(1, keepdims=True) + rng.normal(0, 0.5, (frames, lm.N_FACE))
    hip_line = pixels[:, [lm.LEFT_HIP, lm.RIGHT_HIP], 1].mean(1)
    palms = {}
    for name, start in _PARTS.items():
        part = slice(start, start + lm.N_HAND)
        pixels[:, part] += 1.2 * _wander(rng, frames, 1, 1.5) + 0.7 * rng.standard_normal((frames, lm.N_HAND, 2))
        z[:, part] = depth[:, part] - depth[:, start:start + 1] + rng.normal(0, 1.5, (frames, lm.N_HAND))
        z[:, start] = 0.0  # MediaPipe puts the hand's depth origin at its wrist
        palms[name] = pixels[:, [start, start + 9]].mean(1)
    out = np.concatenate([pixels / [width, height], z[..., None] / width], -1)
    apart = np.linalg.norm(palms["left"] - palms["right"], axis=-1) > 0.1 * signer.px_per_m
    nose = pixels[:, lm.NOSE]
    covered = np.zeros(frames, bool)
    for name, start in _PARTS.items():
        palm = palms[name]
        speed = np.linalg.norm(np.diff(palm, axis=0, prepend=palm[:1]), axis=-1)
        low = palm[:, 1] > hip_line - 0.05 * signer.px_per_m
        hazard = signer.dropout * (0.01 + 0.05 * np.clip((speed - 6.0) / 6.0, 0.0, 3.0)
                                   + 0.3 * low + 0.15 * ~apart)
        wrist = pixels[:, start]
        outside = (wrist < 0).any(-1) | (wrist[:, 0] > width) | (wrist[:, 1] > height)
        lost = _lost_runs(np.clip(hazard, 0.0, 1.0), 0.3, rng) | outside
        out[lost, start:start + lm.N_HAND] = np.nan
        covered |= np.linalg.norm(palm - nose, axis=-1) < 0.05 * signer.px_per_m
    out[covered & (rng.random(frames) < 0.25), face] = np.nan
    return out[:, None].astype(np.float32)


def _wander(rng: np.random.Generator, frames: int, points: int, sigma: float) -> np.ndarray:
    """Slow unit-variance drift of each point's pixel position, (frames, points, 2)."""
    return drift(rng, frames, sigma, 2 * points).reshape(frames, points, 2)
