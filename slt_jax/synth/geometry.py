"""Rigid motions of point sets: quaternions (w, x, y, z), rotation matrices, translation.

Points are (T, P, 3) arrays, one set per frame. Broadcasting over a last axis of 3 is slow in
numpy, so per-frame operations work on whole planes (T, P) or flat views instead.
"""

from __future__ import annotations

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices from (..., 4) quaternions (w, x, y, z), normalised here."""
    w, x, y, z = np.moveaxis(unit(q), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """The quaternion of one rotation matrix (3, 3)."""
    # Read it off its largest component, which keeps the division well conditioned.
    w2 = np.array([1 + m[0, 0] + m[1, 1] + m[2, 2], 1 + m[0, 0] - m[1, 1] - m[2, 2],
                   1 - m[0, 0] + m[1, 1] - m[2, 2], 1 - m[0, 0] - m[1, 1] + m[2, 2]])
    k = int(np.argmax(w2))
    big = 0.5 * np.sqrt(w2[k])
    others = [(m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]),
              (m[2, 1] - m[1, 2], m[0, 1] + m[1, 0], m[0, 2] + m[2, 0]),
              (m[0, 2] - m[2, 0], m[0, 1] + m[1, 0], m[1, 2] + m[2, 1]),
              (m[1, 0] - m[0, 1], m[0, 2] + m[2, 0], m[1, 2] + m[2, 1])][k]
    rest = iter(np.array(others) / (4 * big))
    return np.array([big if i == k else next(rest) for i in range(4)])


def quat_multiply(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The rotation q followed by p, for (..., 4) quaternions."""
    pw, px, py, pz = np.moveaxis(p, -1, 0)
    qw, qx, qy, qz = np.moveaxis(q, -1, 0)
    return np.stack([pw * qw - px * qx - py * qy - pz * qz, pw * qx + px * qw + py * qz - pz * qy,
                     pw * qy - px * qz + py * qw + pz * qx, pw * qz + px * qy - py * qx + pz * qw], -1)


def quat_from_rotvec(v: np.ndarray) -> np.ndarray:
    """Quaternions from (..., 3) rotation vectors (axis times angle in radians)."""
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    axis = v / np.maximum(angle, 1e-12)
    return np.concatenate([np.cos(angle / 2), np.sin(angle / 2) * axis], -1)


def rotate(points: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Rotates (T, P, 3) points by (T, 3, 3) matrices, one per frame.

    Plane by plane rather than with matmul, which would make one tiny BLAS call per frame.
    """
    x, y, z = np.moveaxis(points, -1, 0)
    r = rotation[:, :, :, None]
    return np.stack([r[:, i, 0] * x + r[:, i, 1] * y + r[:, i, 2] * z for i in range(3)], -1)


def translate(points: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Adds a (T, 3) offset to every point of (T, P, 3) points."""
    t, p, _ = points.shape
    return (points.reshape(t, -1) + np.tile(offset, p)).reshape(t, p, 3)
