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
STEP_PX = (6.0, 3.0)  # spread of a signer's position between recordings (back on the same mark)
_BODY, _FACE = slice(lm.BODY, lm.BODY + lm.N_BODY), slice(lm.FACE, lm.FACE + lm.N_FACE)
_HANDS = (lm.LEFT_HAND, lm.RIGHT_HAND)


# How loosely the tracker holds each body landmark, in pixels: steady at the head, looser down
# the arms, loose for the legs off the image.
_BODY_PX = np.array([0.8] * 11 + [1.5, 1.5, 2.5, 2.5, 3.0, 3.0] + [3.5] * 6 + [4.0, 4.0] + [8.0] * 8)


def _jitter_scales() -> tuple[np.ndarray, np.ndarray]:
    """Frame-to-frame jitter in pixels per landmark, (543,) for x and y and (543,) for depth."""
    xy, z = np.full(N_LANDMARKS, 0.7), np.full(N_LANDMARKS, 1.5)  # hands
    xy[_BODY], z[_BODY] = 0.5 * _BODY_PX, 8.0
    xy[_FACE], z[_FACE] = 0.35, 0.5
    return xy, z


_JITTER_XY, _JITTER_Z = _jitter_scales()


def project(points: np.ndarray, signer: Signer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The camera's view of body-frame points (T, P, 3).

    Returns:
      x, y in pixels and depth (towards the back, on the pixel scale), each (T, P).
    """
    c, s = np.cos(signer.yaw), np.sin(signer.yaw)
    x, y, z = np.moveaxis(points, -1, 0)
    x, z = c * x + s * z, -s * x + c * z  # the body turned about its vertical axis
    scale = signer.px_per_m * CAMERA_DISTANCE / (CAMERA_DISTANCE + z)
    return signer.centre_px[0] + scale * x, signer.centre_px[1] + scale * y, z * signer.px_per_m


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
    x, y, depth = project(points, signer)
    # Where the signer stands differs a little from one recording to the next.
    step_x, step_y = rng.normal(0.0, STEP_PX)
    noise = rng.standard_normal((3, frames, N_LANDMARKS), dtype=np.float32)
    x += step_x + _JITTER_XY * noise[0] + _wander(rng, frames)
    y += step_y + _JITTER_XY * noise[1] + _wander(rng, frames)
    # Depth origins: the hips' midpoint for the body, the centre for the face, the wrist per hand.
    origin = np.empty_like(depth)
    origin[:, _BODY] = depth[:, [lm.LEFT_HIP, lm.RIGHT_HIP]].mean(1, keepdims=True)
    origin[:, _FACE] = depth[:, _FACE].mean(1, keepdims=True)
    for start in _HANDS:
        origin[:, start:start + lm.N_HAND] = depth[:, start:start + 1]
        noise[2, :, start] = 0.0  # the wrist is the origin exactly
    z = depth - origin + _JITTER_Z * noise[2]
    palms = [np.stack([v[:, [start, start + 9]].mean(1) for v in (x, y)], -1) for start in _HANDS]
    missed = _missed_hands(x, y, palms, signer, rng)
    nose = np.stack([x[:, lm.NOSE], y[:, lm.NOSE]], -1)
    covered = np.zeros(frames, bool)
    for palm in palms:
        covered |= np.linalg.norm(palm - nose, axis=-1) < 0.05 * signer.px_per_m
    missed[covered & (rng.random(frames) < 0.25), _FACE] = True
    out = np.empty((frames, 1, N_LANDMARKS, 3), np.float32)
    out[:, 0, :, 0], out[:, 0, :, 1], out[:, 0, :, 2] = x / width, y / height, z / width
    out[:, 0][missed] = np.nan
    return out


def _missed_hands(x: np.ndarray, y: np.ndarray, palms: list[np.ndarray], signer: Signer,
                  rng: np.random.Generator) -> np.ndarray:
    """(T, 543) mask of the hand landmarks the tracker misses."""
    width, height = IMAGE_SIZE
    missed = np.zeros(x.shape, bool)
    hip_line = y[:, [lm.LEFT_HIP, lm.RIGHT_HIP]].mean(1)
    apart = np.linalg.norm(palms[0] - palms[1], axis=-1) > 0.1 * signer.px_per_m
    for start, palm in zip(_HANDS, palms):
        speed = np.linalg.norm(np.diff(palm, axis=0, prepend=palm[:1]), axis=-1)
        low = palm[:, 1] > hip_line - 0.05 * signer.px_per_m
        hazard = signer.dropout * (0.01 + 0.05 * np.clip((speed - 6.0) / 6.0, 0.0, 3.0)
                                   + 0.3 * low + 0.15 * ~apart)
        wx, wy = x[:, start], y[:, start]
        outside = (wx < 0) | (wy < 0) | (wx > width) | (wy > height)
        missed[:, start:start + lm.N_HAND] = (_lost_runs(np.clip(hazard, 0.0, 1.0), 0.3, rng) | outside)[:, None]
    return missed


def _wander(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Slow drift of the landmarks, (frames, 543) pixels: each body point on its own, the face
    and each hand as a whole."""
    body = 0.85 * _BODY_PX * drift(rng, frames, 2.0, lm.N_BODY)
    face = np.repeat(0.8 * drift(rng, frames, 3.0), lm.N_FACE, 1)
    hands = np.repeat(1.2 * drift(rng, frames, 1.5, 2), lm.N_HAND, 1)
    return np.concatenate([body, face, hands], 1)
