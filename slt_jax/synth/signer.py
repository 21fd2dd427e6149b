"""Signers: body proportions, where the camera sees them, how fast and how cleanly they sign.

Lengths are metres. Positions are in the body frame: origin between the shoulders, x to the
image's right (the signer's left), y down, z away from the camera. Sign locations are given for a
right dominant hand (on the -x side); a left-handed signer's arms are mirrored.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from slt_jax.synth import hand

IMAGE_SIZE = (848, 480)  # GSL's RealSense frames, width x height
FPS = 30
FRAMING_PX = (15.0, 10.0)  # spread (sd) of the shoulders' midpoint between signers, x and y
SCALE_SPREAD = 0.03  # relative spread of the camera's pixels per metre between signers


@dataclasses.dataclass(frozen=True)
class Signer:
    """One person's body, camera placement and signing habits."""

    name: str
    shoulder_width: float
    upper_arm: float
    forearm: float
    torso: float  # shoulder line to hip line
    neck: float  # shoulder line to the head's centre
    head_size: float  # relative to the face template
    hand_size: float  # relative to a 0.185 m hand
    left_handed: bool
    speed: float  # multiplies durations: above 1 signs slower
    space: float  # multiplies the size of the signing space and of movements
    rest: str  # a key of hand.REST_ORIENTATIONS: arms hanging, or hands clasped in front
    tremor: float  # metres of physiological tremor at the wrist
    centre_px: tuple[float, float]  # the shoulder midpoint in the image
    px_per_m: float
    yaw: float  # radians the body is turned from facing the camera
    dropout: float  # how readily the tracker loses this signer's hands (about 0.5..2)


def sample_signer(rng: np.random.Generator, name: str, left_handed: bool) -> Signer:
    """Draws one signer; anthropometric spreads follow adult ranges."""
    stature = rng.normal(1.0, 0.05)
    width, height = IMAGE_SIZE
    return Signer(
        name=name,
        shoulder_width=0.37 * stature * rng.normal(1.0, 0.05),
        upper_arm=0.31 * stature * rng.normal(1.0, 0.03),
        forearm=0.26 * stature * rng.normal(1.0, 0.03),
        torso=0.53 * stature * rng.normal(1.0, 0.04),
        neck=0.22 * stature * rng.normal(1.0, 0.05),
        head_size=stature * rng.normal(1.0, 0.04),
        hand_size=stature * rng.normal(0.9, 0.04),
        left_handed=left_handed,
        speed=float(np.exp(rng.normal(0.0, 0.12))),
        space=float(np.exp(rng.normal(0.0, 0.1))),
        rest=str(rng.choice(list(hand.REST_ORIENTATIONS))),
        tremor=float(rng.uniform(0.0005, 0.002)),
        # GSL was filmed in one lab by one fixed camera, every signer on the same spot: where
        # they stand and how large they appear vary little (docs/corpus.md, "Calibration").
        centre_px=(width / 2 + rng.normal(0, FRAMING_PX[0]), 0.37 * height + rng.normal(0, FRAMING_PX[1])),
        px_per_m=float(rng.normal(0.8, 0.8 * SCALE_SPREAD) * height),
        yaw=float(np.radians(rng.normal(0, 5))),
        dropout=float(np.exp(rng.normal(0.0, 0.35))),
    )


def head_centre(s: Signer) -> np.ndarray:
    return np.array([0.0, -s.neck, -0.03])


def locations(s: Signer) -> dict[str, np.ndarray]:
    """Where a sign can be made, for the right hand's palm centre, in the body frame.

    Head locations follow the head's size, body ones the shoulders, and the neutral space in
    front of the body the signer's signing space.
    """
    head, f = head_centre(s), s.head_size
    body = s.shoulder_width / 0.37
    # The palm centre sits a hand's half-length below the point the fingers reach.
    front = {
        "forehead": (-0.01, 0.0, -0.13), "eye": (-0.035, 0.03, -0.13), "nose": (0.0, 0.07, -0.15),
        "mouth": (0.0, 0.1, -0.13), "chin": (0.0, 0.14, -0.11), "cheek": (-0.075, 0.07, -0.08),
        "temple": (-0.085, 0.02, -0.05),
    }
    torso = {
        "neck": (0.0, -0.06, -0.09), "chest": (0.0, 0.12, -0.12), "chest_side": (-0.1, 0.12, -0.12),
        "shoulder_other": (0.14, 0.03, -0.09), "stomach": (0.0, s.torso * 0.64, -0.15),
    }
    neutral = {
        "neutral": (-0.08, 0.2, -0.33), "neutral_high": (-0.08, 0.02, -0.33),
        "neutral_low": (-0.05, 0.34, -0.3), "neutral_centre": (0.0, 0.18, -0.38),
        "neutral_side": (-0.25, 0.18, -0.25),
    }
    out = {k: head + f * np.array(v) for k, v in front.items()}
    out |= {k: body * np.array(v) for k, v in torso.items()}
    out |= {k: s.space * np.array(v) for k, v in neutral.items()}
    return out


def rest_position(s: Signer) -> np.ndarray:
    """The right palm centre at rest: arms hanging by the sides, or hands together at the belly."""
    if s.rest == "hanging":
        return np.array([-s.shoulder_width / 2 + 0.01, 0.96 * (s.upper_arm + s.forearm), -0.02])
    return np.array([-0.05, s.torso - 0.02, -0.13])


def idle_position(s: Signer) -> np.ndarray:
    """Where the right palm waits, low in front of the body, while the other hand signs alone."""
    return np.array([-0.12, 0.72 * s.torso, -0.2])


def elbows(shoulder: np.ndarray, wrist: np.ndarray, upper: float, fore: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-bone inverse kinematics for a right arm.

    The elbow points out and down; behind the body while the hand is low, ahead of it when the
    hand rises to the face, as real arms do.

    Args:
      shoulder: (T, 3) shoulder positions.
      wrist: (T, 3) wrist targets.
      upper: upper arm length.
      fore: forearm length.

    Returns:
      (elbow, wrist), each (T, 3); a target out of reach (too far, or too close to the
      shoulder) moves along its line from the shoulder to where the arm can put the wrist.
    """
    reach = wrist - shoulder
    dist = np.linalg.norm(reach, axis=-1, keepdims=True)
    axis = reach / np.maximum(dist, 1e-9)
    dist = np.clip(dist, abs(upper - fore) + 1e-3, 0.98 * (upper + fore))
    reach = axis * dist
    raised = np.clip((0.2 - reach[:, 1:2]) / 0.4, 0.0, 1.0)  # 0: hand at the waist, 1: at the face
    pole = np.array([-0.7, 0.5, 0.5]) - raised * [0.0, 0.0, 0.9]
    pole = pole - np.sum(pole * axis, -1, keepdims=True) * axis
    pole /= np.linalg.norm(pole, axis=-1, keepdims=True)
    along = (upper**2 - fore**2 + dist**2) / (2 * dist)
    across = np.sqrt(np.clip(upper**2 - along**2, 0.0, None))
    return shoulder + along * axis + across * pole, shoulder + reach
