"""A 468-point face mesh in MediaPipe's index order, built from a few curves, with expressions.

The named contours (oval, eyes, brows, lips, nose ridge) sit on curves drawn to human proportions;
the rest of the mesh is spread evenly over the face. Coordinates are metres in the head frame:
x to the image's right (the signer's left), y down, z away from the camera, origin between the
eyes' level and the nose.
"""

from __future__ import annotations

import functools

import numpy as np

from slt_jax.synth import landmarks as lm
from slt_jax.synth.geometry import rotate, translate

EYE_Y, BROW_Y, MOUTH_Y = -0.015, -0.045, 0.062
FACE_HALF_WIDTH, FOREHEAD_Y, CHIN_Y = 0.07, -0.105, 0.115
EXPRESSIONS = ("mouth_open", "brow_raise", "blink")


def _curve(indices, x0, x1, y, bulge, power=1.0):
    """Puts `indices` on a curve from x0 to x1 at height y, bowed by `bulge` (negative = up)."""
    t = np.linspace(0.0, 1.0, len(indices))
    return {i: (x0 + (x1 - x0) * s, y + bulge * np.sin(np.pi * s) ** power) for i, s in zip(indices, t)}


def _oval_xy(theta):
    """The face outline at angle theta from the top, clockwise in the image."""
    c = np.cos(theta)
    y = np.where(c > 0, FOREHEAD_Y * c, -CHIN_Y * c)
    jaw = 1.0 - 0.45 * np.clip(y / CHIN_Y, 0.0, 1.0) ** 1.5
    return FACE_HALF_WIDTH * np.sin(theta) * jaw, y


def _depth(x, y):
    """The face surface: an ellipsoid cap with a nose on it (negative = towards the camera)."""
    cap = -0.085 * np.sqrt(np.clip(1.0 - (x / 0.08) ** 2 - (y / 0.13) ** 2, 0.0, None))
    nose = -0.03 * np.exp(-((x / 0.014) ** 2) - ((y - 0.012) / 0.028) ** 2)
    return cap + nose + 0.015


def _named_points() -> dict[int, tuple[float, float]]:
    oval = lm.FACE_OVAL[:-1]
    xs, ys = _oval_xy(2 * np.pi * np.arange(len(oval)) / len(oval))
    points = dict(zip(oval, zip(xs, ys)))
    for side in (-1, 1):  # -1: the signer's right, on the image's left
        eye_up, eye_low, brow_up, brow_low = (
            (lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER, lm.RIGHT_BROW_UPPER, lm.RIGHT_BROW_LOWER)
            if side < 0 else
            (lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER, lm.LEFT_BROW_UPPER, lm.LEFT_BROW_LOWER)
        )
        outer, inner = side * 0.046, side * 0.018
        points |= _curve(eye_up, outer, inner, EYE_Y, -0.006, 0.8)
        points |= _curve(eye_low, outer, inner, EYE_Y, 0.004)
        points |= _curve(brow_up, side * 0.058, side * 0.012, BROW_Y, -0.007)
        points |= _curve(brow_low, side * 0.056, side * 0.013, BROW_Y + 0.005, -0.005)
    points |= _curve(lm.LIPS_OUTER_UPPER, -0.025, 0.025, MOUTH_Y, -0.008, 0.6)
    points |= _curve(lm.LIPS_OUTER_LOWER, -0.025, 0.025, MOUTH_Y, 0.010, 0.8)
    points |= _curve(lm.LIPS_INNER_UPPER, -0.02, 0.02, MOUTH_Y, -0.002)
    points |= _curve(lm.LIPS_INNER_LOWER, -0.02, 0.02, MOUTH_Y, 0.002)
    ridge_y = (-0.03, -0.018, -0.006, 0.006, 0.016, 0.024, 0.03, 0.036, 0.04, 0.043)
    points |= {i: (0.0, y) for i, y in zip(lm.NOSE_RIDGE, ridge_y)}
    points |= {i: (0.0, y) for i, y in zip(lm.CHIN_MIDLINE, (0.08, 0.09, 0.1, 0.108))}
    points |= {i: (0.0, y) for i, y in zip(lm.FOREHEAD_MIDLINE, (-0.09, -0.065, -0.05))}
    return points


@functools.lru_cache(maxsize=1)
def template() -> np.ndarray:
    """The neutral face, (468, 3) metres in the head frame."""
    named = _named_points()
    rest = [i for i in range(lm.N_FACE) if i not in named]
    # The unnamed mesh points: a fixed, even scatter inside the outline.
    rng = np.random.default_rng(468)
    candidates = rng.uniform([-FACE_HALF_WIDTH, FOREHEAD_Y], [FACE_HALF_WIDTH, CHIN_Y], (4000, 2))
    theta = np.arctan2(candidates[:, 0], -candidates[:, 1])
    ox, oy = _oval_xy(theta)
    inside = np.hypot(*candidates.T) < 0.92 * np.hypot(ox, oy)
    xy = np.zeros((lm.N_FACE, 2))
    xy[list(named)] = list(named.values())
    xy[rest] = candidates[inside][: len(rest)]
    return np.column_stack([xy, _depth(xy[:, 0], xy[:, 1])])


@functools.lru_cache(maxsize=1)
def expression_basis() -> np.ndarray:
    """Per-point displacement of each expression in EXPRESSIONS at full strength, (3, 468, 3)."""
    x, y, _ = template().T
    basis = np.zeros((len(EXPRESSIONS), lm.N_FACE, 3))
    # The jaw drops: everything below the mouth line moves down, the lower lip most.
    basis[0, :, 1] = 0.012 * np.clip((y - MOUTH_Y + 0.004) / 0.012, 0.0, 1.0)
    basis[1, :, 1] = -0.006 * np.clip((EYE_Y - 0.012 - y) / 0.02, 0.0, 1.0)
    lids = list(lm.RIGHT_EYE_UPPER + lm.LEFT_EYE_UPPER)
    basis[2, lids, 1] = 0.9 * (EYE_Y - y[lids]) + 0.003
    return basis


def face_points(centre: np.ndarray, rotation: np.ndarray, expression: np.ndarray,
                scale: float) -> np.ndarray:
    """Places the face in the body frame.

    Args:
      centre: (T, 3) head-frame origin in the body frame.
      rotation: (T, 3, 3) head rotation.
      expression: (T, len(EXPRESSIONS)) expression strengths, about 0..1.
      scale: the signer's face size relative to the template.

    Returns:
      (T, 468, 3) face points in the body frame.
    """
    basis = expression_basis().reshape(len(EXPRESSIONS), -1)
    local = template().reshape(1, -1) + sum(expression[:, k, None] * basis[k] for k in range(len(basis)))
    return translate(rotate(local.reshape(len(expression), lm.N_FACE, 3), scale * rotation), centre)
