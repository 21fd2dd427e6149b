"""Frame features beyond the authors' raw keypoints (docs/features.md).

The authors feed raw MediaPipe image coordinates, so where the signer stands and how large they
appear move every feature. The options here remove that and add what raw positions leave
implicit. Per frame, the features are these blocks, each present when its `DataConfig` option
is on, in this order:

  positions   the chosen groups' points, x, y (and z with `use_3d`); with `body_norm`, centred on
              the shoulders' midpoint and divided by the shoulder width
  hand shape  (`hand_norm`) per chosen hand, its 20 other points relative to its wrist, divided
              by its palm size; the hand's own positions above stay (where it is, beside how it
              is shaped)
  velocity    (`velocity`) the difference from the previous source frame of every value above
  presence    (`hand_presence`) per chosen hand, 1 where it was detected and 0 where it was not

Everything is numpy, vectorised over frames, and NaN-safe: a missing point is NaN through the
arithmetic and 0 only at the end, as in the authors' features. A frame where nothing was
detected therefore stays all zeros, which keeps the authors' padding rule (a frame is padding
when all its features are 0); presence is a 1-where-detected flag for the same reason.
"""

from __future__ import annotations

import numpy as np

from slt_jax.layout import LANDMARK_GROUPS

LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12  # MediaPipe pose landmarks
WRIST, PALM = 0, (5, 9, 13, 17)  # hand landmarks: the wrist and the four finger bases (MCP joints)
HANDS = ("left_hand", "right_hand")
BODY_NORMS = ("none", "sequence", "frame")


def _mean_over_valid(x_TxK: np.ndarray, valid_T: np.ndarray) -> np.ndarray:
    """Mean over the valid frames, (K,); NaN when no frame is valid."""
    total_K = np.where(valid_T[:, None], x_TxK, 0.0).sum(0)
    count = valid_T.sum()
    return total_K / count if count else np.full(x_TxK.shape[1], np.nan, x_TxK.dtype)


def shoulder_reference(body_TxPxA: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """The shoulders' midpoint and width to normalise each frame with.

    Args:
      body_TxPxA: the 33 MediaPipe pose points, NaN where missing.
      mode: "sequence": the means over the frames that have both shoulders (pose-format's
        `normalize`); "frame": each frame's own, the sequence's where a frame lacks a shoulder.

    Returns:
      centre_TxA and width_T; NaN everywhere when no frame has both shoulders.
    """
    left, right = body_TxPxA[:, LEFT_SHOULDER], body_TxPxA[:, RIGHT_SHOULDER]
    centre_TxA = (left + right) / 2
    width_T = np.linalg.norm(left - right, axis=-1)
    valid_T = np.isfinite(width_T) & (width_T > 0)
    sequence_centre_A = _mean_over_valid(centre_TxA, valid_T)
    sequence_width = _mean_over_valid(width_T[:, None], valid_T)[0]
    if mode == "sequence":
        return np.broadcast_to(sequence_centre_A, centre_TxA.shape), np.full_like(width_T, sequence_width)
    return (np.where(valid_T[:, None], centre_TxA, sequence_centre_A),
            np.where(valid_T, width_T, sequence_width))


def normalise_body(points_TxPxA: np.ndarray, body_TxPxA: np.ndarray, mode: str) -> np.ndarray:
    """Points in shoulder-width units around the shoulders' midpoint (see `shoulder_reference`)."""
    centre_TxA, width_T = shoulder_reference(body_TxPxA, mode)
    return (points_TxPxA - centre_TxA[:, None]) / width_T[:, None, None]


def palm_size(hand_TxPxA: np.ndarray) -> np.ndarray:
    """Mean wrist-to-finger-base distance per frame, (T,): rigid, so it does not change with the
    handshape or with rotations about the wrist; NaN where the hand is missing."""
    size_T = np.linalg.norm(hand_TxPxA[:, PALM] - hand_TxPxA[:, WRIST, None], axis=-1).mean(-1)
    return np.where(size_T > 0, size_T, np.nan)


def hand_shape(hand_TxPxA: np.ndarray) -> np.ndarray:
    """The 20 non-wrist points of a hand relative to its wrist, in palm sizes, (T, 20, A)."""
    others = np.delete(hand_TxPxA, WRIST, axis=1)
    return (others - hand_TxPxA[:, WRIST, None]) / palm_size(hand_TxPxA)[:, None, None]


def velocity(x_TxF: np.ndarray) -> np.ndarray:
    """x_t - x_(t-1); 0 at the first frame, NaN where either frame lacks the value."""
    return np.concatenate([np.zeros_like(x_TxF[:1]), np.diff(x_TxF, axis=0)])


def presence(hand_TxPxA: np.ndarray) -> np.ndarray:
    """1.0 where any point of the hand was detected, else 0.0, (T,)."""
    return np.isfinite(hand_TxPxA).any(axis=(1, 2)).astype(hand_TxPxA.dtype)


def frame_features(points_TxNxA: np.ndarray, config) -> np.ndarray:
    """One person's keypoints -> the features `config` asks for.

    Args:
      points_TxNxA: all 543 MediaPipe Holistic points of each frame, with the config's axes
        (x, y or x, y, z), NaN where missing.
      config: a `DataConfig`.

    Returns:
      (T, config.n_features) float32, NaN and infinities replaced by 0.
    """
    group = lambda name: points_TxNxA[:, slice(*LANDMARK_GROUPS[name])]
    positions = np.concatenate([group(g) for g in config.groups], axis=1)
    if config.body_norm != "none":
        positions = normalise_body(positions, group("body"), config.body_norm)
    hands = [g for g in config.groups if g in HANDS]
    blocks = [positions] + ([hand_shape(group(h)) for h in hands] if config.hand_norm else [])
    coords_TxF = np.concatenate([b.reshape(len(b), -1) for b in blocks], axis=1)
    if config.velocity:
        coords_TxF = np.concatenate([coords_TxF, velocity(coords_TxF)], axis=1)
    if config.hand_presence:
        coords_TxF = np.concatenate([coords_TxF] + [presence(group(h))[:, None] for h in hands], axis=1)
    return np.nan_to_num(coords_TxF.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def feature_count(config) -> int:
    """The width of `frame_features(..., config)`: what the model's input layer is built for."""
    points = sum(stop - start for start, stop in (LANDMARK_GROUPS[g] for g in config.groups))
    hands = sum(g in HANDS for g in config.groups)
    if config.hand_norm:
        points += hands * (LANDMARK_GROUPS["left_hand"][1] - LANDMARK_GROUPS["left_hand"][0] - 1)
    coords = points * (3 if config.use_3d else 2)
    return coords * (2 if config.velocity else 1) + (hands if config.hand_presence else 0)


PARTS = ("body", "face", "left_hand", "right_hand")  # the body parts attributions are summed over


def feature_parts(config) -> np.ndarray:
    """Which body part (an index into PARTS) each column of `frame_features(..., config)` belongs to,
    (config.n_features,): a hand's shape block and presence flag count as that hand's."""
    axes = 3 if config.use_3d else 2
    part = lambda name, points: np.full(points * axes, PARTS.index(name))
    positions = [part(g, stop - start) for g, (start, stop) in ((g, LANDMARK_GROUPS[g]) for g in config.groups)]
    hands = [g for g in config.groups if g in HANDS]
    shapes = [part(h, LANDMARK_GROUPS[h][1] - LANDMARK_GROUPS[h][0] - 1) for h in hands] if config.hand_norm else []
    columns = np.concatenate(positions + shapes)
    if config.velocity:
        columns = np.concatenate([columns, columns])
    if config.hand_presence:
        columns = np.concatenate([columns, [PARTS.index(h) for h in hands]])
    return columns.astype(np.int32)


def feature_tag(config) -> str:
    """A short name of the feature options: "xy" for the authors', e.g. "xy_body-frame_hands"."""
    options = {f"body-{config.body_norm}": config.body_norm != "none", "hands": config.hand_norm,
               "velocity": config.velocity, "presence": config.hand_presence}
    return "_".join(["xyz" if config.use_3d else "xy"] + [name for name, on in options.items() if on])
