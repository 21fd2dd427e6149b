"""The 21 hand landmarks from a handshape (finger flexion, spread, thumb) and a palm orientation.

A hand is built as a right hand in the body frame (x to the image's right, y down, z away from the
camera) with the fingers up and the palm towards the camera, then rotated and moved to the wrist.
A left hand is the mirror image of a right hand, which the caller makes by negating x.
"""

from __future__ import annotations

import numpy as np

from slt_jax.synth import landmarks as lm
from slt_jax.synth.geometry import quat_from_matrix, quat_to_matrix, rotate, translate, unit

# Handshape parameters, each about 0..1: flexion at the knuckles and at the two finger joints
# (index, middle, ring, pinky), finger spread, thumb opposition (towards the palm), thumb flexion.
SHAPE_SIZE = 11
MCP, PIP, SPREAD, THUMB_OPPOSE, THUMB_FLEX = slice(0, 4), slice(4, 8), 8, 9, 10


def _shape(mcp, pip, spread=0.0, oppose=0.0, flex=0.0):
    return np.array([*np.broadcast_to(mcp, 4), *np.broadcast_to(pip, 4), spread, oppose, flex])


HANDSHAPES = {
    "B": _shape(0, 0, 0.0, 0.15, 0.2),
    "5": _shape(0, 0, 1.0),
    "A": _shape(1, 1, 0.0, 0.1, 0.1),
    "S": _shape(1, 1, 0.0, 0.85, 0.9),
    "1": _shape([0, 1, 1, 1], [0, 1, 1, 1], 0.0, 0.8, 0.8),
    "V": _shape([0, 0, 1, 1], [0, 0, 1, 1], 0.9, 0.8, 0.8),
    "H": _shape([0, 0, 1, 1], [0, 0, 1, 1], 0.0, 0.8, 0.8),
    "L": _shape([0, 1, 1, 1], [0, 1, 1, 1], 1.0),
    "Y": _shape([1, 1, 1, 0], [1, 1, 1, 0], 1.0),
    "I": _shape([1, 1, 1, 0], [1, 1, 1, 0], 0.0, 0.85, 0.9),
    "W": _shape([0, 0, 0, 1], [0, 0, 0, 1], 0.8, 0.8, 0.8),
    "C": _shape(0.35, 0.45, 0.1, 0.45, 0.3),
    "O": _shape(0.55, 0.7, 0.0, 0.95, 0.7),
    "F": _shape([0.55, 0, 0, 0], [0.7, 0, 0, 0], 0.7, 0.9, 0.7),
    "X": _shape([0.2, 1, 1, 1], [0.9, 1, 1, 1], 0.0, 0.8, 0.8),
    "bent_B": _shape(0.9, 0.05, 0.0, 0.2, 0.2),
    "claw": _shape(0.2, 0.8, 1.0, 0.3, 0.4),
    "flat_O": _shape(0.6, 0.2, 0.0, 0.9, 0.4),
}
RELAXED = _shape([0.25, 0.3, 0.35, 0.4], [0.3, 0.35, 0.4, 0.45], 0.2, 0.3, 0.3)

# The unrotated hand's axes: along the fingers, towards the thumb, out of the palm.
ALONG, THUMBWARD, PALMWARD = np.array([0.0, -1.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])
# Metres for a hand 0.185 m long (wrist to middle fingertip); knuckles as (along, thumbward).
_KNUCKLES = np.array([[0.09, 0.022], [0.094, 0.002], [0.088, -0.016], [0.077, -0.032]])
_PHALANGES = np.array([[0.042, 0.025, 0.021], [0.047, 0.029, 0.023],
                       [0.044, 0.028, 0.022], [0.034, 0.02, 0.019]])
_SPLAY = np.radians([[3, 0, -3, -7], [10, 1, -8, -17]])  # base splay, extra at full spread
_THUMB_BASE = np.array([0.028, 0.022])
_THUMB_BONES = np.array([0.038, 0.032, 0.027])
PALM_CENTRE = np.array([0.0, -0.055, 0.0])  # wrist to palm centre, unrotated


def local_hand(shape: np.ndarray) -> np.ndarray:
    """The unrotated right hand for each handshape, (T, 21, 3) metres relative to the wrist."""
    a, b, n = ALONG, THUMBWARD, PALMWARD
    t = len(shape)
    out = np.zeros((t, lm.N_HAND, 3))
    # Fingers: splay in the palm plane, then bend each joint towards the palm.
    splay = _SPLAY[0] + shape[:, SPREAD, None] * _SPLAY[1]  # (T, 4)
    base_dir = np.cos(splay)[..., None] * a + np.sin(splay)[..., None] * b  # (T, 4, 3)
    mcp = np.radians(85.0) * shape[:, MCP]
    pip = np.radians(105.0) * shape[:, PIP]
    bend = np.cumsum(np.stack([mcp, pip, 0.7 * pip], axis=-1), axis=-1)  # (T, 4, 3)
    seg = (np.cos(bend)[..., None] * base_dir[:, :, None]
           + np.sin(bend)[..., None] * n) * _PHALANGES[None, :, :, None]
    knuckles = _KNUCKLES[:, :1] * a + _KNUCKLES[:, 1:] * b  # (4, 3)
    joints = knuckles[None, :, None] + np.concatenate(
        [np.zeros((t, 4, 1, 3)), np.cumsum(seg, axis=2)], axis=2)  # (T, 4, 4, 3)
    for k, finger in enumerate(lm.FINGERS):
        out[:, list(finger)] = joints[:, k]
    # Thumb: swings from beside the index towards the palm, then curls across it.
    # Spread also abducts the thumb: from beside the index (20 degrees) to splayed out (65).
    abduct = np.radians(20.0 + 45.0 * shape[:, SPREAD, None])
    beside = np.cos(abduct) * a + np.sin(abduct) * b
    oppose = shape[:, THUMB_OPPOSE, None]
    direction = unit((1 - oppose) * beside + oppose * unit(0.55 * a + 0.2 * b + 0.8 * n))
    curl = -b + 0.4 * n
    curl = unit(curl - np.sum(curl * direction, -1, keepdims=True) * direction)
    flex = np.radians([0.0, 40.0, 95.0]) * shape[:, THUMB_FLEX, None]  # (T, 3)
    thumb_seg = (np.cos(flex)[..., None] * direction[:, None]
                 + np.sin(flex)[..., None] * curl[:, None]) * _THUMB_BONES[:, None]
    base = _THUMB_BASE[0] * a + _THUMB_BASE[1] * b
    out[:, list(lm.THUMB)] = base + np.concatenate([np.zeros((t, 1, 3)), np.cumsum(thumb_seg, 1)], 1)
    return out


def facing(fingers, palm) -> np.ndarray:
    """The quaternion that points the fingers towards `fingers` and the palm towards `palm`."""
    a = unit(np.asarray(fingers, float))
    n = np.asarray(palm, float)
    n = unit(n - (n @ a) * a)
    # Columns: where the x (thumbward), y (against the fingers) and z (against the palm) axes go.
    return quat_from_matrix(np.column_stack([np.cross(a, n), -a, -n]))


# Palm orientations of the right hand, named by where the palm faces and the fingers point
# ("across" = towards the other side of the body).
ORIENTATIONS = {
    name: facing(fingers, palm) for name, (fingers, palm) in {
        "palm_out": ((0, -1, 0), (0, 0, -1)),
        "palm_in": ((0, -1, 0), (0, 0, 1)),
        "palm_across": ((0, -1, 0), (1, 0, 0)),
        "palm_down": ((0.2, 0.1, -1), (0, 1, 0)),
        "palm_up": ((0.2, 0, -1), (0, -1, 0)),
        "palm_across_forward": ((0, -0.2, -1), (1, 0, 0)),
        "palm_down_across": ((1, 0, -0.4), (0, 1, 0)),
        "palm_in_across": ((1, -0.3, 0), (0, 0, 1)),
        "palm_up_across": ((1, 0, -0.4), (0, -1, 0)),
    }.items()
}
REST_ORIENTATIONS = {
    "hanging": facing((0.1, 1, 0), (1, 0, 0.3)),
    "clasped": facing((1, 0.5, 0), (0, -0.3, 1)),
}


def hand_points(shape: np.ndarray, orientation: np.ndarray, wrist: np.ndarray, size: float) -> np.ndarray:
    """Right-hand landmarks in the body frame.

    Args:
      shape: (T, SHAPE_SIZE) handshape parameters.
      orientation: (T, 4) palm orientation as quaternions.
      wrist: (T, 3) wrist position.
      size: hand length relative to 0.185 m.

    Returns:
      (T, 21, 3) landmarks.
    """
    return translate(rotate(local_hand(shape), size * quat_to_matrix(orientation)), wrist)
