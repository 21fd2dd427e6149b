"""How a signer moves through a sentence: per-frame hand states and the frame span of each sign.

A hand state is the palm centre's position, the handshape parameters and the palm orientation
(a quaternion), packed in one row of STATE_SIZE floats. Both hands are planned as right hands in
the body frame of signer.py; the non-dominant hand is mirrored when the skeleton is built.

A sentence is rest, transition, sign, transition, sign, ..., transition, rest. Transitions are
minimum-jerk movements between one sign's last state and the next one's first; neighbouring signs
also pull each other's start and end positions together (co-articulation), and a final Gaussian
smoothing blends handshapes and orientations across the boundaries. A sign's span is the frames of
the sign itself (its holds and movement), transitions and pauses excluded; smoothing blurs about
two frames at each edge.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from slt_jax.synth import geometry, hand
from slt_jax.synth.lexicon import SignForm
from slt_jax.synth.signal import drift, ease, smooth
from slt_jax.synth.signer import Signer, idle_position, locations, rest_position

POS, SHAPE, QUAT = slice(0, 3), slice(3, 3 + hand.SHAPE_SIZE), slice(3 + hand.SHAPE_SIZE, 7 + hand.SHAPE_SIZE)
STATE_SIZE = 7 + hand.SHAPE_SIZE
COARTICULATION = 0.2  # how far a sign's start and end are pulled towards its neighbours
TRANSITION_SPEED = 0.05  # metres per frame for the distance part of a transition's duration
HOLD = 0.12  # share of a sign spent still at each end
_BASE_HAND = np.array([-0.04, 0.22, -0.28])  # the still hand of a two-handed "base" sign
_ON_BASE = np.array([0.0, -0.045, -0.03])  # the active palm, just above and in front of it


@dataclasses.dataclass(frozen=True)
class Variation:
    """How one signer's, or one repetition's, sign departs from the citation form."""

    offset: np.ndarray  # (3,) metres added to the location
    size: float  # multiplies the movement
    tilt: np.ndarray  # (3,) rotation vector applied on top of the orientation
    shape: np.ndarray  # (SHAPE_SIZE,) added to the handshape parameters
    tempo: float  # multiplies the duration

    def __add__(self, other: Variation) -> Variation:
        return Variation(self.offset + other.offset, self.size * other.size, self.tilt + other.tilt,
                         self.shape + other.shape, self.tempo * other.tempo)


def draw_variation(rng: np.random.Generator, scale: float) -> Variation:
    """A random departure; scale 1 is a signer's habit, smaller for one repetition."""
    return Variation(rng.normal(0, 0.015 * scale, 3), float(np.exp(rng.normal(0, 0.12 * scale))),
                     rng.normal(0, 0.12 * scale, 3), rng.normal(0, 0.06 * scale, hand.SHAPE_SIZE),
                     float(np.exp(rng.normal(0, 0.08 * scale))))


def hold(pos, shape, quat, frames: int) -> np.ndarray:
    """A hand held still: (frames, STATE_SIZE)."""
    return np.tile(np.concatenate([pos, shape, quat]), (frames, 1))


def _path(form: SignForm, m: np.ndarray, size: float, phase: float) -> np.ndarray:
    """Displacement of the palm along the sign's path at movement progress m, (n, 3).

    phase pi gives the other hand of an alternating sign: half a cycle behind, or reversed.
    """
    d, e, s = np.array(form.direction), np.array(form.normal), ease(m)[:, None]
    if form.path == "circle":
        a = 2 * np.pi * form.cycles * s + phase
        return size * ((np.cos(a) - np.cos(phase)) * d + (np.sin(a) - np.sin(phase)) * e)
    if form.path == "repeat":
        return size * d * 0.5 * (1 - np.cos(2 * np.pi * form.cycles * m[:, None] + phase))
    sign = np.cos(phase)
    if form.path == "arc":
        return sign * size * ((s - 0.5) * d + 0.35 * e * np.sin(np.pi * s))
    if form.path == "line":
        return sign * size * (s - 0.5) * d
    return sign * size * s * d  # hold: a slight drift


def _orientations(form: SignForm, m: np.ndarray, tilt: np.ndarray) -> np.ndarray:
    """Palm orientation per frame, with the sign's local wrist movement, (n, 4)."""
    q = geometry.quat_multiply(geometry.quat_from_rotvec(np.asarray(form.tilt) + tilt),
                           hand.ORIENTATIONS[form.orientation])
    q = np.tile(q, (len(m), 1))
    if form.local in ("twist", "nod"):
        # Twist turns about the fingers' axis, nod about the knuckles' (the thumb-side axis).
        axis = geometry.quat_to_matrix(q[0]) @ (np.array([0, -1.0, 0]) if form.local == "twist" else np.eye(3)[0])
        angle = (0.5 if form.local == "twist" else 0.4) * np.sin(2 * np.pi * max(form.cycles, 2) * m)
        q = geometry.quat_multiply(geometry.quat_from_rotvec(angle[:, None] * axis), q)
    return q


def _handshapes(form: SignForm, m: np.ndarray, delta: np.ndarray) -> np.ndarray:
    start, end = hand.HANDSHAPES[form.handshape], hand.HANDSHAPES[form.end_handshape]
    shape = start + (end - start) * ease(m)[:, None] + delta
    if form.local == "wiggle":  # fingers flutter one after another
        wave = 0.25 * np.sin(2 * np.pi * 3 * m[:, None] + np.arange(4) * 0.8)
        shape[:, hand.PIP] += wave
        shape[:, hand.MCP] += 0.5 * wave
    return np.clip(shape, 0.0, 1.1)


def sign_states(form: SignForm, frames: int, signer: Signer, var: Variation,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """The dominant and, for a two-handed sign, the non-dominant hand's states during one sign.

    Returns:
      (dominant, other), each (frames, STATE_SIZE); other is None for a one-handed sign.
    """
    t = np.linspace(0.0, 1.0, frames)
    m = np.clip((t - HOLD) / (1 - 2 * HOLD), 0.0, 1.0)
    size = form.size * var.size * signer.space
    shape, quat = _handshapes(form, m, var.shape), _orientations(form, m, var.tilt)
    other = None
    if form.hands == "base":
        base = signer.space * _BASE_HAND + 0.5 * var.offset
        other = hold(base, hand.HANDSHAPES[form.base_handshape], hand.ORIENTATIONS[form.base_orientation], frames)
        location = base * [-1, 1, 1] + _ON_BASE + var.offset
    else:
        location = locations(signer)[form.location] + var.offset
        if form.two_handed:  # keep the hands apart at the midline
            location[0] = min(location[0], -0.08)
    dominant = np.column_stack([location + _path(form, m, size, 0.0), shape, quat])
    if form.hands in ("symmetric", "alternating"):
        phase = np.pi if form.hands == "alternating" else 0.0
        own = location + rng.normal(0, 0.01, 3)
        other = np.column_stack([own + _path(form, m, size, phase), shape, quat])
    return dominant, other


def _transition(a: np.ndarray, b: np.ndarray, frames: int) -> np.ndarray:
    """Minimum-jerk movement from state a to state b, both ends excluded, (frames, STATE_SIZE)."""
    s = ease(np.arange(1, frames + 1) / (frames + 1))[:, None]
    if np.dot(a[QUAT], b[QUAT]) < 0:  # the short way round
        b = b.copy()
        b[QUAT] *= -1
    out = a + (b - a) * s
    # The hand sags a little on long moves, as a real arm's path does.
    out[:, 1] += 0.12 * np.linalg.norm(b[POS] - a[POS]) * np.sin(np.pi * s[:, 0])
    return out


def _transition_frames(a: list[np.ndarray], b: list[np.ndarray], pace: float) -> int:
    dist = max(np.linalg.norm(x[-1, POS] - y[0, POS]) for x, y in zip(a, b))
    return max(1, round(pace * (1 + dist / TRANSITION_SPEED)))


def _continuous_quaternions(x: np.ndarray) -> np.ndarray:
    """Flips quaternion signs so consecutive frames lie in one hemisphere (for smoothing)."""
    q = x[:, QUAT]
    flips = np.cumprod(np.concatenate([[1.0], np.sign(np.sum(q[1:] * q[:-1], -1) + 1e-12)]))
    x = x.copy()
    x[:, QUAT] = q * flips[:, None]
    return x


@dataclasses.dataclass(frozen=True)
class Performance:
    """A signed sentence: both hands' states per frame and each sign's frame span."""

    dominant: np.ndarray  # (T, STATE_SIZE)
    other: np.ndarray  # (T, STATE_SIZE), planned as a right hand; mirror it to place it
    spans: tuple[tuple[int, int], ...]


def perform(forms: list[SignForm], variations: list[Variation], signer: Signer,
            rng: np.random.Generator, tempo: float = 1.0) -> Performance:
    """Plans both hands through a sentence of signs.

    Args:
      forms: the signs in order.
      variations: how this performance departs from each citation form.
      signer: who signs.
      rng: randomness for timing, pauses and the hands' drift.
      tempo: multiplies every duration (the tiny preset signs fast).

    Returns:
      The hands' states per frame and each sign's [start, end) frame span.
    """
    pace = tempo * signer.speed * float(np.exp(rng.normal(0, 0.15)))
    rest = hold(rest_position(signer), hand.RELAXED, hand.REST_ORIENTATIONS[signer.rest], 1)[0]
    # The idle hand drops to rest if the signer rests with hanging arms, else waits low in front.
    idle = rest if signer.rest == "hanging" else hold(
        idle_position(signer), hand.RELAXED, hand.ORIENTATIONS["palm_up_across"], 1)[0]
    signs = []
    for k, (form, var) in enumerate(zip(forms, variations)):
        final = 1.3 if k == len(forms) - 1 else 1.0  # phrase-final lengthening
        frames = max(4, round(form.frames * var.tempo * pace * final * np.exp(rng.normal(0, 0.1))))
        signs.append(sign_states(form, frames, signer, var, rng))
    dominants = [d for d, _ in signs]
    others = [_other_hand(signs, k, idle) for k in range(len(signs))]
    for hands in (dominants, others):
        _coarticulate(hands)
    rest_in = max(1, round(pace * np.exp(rng.normal(np.log(6), 1.0))))
    rest_out = max(1, round(pace * np.exp(rng.normal(np.log(7), 1.0))))
    segments = [[np.repeat(rest[None], rest_in, 0)] * 2]
    spans, length = [], rest_in
    for dominant, other in zip(dominants, others):
        gap = _transition_frames(segments[-1], [dominant, other], pace)
        segments.append([_transition(segments[-1][i][-1], x[0], gap) for i, x in enumerate((dominant, other))])
        spans.append((length + gap, length + gap + len(dominant)))
        length += gap + len(dominant)
        segments.append([dominant, other])
        if rng.random() < 0.05:  # a hesitation: the hands hold still before going on
            pause = max(1, round(pace * np.exp(rng.normal(np.log(12), 0.8))))
            segments.append([np.repeat(x[-1:], pause, 0) for x in (dominant, other)])
            length += pause
    end = [np.repeat(rest[None], rest_out, 0)] * 2
    gap = _transition_frames(segments[-1], end, pace)
    segments.append([_transition(segments[-1][i][-1], rest, gap) for i in range(2)])
    segments.append(end)
    dominant, other = (_settle(np.concatenate([seg[i] for seg in segments]), signer, rng) for i in range(2))
    return Performance(dominant, other, tuple(spans))


def _other_hand(signs: list[tuple[np.ndarray, np.ndarray | None]], k: int, idle: np.ndarray) -> np.ndarray:
    """The non-dominant hand during sign k: its part in a two-handed sign; for a one-handed sign,
    held where it was between two two-handed signs, and otherwise idle."""
    dominant, other = signs[k]
    if other is not None:
        return other
    between = 0 < k < len(signs) - 1 and signs[k - 1][1] is not None and signs[k + 1][1] is not None
    return np.repeat((signs[k - 1][1][-1] if between else idle)[None], len(dominant), 0)


def _coarticulate(hands: list[np.ndarray]) -> None:
    """Pulls each sign's start towards the previous sign's end and its end towards the next start."""
    starts = [h[0, POS].copy() for h in hands]
    ends = [h[-1, POS].copy() for h in hands]
    for k, h in enumerate(hands):
        u = np.linspace(0.0, 1.0, len(h))[:, None]
        if k > 0:
            h[:, POS] += COARTICULATION * (ends[k - 1] - starts[k]) * (1 - u) ** 2
        if k < len(hands) - 1:
            h[:, POS] += COARTICULATION * (starts[k + 1] - ends[k]) * u**2


def _settle(x: np.ndarray, signer: Signer, rng: np.random.Generator) -> np.ndarray:
    """Smooths a hand's plan into motion and adds tremor and slow postural drift."""
    x = _continuous_quaternions(x)
    x[:, POS] = smooth(x[:, POS], 1.0)
    x[:, 3:] = smooth(x[:, 3:], 1.5)
    x[:, POS] += signer.tremor * drift(rng, len(x), 0.7, 3) + 0.004 * drift(rng, len(x), 12.0, 3)
    return x
