"""The whole body in 3-D: arms solved from the hands, the head and face, the torso's sway.

Output points are the 543 MediaPipe Holistic landmarks in the body frame of signer.py (metres),
before the camera sees them.
"""

from __future__ import annotations

import numpy as np

from slt_jax.layout import N_LANDMARKS
from slt_jax.synth import face, geometry, hand
from slt_jax.synth import landmarks as lm
from slt_jax.synth.motion import POS, QUAT, SHAPE, Performance
from slt_jax.synth.signal import drift
from slt_jax.synth.signer import Signer, elbows, head_centre

_MIRROR = np.array([-1.0, 1.0, 1.0])


def arm(states: np.ndarray, signer: Signer) -> dict[str, np.ndarray]:
    """Shoulder, elbow, wrist (T, 3) and hand (T, 21, 3) of a right arm following hand states."""
    palm, quat = states[:, POS], states[:, QUAT]
    to_palm = geometry.rotate(hand.PALM_CENTRE[None, None], geometry.quat_to_matrix(quat))[:, 0]
    target = palm - signer.hand_size * to_palm
    # The shoulder rises and comes forward a little as the hand goes up to the face.
    lift = np.clip((0.12 - target[:, 1:2]) / 0.3, 0.0, 1.0)
    shoulder = np.array([-signer.shoulder_width / 2, 0.0, 0.0]) + lift * [0.0, -0.03, -0.015]
    elbow, wrist = elbows(shoulder, target, signer.upper_arm, signer.forearm)
    points = hand.hand_points(states[:, SHAPE], quat, wrist, signer.hand_size)
    return {"shoulder": shoulder, "elbow": elbow, "wrist": wrist, "hand": points}


def _mirror(arm_: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A right arm turned into a left one."""
    return {k: v * _MIRROR for k, v in arm_.items()}


def _legs(signer: Signer, side: float) -> dict[int, tuple]:
    """Hip and leg points of one side (+1 left, -1 right), keyed by their left-side index: still,
    and but for the hips below the image."""
    t, hip = signer.torso, 0.3 * signer.shoulder_width
    return {lm.LEFT_HIP: (side * hip, t, 0.02), lm.LEFT_KNEE: (side * 0.1, t + 0.45, 0.0),
            lm.LEFT_ANKLE: (side * 0.1, t + 0.88, 0.05), lm.LEFT_HEEL: (side * 0.1, t + 0.93, 0.1),
            lm.LEFT_FOOT_INDEX: (side * 0.12, t + 0.95, -0.1)}


def _expressions(frames: int, spans, rng: np.random.Generator) -> np.ndarray:
    """Mouthing while signing, occasional brow raises, blinks: (frames, len(face.EXPRESSIONS))."""
    signing = np.zeros(frames)
    for start, end in spans:
        signing[start:end] = 1.0
    mouth = np.clip(0.05 + signing * (0.3 + 0.35 * drift(rng, frames, 2.5)[:, 0]), 0.0, 1.0)
    brows = 0.4 * np.clip(drift(rng, frames, 15.0)[:, 0], 0.0, None)
    # A blink closes the lids at once and opens them over a few frames, about every 2.7 s.
    blink = np.convolve(rng.random(frames) < 1 / 80, [1.0, 0.7, 0.3])[:frames]
    return np.column_stack([mouth, brows, blink])


def skeleton(perf: Performance, signer: Signer, rng: np.random.Generator) -> np.ndarray:
    """All landmarks of a performance in the body frame, (T, 543, 3) metres."""
    frames = len(perf.dominant)
    dominant, other = arm(perf.dominant, signer), arm(perf.other, signer)
    right, left = (other, _mirror(dominant)) if signer.left_handed else (dominant, _mirror(other))
    out = np.zeros((frames, N_LANDMARKS, 3))
    body = out[:, lm.BODY:lm.BODY + lm.N_BODY]
    # MediaPipe numbers body points left, right, left, right...: `first` picks the side.
    for arm_, side, first, start in ((left, 1, 0, lm.LEFT_HAND), (right, -1, 1, lm.RIGHT_HAND)):
        body[:, lm.LEFT_SHOULDER + first] = arm_["shoulder"]
        body[:, lm.LEFT_ELBOW + first] = arm_["elbow"]
        body[:, lm.LEFT_WRIST + first] = arm_["wrist"]
        body[:, lm.LEFT_PINKY + first] = arm_["hand"][:, 17]
        body[:, lm.LEFT_INDEX + first] = arm_["hand"][:, 6]
        body[:, lm.LEFT_THUMB + first] = arm_["hand"][:, 2]
        for index, point in _legs(signer, side).items():
            body[:, index + first] = point
        out[:, start:start + lm.N_HAND] = arm_["hand"]
    # The head nods, turns and tilts a little (radians about x, y and z).
    angles = drift(rng, frames, 20.0, 3) * [0.04, 0.06, 0.03]
    centre = head_centre(signer) + 0.005 * drift(rng, frames, 10.0, 3)
    turn = geometry.quat_to_matrix(geometry.quat_from_rotvec(angles))
    points = face.face_points(centre, turn, _expressions(frames, perf.spans, rng), signer.head_size)
    out[:, lm.FACE:lm.FACE + lm.N_FACE] = points
    body[:, lm.NOSE] = points[:, lm.NOSE_TIP]
    eyes = ((lm.LEFT_EYE, lm.LEFT_EYE_INNER, lm.LEFT_EYE_OUTER, lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER),
            (lm.RIGHT_EYE, lm.RIGHT_EYE_INNER, lm.RIGHT_EYE_OUTER, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER))
    for centre_index, inner, outer, upper, lower in eyes:  # lids run from the outer corner inwards
        body[:, inner], body[:, outer] = points[:, upper[-1]], points[:, upper[0]]
        body[:, centre_index] = points[:, upper + lower].mean(1)
    lips = lm.LIPS_OUTER_UPPER  # from the right corner to the left one
    body[:, lm.MOUTH_RIGHT], body[:, lm.MOUTH_LEFT] = points[:, lips[0]], points[:, lips[-1]]
    for index, side in ((lm.LEFT_EAR, 1), (lm.RIGHT_EAR, -1)):
        ear = np.array([[[side * 0.078, 0.0, 0.04]]])
        body[:, index] = centre + signer.head_size * geometry.rotate(ear, turn)[:, 0]
    # The whole body sways slowly.
    return geometry.translate(out, 0.006 * drift(rng, frames, 25.0, 3))
